//! Advisory file locks (`flock`) between xtask runs on one machine: one tool build at a time,
//! one cluster bring-up or teardown at a time, and a shared lock per `cargo xtask test` run
//! that uses the cluster, so that a run never deletes a cluster another run is testing on.
//! A lock lives as long as its [`Lock`] and ends with the process, however it ends.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{Context, Result};
use rustix::fs::{FlockOperation, flock};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

/// Takes the lock at `path` for this process alone, waiting (and saying so) while another
/// process holds it. `what` names what the lock guards.
pub fn exclusive(path: &Path, what: &str) -> Result<Lock> {
    let file = open(path)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        println!(
            "k8s: waiting for another xtask run that holds {what} ({})…",
            path.display()
        );
        flock(&file, FlockOperation::LockExclusive)
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(Lock { _file: file })
}

/// Takes the lock at `path` shared with other holders of a shared lock.
pub fn shared(path: &Path) -> Result<Lock> {
    let file = open(path)?;
    flock(&file, FlockOperation::LockShared)
        .with_context(|| format!("locking {} (shared)", path.display()))?;
    Ok(Lock { _file: file })
}

/// Takes the lock at `path` for this process alone if nobody holds it, else `None`.
pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
    let file = open(path)?;
    Ok(flock(&file, FlockOperation::NonBlockingLockExclusive)
        .is_ok()
        .then_some(Lock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_keep_an_exclusive_taker_out() {
        let path = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        let a = shared(&path).expect("shared");
        let b = shared(&path).expect("a second shared");
        assert!(try_exclusive(&path).expect("try").is_none());
        drop(a);
        assert!(try_exclusive(&path).expect("try").is_none());
        drop(b);
        let only = try_exclusive(&path).expect("try");
        assert!(only.is_some());
        assert!(try_exclusive(&path).expect("try").is_none());
        drop(only);
        std::fs::remove_file(&path).expect("remove the lock file");
    }
}
