//! podman as `cargo xtask image` set it up, for the tests that run the image.
//!
//! The image lives in the project's own storage (vfs, in the cache) and podman needs runc,
//! cgroupfs and a containers.conf without default ulimits on this machine kind: `cargo xtask
//! image` (and `cargo xtask test`) hands all of it over as `XTASK_PODMAN` (the binary),
//! `XTASK_PODMAN_ARGS` (global flags, space-separated), `XTASK_PODMAN_CONF` (the file for
//! `CONTAINERS_CONF`) and `XTASK_IMAGE` (the image). [`Container`] removes its container when
//! dropped, also when the test fails, and then prints the container's last log lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::tool;

/// The command that builds the image and prints the variables.
pub const PROVIDER: &str = "cargo xtask image";

/// podman with the image's storage, and the image.
#[derive(Debug, Clone)]
pub struct Podman {
    bin: PathBuf,
    args: Vec<String>,
    conf: PathBuf,
    /// The image's full reference, e.g. `localhost/logwarden:0.1.0`.
    pub image: String,
}

impl Podman {
    /// podman and the image from the `XTASK_*` variables, after checking that the image is in
    /// the storage.
    ///
    /// # Panics
    /// When a variable is unset or the image is missing, naming `cargo xtask image`.
    pub fn from_env() -> Self {
        let text = |var: &str| tool(var, PROVIDER).to_string_lossy().into_owned();
        let podman = Self {
            bin: tool("XTASK_PODMAN", PROVIDER),
            args: text("XTASK_PODMAN_ARGS")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            conf: tool("XTASK_PODMAN_CONF", PROVIDER),
            image: text("XTASK_IMAGE"),
        };
        let exists = podman
            .command()
            .args(["image", "exists", &podman.image])
            .status()
            .unwrap_or_else(|err| panic!("running {}: {err}", podman.bin.display()));
        assert!(
            exists.success(),
            "the image {} is not in podman's storage: run `{PROVIDER}`",
            podman.image
        );
        podman
    }

    /// `podman <global flags>` with `CONTAINERS_CONF` set.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(&self.args)
            .env("CONTAINERS_CONF", &self.conf)
            .stdin(Stdio::null());
        command
    }

    /// `podman <args>` to its end, its output captured.
    ///
    /// # Panics
    /// When podman cannot be started.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("running podman {}: {err}", args.join(" ")))
    }

    /// A field of the image's configuration (`podman image inspect --format`), e.g.
    /// `{{.Config.User}}`.
    pub fn image_field(&self, template: &str) -> String {
        let output = self.output(&["image", "inspect", "--format", template, &self.image]);
        assert!(output.status.success(), "podman image inspect: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `podman run --name <name> <options> <image> <command>` in the background (`--detach`),
    /// its log kept in `log` (it outlives the container, which `--rm` removes when it exits).
    ///
    /// # Panics
    /// When podman refuses to start it.
    pub fn start(&self, name: &str, log: &Path, options: &[String], command: &[&str]) -> Container {
        let container = Container {
            podman: self.clone(),
            name: name.to_owned(),
            log: log.to_path_buf(),
        };
        let log_path = format!("path={}", log.display());
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            name,
            "--log-driver",
            "k8s-file",
        ];
        args.extend(["--log-opt", &log_path]);
        args.extend(options.iter().map(String::as_str));
        args.push(&self.image);
        args.extend(command);
        let output = self.output(&args);
        assert!(
            output.status.success(),
            "podman run {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        container
    }

    /// `podman run --name <name> <options> <image> <command>` to its end: the exit code and
    /// what it printed (stdout, then stderr). A guard removes the container if the test stops
    /// waiting for it.
    pub fn run(&self, name: &str, options: &[String], command: &[&str]) -> (Option<i32>, String) {
        let _guard = Container {
            podman: self.clone(),
            name: name.to_owned(),
            log: PathBuf::new(),
        };
        let mut args = vec!["run", "--name", name];
        args.extend(options.iter().map(String::as_str));
        args.push(&self.image);
        args.extend(command);
        let output = self.output(&args);
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    }
}

/// A container this test started; removed (`podman rm --force`) when dropped.
#[derive(Debug)]
pub struct Container {
    podman: Podman,
    /// Its name.
    pub name: String,
    log: PathBuf,
}

impl Container {
    /// What it has printed so far (from its log file).
    pub fn logs(&self) -> String {
        // k8s-file lines: `<time> <stream> <F|P> <text>`.
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| line.splitn(4, ' ').nth(3).unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether it is still running.
    pub fn running(&self) -> bool {
        let output = self
            .podman
            .output(&["inspect", "--format", "{{.State.Running}}", &self.name]);
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "true"
    }

    /// Its main process's id on the host.
    pub fn pid(&self) -> u32 {
        let output = self
            .podman
            .output(&["inspect", "--format", "{{.State.Pid}}", &self.name]);
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("podman inspect {}: no pid in {text:?}", self.name))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() && self.log.is_file() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            eprintln!(
                "--- last lines of container {} ---\n{}",
                self.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        let _ = self
            .podman
            .command()
            .args(["rm", "--force", "--ignore", "--time", "5", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
