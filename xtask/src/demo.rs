//! `cargo xtask demo`: logwarden running on this machine, end to end.
//!
//! For now the demo brings the stack up and says what runs where and how to stop it. Each later
//! part of the demo is one step in [`run`], in pipeline order: start the producer, the transformer,
//! the sink and the detector against the stack (with the `LOGWARDEN_*` addresses printed in the
//! report), then inject an attack and show the alert.

use anyhow::Result;

use crate::Ctx;
use crate::stack::{self, StackOptions, State};

/// Runs `cargo xtask demo`.
pub fn run(ctx: &Ctx, options: &StackOptions) -> Result<()> {
    let up = stack::ensure_up(ctx, options)?;
    // Next steps go here: the services, then traffic.
    report(ctx, &up.state)
}

/// What runs where, how to point a service at it, how to stop it.
fn report(ctx: &Ctx, state: &State) -> Result<()> {
    println!();
    stack::status(ctx)?;
    println!();
    println!("To run a service against this stack:");
    if let Some(brokers) = state.kafka_brokers() {
        println!("  export LOGWARDEN_KAFKA__BROKERS={brokers}");
    }
    if let Some(url) = state.opensearch_url() {
        println!("  export LOGWARDEN_OPENSEARCH__URL={url}");
    }
    Ok(())
}
