//! `logwarden-provisioner`: converges OpenSearch to the declared state.
//!
//! Not built yet: it lands with issue #8. The binary exists so the workspace, the Dockerfile
//! and the chart have their final shape; it refuses to run rather than pretend to work.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("logwarden-provisioner is not built yet (issue #8); nothing was started.");
    ExitCode::from(2)
}
