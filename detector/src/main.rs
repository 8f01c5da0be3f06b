//! `logwarden-detector`: streaming anomaly detection and alerting on the enriched stream.
//!
//! Not built yet: it lands with issue #7. The binary exists so the workspace, the Dockerfile
//! and the chart have their final shape; it refuses to run rather than pretend to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("logwarden-detector is not built yet (issue #7); nothing was started.");
    ExitCode::from(2)
}
