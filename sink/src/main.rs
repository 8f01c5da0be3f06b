//! `logwarden-sink`: bulk-loads enriched records into OpenSearch with no loss and no duplicates.
//!
//! Not built yet: it lands with issue #6. The binary exists so the workspace, the Dockerfile
//! and the chart have their final shape; it refuses to run rather than pretend to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("logwarden-sink is not built yet (issue #6); nothing was started.");
    ExitCode::from(2)
}
