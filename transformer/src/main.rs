//! `logwarden-transformer`: enriches raw WAF records with indicator fields from declarative rules.
//!
//! Not built yet: it lands with issue #5. The binary exists so the workspace, the Dockerfile
//! and the chart have their final shape; it refuses to run rather than pretend to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("logwarden-transformer is not built yet (issue #5); nothing was started.");
    ExitCode::from(2)
}
