//! Where one node's files live under `<data>/opensearch`: the install, data, logs, the pid file
//! and the distribution's pristine configs. Paths only; nothing here touches the disk.

use std::path::PathBuf;

use crate::paths::Dirs;

/// Where one node's files live.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// `<data>/opensearch`, owned by the `opensearch` user when root starts the stack.
    pub(super) dir: PathBuf,
    /// The unpacked distribution with its plugins.
    pub(super) home: PathBuf,
    /// `path.data`.
    pub(super) data: PathBuf,
    /// `path.logs`.
    pub(super) logs: PathBuf,
    /// Holds the pid file; writable by the server.
    pub(super) run: PathBuf,
}

impl Layout {
    pub(super) fn new(dirs: &Dirs) -> Self {
        let dir = dirs.opensearch();
        Self {
            home: dir.join("home"),
            data: dir.join("data"),
            logs: dir.join("logs"),
            run: dir.join("run"),
            dir,
        }
    }

    pub(super) fn pid_file(&self) -> PathBuf {
        self.run.join("opensearch.pid")
    }

    /// What the install holds; written last, so a broken install does not count.
    pub(super) fn install_record(&self) -> PathBuf {
        self.dir.join("install.json")
    }

    /// The distribution's own `config/opensearch.yml`, kept to render ours from.
    pub(super) fn pristine_yml(&self) -> PathBuf {
        self.dir.join("opensearch.yml.dist")
    }

    /// The distribution's own `config/jvm.options`, kept to render ours from.
    pub(super) fn pristine_jvm_options(&self) -> PathBuf {
        self.dir.join("jvm.options.dist")
    }
}

/// The server's log (`path.logs/<cluster.name>.log`).
pub fn server_log(dirs: &Dirs) -> PathBuf {
    Layout::new(dirs).logs.join("opensearch.log")
}

/// The launcher's output (startup errors before logging starts), truncated at each start.
pub fn startup_log(dirs: &Dirs) -> PathBuf {
    Layout::new(dirs).dir.join("startup.log")
}
