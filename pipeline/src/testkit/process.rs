//! A service binary run as a user runs it, for tests of start-up, shutdown and what it prints.

use std::time::Duration;

/// A service binary run as a user runs it: its own process, its environment, its output captured
/// (stdout and stderr, interleaved) so a test can wait for a line and read everything it printed.
#[derive(Debug)]
pub struct Process {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `binary` with `args`, and `env` on top of this process's environment minus every
    /// `LOGWARDEN_*` variable (the test's own settings do not leak in unless passed).
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn start(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::Read;
        let mut command = std::process::Command::new(binary);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with(crate::config::ENV_PREFIX) {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {binary}: {err}"));
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for mut stream in streams.into_iter().flatten() {
            let output = std::sync::Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buffer = [0_u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buffer) {
                    if let Ok(mut text) = output.lock() {
                        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
                    }
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, ...) to the process, as `kill -SIGNAL` does.
    ///
    /// # Panics
    /// When `kill` cannot be run or refuses.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap_or_else(|err| panic!("running kill -{signal}: {err}"));
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits until the output contains `needle`.
    ///
    /// # Panics
    /// When the process exits first or `timeout` passes, with everything it printed.
    pub async fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "exited ({status}) before printing `{needle}`:\n{}",
                    self.output()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("`{needle}` not printed within {timeout:?}:\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM (what Kubernetes sends) and waits for the exit; returns the exit code and
    /// everything printed.
    ///
    /// # Panics
    /// When the process does not exit within 30 s (it is then killed).
    pub fn terminate(self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.wait(Duration::from_secs(30))
    }

    /// Sends SIGKILL (a crash: nothing is drained, flushed or saved) and waits for the exit;
    /// returns everything printed.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.output()
    }

    /// Waits for the process to exit by itself; returns the exit code and everything printed.
    ///
    /// # Panics
    /// When it runs longer than `timeout` (it is then killed).
    pub fn wait(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                _ if std::time::Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    panic!("still running after {timeout:?}:\n{}", self.output());
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status.code(), self.output())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
