//! Which files (or bucket keys) a file source has finished: one name per line in a local file,
//! appended and synced after a file's records were all acknowledged by Kafka (or after it was
//! refused), so a restart skips what was done and redoes a file whose records were written but
//! not yet recorded: at least once, never skipped. Read once at start; the set stays in memory.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The names done, and the file that keeps them.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    done: BTreeSet<String>,
}

impl Checkpoint {
    /// Reads `path` (missing means nothing done yet). Any other error is returned: a
    /// checkpoint that exists but cannot be read must stop start-up, not send every file again.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err),
        };
        let done = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            path: path.to_owned(),
            done,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `name` is done.
    pub fn contains(&self, name: &str) -> bool {
        self.done.contains(name)
    }

    /// Records `name` as done: appended to the file and synced before this returns.
    pub fn record(&mut self, name: &str) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{name}")?;
        file.sync_all()?;
        self.done.insert(name.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_done_survive_a_reload() {
        let dir = std::env::temp_dir().join(format!("checkpoint-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("done");
        let mut checkpoint = Checkpoint::load(&path).expect("a missing checkpoint is empty");
        assert!(!checkpoint.contains("a/b.json.gz"));
        checkpoint.record("a/b.json.gz").expect("record");
        checkpoint.record("c.ndjson").expect("record");
        let reloaded = Checkpoint::load(&path).expect("reloaded");
        assert!(reloaded.contains("a/b.json.gz") && reloaded.contains("c.ndjson"));
        assert!(!reloaded.contains("a"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreadable_checkpoint_is_an_error() {
        let dir = std::env::temp_dir().join(format!("checkpoint-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        // A directory where the file should be: it exists, it cannot be read.
        assert!(Checkpoint::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
