//! The local stack as a whole: `stack up`, `down`, `status`, `logs` and `reset`, and the state
//! file that lets later commands (and `test`, `demo`) find what `up` started.
//!
//! `up` is idempotent: servers that already run with the asked settings are kept, missing ones
//! are installed and started, both in parallel, and it returns only once Kafka lists broker 1
//! and OpenSearch is green or yellow with its plugins, then creates the pipeline's topics.
//! `down` stops what the state file lists plus any stray `java` process whose command line
//! points into the data directory, so a lost state file never leaks servers.
//!
//! `restart` stops one server (gracefully or by SIGKILL) and starts it again as `up` would, on
//! the same data and ports, for the fault suite; `pid` names a server's current process.
//!
//! The parts, each a file: `options` (the settings `up` takes, checked), `state` (the state
//! file), `up` (bring-up, both servers in parallel), `down` (stop and reset), `status` (status
//! and logs), `restart` (restart and pid). Imports run one way: `up`, `down`, `status` and
//! `restart` use `state` (`up` uses `options`, `restart` uses `up`'s start of one server);
//! `state` and `options` know none of them. This file holds only `join`, which
//! `up` and `down` share.

mod down;
mod options;
mod restart;
mod state;
mod status;
mod up;

pub use down::{Which, down, reset, stop};
pub use options::StackOptions;
pub use restart::{pid, restart};
pub use state::State;
pub use status::{Server, logs, status};
pub use up::{ensure_up, up};

use std::thread;

/// The result of a server's thread; a panic in it goes on in the caller.
fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
