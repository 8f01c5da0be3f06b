//! `cargo xtask test`: the whole check a change must pass, against real servers.
//!
//! Brings the stack up (or uses the one already running), builds the Kubernetes tools and starts
//! the kwok cluster if needed (`k8s`), builds the OCI image (`image`), runs `cargo fmt --check`,
//! `cargo clippy` and `cargo test` for the workspace with the stack's addresses in the
//! environment the services read (`LOGWARDEN_KAFKA__BROKERS`, `LOGWARDEN_OPENSEARCH__URL`) and the
//! tools, kubeconfig and image in the `XTASK_*` variables the deploy tests read, and afterwards
//! stops only the servers (and the cluster) it started itself, also when a step fails or Ctrl-C
//! interrupts it.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::stack::{self, StackOptions, Which};

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Settings for the stack, used if it is not running yet.
    #[command(flatten)]
    pub stack: StackOptions,
    /// Skip `cargo fmt --check` and `cargo clippy`.
    #[arg(long)]
    pub no_lint: bool,
    /// Passed to `cargo test` (e.g. a test-name filter; `-- --nocapture` reaches the test binaries).
    #[arg(last = true, value_name = "CARGO_TEST_ARGS")]
    pub cargo_test_args: Vec<String>,
}

/// One cargo invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// Short name for the summary.
    name: &'static str,
    /// Arguments after `cargo`.
    args: Vec<String>,
    /// Whether it needs the stack's addresses.
    uses_stack: bool,
}

/// The steps, in order.
fn steps(no_lint: bool, cargo_test_args: &[String]) -> Vec<Step> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let mut steps = Vec::new();
    if !no_lint {
        steps.push(Step {
            name: "fmt",
            args: owned(&["fmt", "--all", "--check"]),
            uses_stack: false,
        });
        steps.push(Step {
            name: "clippy",
            args: owned(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            uses_stack: false,
        });
    }
    // `--workspace` would override the packages the arguments pick (`-p X`), and `--all-targets`
    // the targets they pick (`--test T` would run every target of the package).
    let mut test = owned(&["test"]);
    if picked_packages(cargo_test_args).is_empty() {
        test.push("--workspace".to_owned());
    }
    if !picks_targets(cargo_test_args) {
        test.push("--all-targets".to_owned());
    }
    test.extend(cargo_test_args.iter().cloned());
    steps.push(Step {
        name: "test",
        args: test,
        uses_stack: true,
    });
    // `--all-targets` leaves doctests out; they run on their own (and need no stack).
    if cargo_test_args.is_empty() {
        steps.push(Step {
            name: "doctest",
            args: owned(&["test", "--workspace", "--doc"]),
            uses_stack: false,
        });
    }
    steps
}

/// Runs `cargo xtask test`.
pub fn run(ctx: &Ctx, args: &TestArgs) -> Result<()> {
    let started = Instant::now();
    let deploy = runs_deploy_tests(&args.cargo_test_args);
    // The tools first: a cold build takes minutes, and needs no server running.
    let weed = runs_bucket_tests(&args.cargo_test_args)
        .then(|| crate::seaweedfs::ensure(&ctx.dirs.cache))
        .transpose()?;
    // The Kubernetes tier: the deploy tests, and the provisioner's Job test (its Events, RBAC).
    let k8s_tools = (deploy || runs_tests_of(&args.cargo_test_args, "provisioner"))
        .then(|| crate::k8s::tools(&ctx.dirs.cache))
        .transpose()?;
    // The image the deploy tests run (XTASK_IMAGE, podman's settings, docker/'s linters).
    let image = deploy
        .then(|| crate::image::build(ctx, &crate::image::ImageArgs::default()))
        .transpose()?;
    let k8s_took = started.elapsed();
    let up = stack::ensure_up(ctx, &args.stack)?;
    let smtpd = crate::prereq::aiosmtpd(&ctx.dirs.cache)?;
    let hec_python = crate::prereq::splunk_hec_handler(&ctx.dirs.cache)?;
    crate::prereq::nginx(ctx.root)?;
    crate::prereq::rsyslog(ctx.root)?;
    crate::prereq::prometheus(ctx.root)?;
    crate::prereq::chromium(ctx.root)?;
    let cluster_started = Instant::now();
    let k8s = k8s_tools
        .map(|tools| crate::k8s::use_for_tests(ctx, tools))
        .transpose()?;
    if k8s.is_some() {
        println!(
            "test: Kubernetes tools and cluster ready in {:.1} s",
            (k8s_took + cluster_started.elapsed()).as_secs_f64()
        );
    } else {
        println!("test: neither deploy nor provisioner tests selected: no Kubernetes cluster");
    }
    let k8s_env = k8s
        .as_ref()
        .map(|k8s| k8s.cluster.test_env())
        .unwrap_or_default();
    let kafka = &up
        .state
        .kafka
        .as_ref()
        .context("the stack state lists no Kafka; run `cargo xtask stack reset`")?
        .settings;
    let ctl = StackCtl::create(ctx)?;
    let mut env = vec![
        (
            // Not `LOGWARDEN_*`: the services' strict config loader would reject it.
            "XTASK_SMTPD_PYTHON",
            smtpd.display().to_string(),
        ),
        (
            // The HEC end-to-end test's client (ingest/tests/sources/splunk.rs).
            "XTASK_HEC_PYTHON",
            hec_python.display().to_string(),
        ),
        (
            // The fault suite restarts and freezes the stack's servers through it
            // (pipeline::testkit::stack).
            "XTASK_STACK_CTL",
            ctl.script.display().to_string(),
        ),
        (
            "LOGWARDEN_KAFKA__BROKERS",
            up.state
                .kafka_brokers()
                .context("the stack state lists no Kafka; run `cargo xtask stack reset`")?,
        ),
        (
            // The secure listeners and their TLS material (pipeline::testkit::secure_kafka).
            "XTASK_KAFKA_SASL_SSL",
            kafka.sasl_ssl_brokers(),
        ),
        ("XTASK_KAFKA_MTLS", kafka.mtls_brokers()),
        (
            "XTASK_KAFKA_TLS_DIR",
            ctx.dirs.kafka_tls().display().to_string(),
        ),
        (
            "LOGWARDEN_OPENSEARCH__URL",
            up.state
                .opensearch_url()
                .context("the stack state lists no OpenSearch; run `cargo xtask stack reset`")?,
        ),
    ];
    if let Some(image) = &image {
        env.extend(image.env());
    }
    if let Some(weed) = &weed {
        // The ingest bucket tests start their own `weed server` with it.
        env.push(("XTASK_WEED", weed.display().to_string()));
    }
    let interrupted = watch_ctrl_c(ctx)?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let workspace = crate::paths::workspace()?;
    let mut results: Vec<(&'static str, Result<Duration>)> = Vec::new();
    for step in steps(args.no_lint, &args.cargo_test_args) {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        println!("test: cargo {}", step.args.join(" "));
        let step_started = Instant::now();
        let mut cmd = Command::new(&cargo);
        cmd.args(&step.args).current_dir(&workspace);
        if step.uses_stack {
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            cmd.envs(k8s_env.iter().map(|(k, v)| (k, v)));
        }
        let outcome = match cmd.status() {
            Ok(status) if status.success() => Ok(step_started.elapsed()),
            Ok(status) => Err(anyhow::anyhow!("{status}")),
            Err(err) => Err(anyhow::anyhow!("cannot run cargo: {err}")),
        };
        results.push((step.name, outcome));
    }

    let stopped = if up.started_kafka || up.started_opensearch {
        println!("test: stopping the servers this run started…");
        stack::stop(
            ctx,
            Which {
                kafka: up.started_kafka,
                opensearch: up.started_opensearch,
            },
        )
    } else {
        println!("test: leaving the stack running (it was up before)");
        Ok(())
    };

    let released = k8s.map_or(Ok(()), crate::k8s::release);

    println!();
    let mut failed = Vec::new();
    for (name, outcome) in &results {
        match outcome {
            Ok(took) => println!("test: {name:<7} ok      {:.1} s", took.as_secs_f64()),
            Err(err) => {
                println!("test: {name:<7} FAILED  {err}");
                failed.push(*name);
            }
        }
    }
    if interrupted.load(Ordering::SeqCst) {
        println!("test: interrupted");
    }
    println!("test: total {:.1} s", started.elapsed().as_secs_f64());
    stopped.context("stopping the stack after the tests; run `cargo xtask stack down`")?;
    released
        .context("deleting the Kubernetes cluster after the tests; run `cargo xtask k8s down`")?;
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted by Ctrl-C");
    }
    if !failed.is_empty() {
        bail!(
            "failed: {}; scroll up for cargo's output",
            failed.join(", ")
        );
    }
    Ok(())
}

/// `stack-ctl`, the script the fault suite runs as `$XTASK_STACK_CTL restart kafka` (or `pid
/// opensearch`): this xtask's `stack` command with this run's directories. It runs a copy of this
/// executable, taken at the start of the run, so a rebuild of `target/debug/xtask` while the
/// tests run (by this `cargo test`, or another checkout sharing the target directory) cannot
/// change what it does. The directory is removed when the run ends.
#[derive(Debug)]
struct StackCtl {
    dir: std::path::PathBuf,
    script: std::path::PathBuf,
}

impl StackCtl {
    fn create(ctx: &Ctx) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("logwarden-stack-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let exe = dir.join("xtask");
        std::fs::copy("/proc/self/exe", &exe)
            .with_context(|| format!("copying this xtask to {}", exe.display()))?;
        let script = dir.join("stack-ctl");
        let text = stack_ctl_script(&exe, &ctx.dirs.cache, &ctx.dirs.data);
        std::fs::write(&script, text).with_context(|| format!("writing {}", script.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", script.display()))?;
        Ok(Self { dir, script })
    }
}

impl Drop for StackCtl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The text of `stack-ctl`: `exe --cache-dir C --data-dir D stack "$@"`, each path quoted for sh.
fn stack_ctl_script(exe: &Path, cache: &Path, data: &Path) -> String {
    let quote = |path: &Path| format!("'{}'", path.display().to_string().replace('\'', r"'\''"));
    format!(
        "#!/bin/sh\n# Written by `cargo xtask test` for the fault suite; removed when the run ends.\n\
         exec {} --cache-dir {} --data-dir {} stack \"$@\"\n",
        quote(exe),
        quote(cache),
        quote(data)
    )
}

/// Whether the deploy tests (image, chart, cluster) are among those `cargo test` will run: yes
/// unless the arguments pick packages (`-p X`, `--package X`, `-pX`, `--package=X`) and `deploy`
/// is not one of them. Other packages need neither the image nor the cluster, whose first build
/// takes minutes.
fn runs_deploy_tests(cargo_test_args: &[String]) -> bool {
    runs_tests_of(cargo_test_args, "deploy")
}

/// Whether `package`'s tests are among those `cargo test` will run (see [`runs_deploy_tests`]).
fn runs_tests_of(cargo_test_args: &[String], package: &str) -> bool {
    let picked = picked_packages(cargo_test_args);
    picked.is_empty() || picked.contains(&package)
}

/// Whether ingest's bucket tests (which need SeaweedFS, a build of minutes on a cold machine)
/// are among those `cargo test` will run: ingest's package with no `--test` picked, or
/// `--test bucket`.
fn runs_bucket_tests(cargo_test_args: &[String]) -> bool {
    let tests = picked_tests(cargo_test_args);
    runs_tests_of(cargo_test_args, "ingest") && (tests.is_empty() || tests.contains(&"bucket"))
}

/// The integration tests cargo's arguments pick (`--test X`, `--test=X`), before `--`.
fn picked_tests(cargo_test_args: &[String]) -> Vec<&str> {
    let mut picked = Vec::new();
    let mut args = cargo_test_args
        .iter()
        .take_while(|a| a.as_str() != "--")
        .map(String::as_str);
    while let Some(arg) = args.next() {
        if arg == "--test" {
            picked.extend(args.next());
        } else if let Some(name) = arg.strip_prefix("--test=") {
            picked.push(name);
        }
    }
    picked
}

/// The packages cargo's arguments pick (`-p X`, `--package X`, `-pX`, `--package=X`), before `--`.
fn picked_packages(cargo_test_args: &[String]) -> Vec<&str> {
    let mut picked = Vec::new();
    let mut args = cargo_test_args
        .iter()
        .take_while(|a| a.as_str() != "--")
        .map(String::as_str);
    while let Some(arg) = args.next() {
        if arg == "-p" || arg == "--package" {
            picked.extend(args.next());
        } else if let Some(name) = arg.strip_prefix("--package=") {
            picked.push(name);
        } else if let Some(name) = arg.strip_prefix("-p") {
            picked.push(name);
        }
    }
    picked
}

/// Whether cargo test's arguments pick targets themselves (`--test T`, `--lib`, `--bins`, ...).
fn picks_targets(cargo_test_args: &[String]) -> bool {
    const TARGET_FLAGS: [&str; 8] = [
        "--lib",
        "--bin",
        "--bins",
        "--test",
        "--tests",
        "--bench",
        "--benches",
        "--example",
    ];
    cargo_test_args.iter().take_while(|a| *a != "--").any(|a| {
        TARGET_FLAGS
            .iter()
            .any(|f| a == f || a.starts_with(&format!("{f}=")))
    })
}

/// Keeps Ctrl-C from killing xtask itself (cargo, in the same process group, still gets it and
/// stops), so that the stack is stopped afterwards; the flag says it happened.
fn watch_ctrl_c(ctx: &Ctx) -> Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = Arc::new(AtomicBool::new(false));
    let mut interrupts = {
        let _runtime = ctx.rt.enter();
        signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?
    };
    let seen = Arc::clone(&flag);
    ctx.rt.spawn(async move {
        while interrupts.recv().await.is_some() {
            seen.store(true, Ordering::SeqCst);
            println!("test: interrupted; cleaning up…");
        }
    });
    Ok(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_run_that_includes_deploy_builds_the_image_and_cluster() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(runs_deploy_tests(&[]));
        assert!(runs_deploy_tests(&args(&["kafka_"])));
        assert!(!runs_deploy_tests(&args(&["-p", "detector"])));
        assert!(!runs_deploy_tests(&args(&["--package=sink", "freeze"])));
        assert!(!runs_deploy_tests(&args(&["-pdetector"])));
        assert!(runs_deploy_tests(&args(&["-p", "sink", "-p", "deploy"])));
        assert!(runs_deploy_tests(&args(&["--package", "deploy"])));
        assert!(runs_tests_of(
            &args(&["-p", "ingest", "--test", "bucket"]),
            "ingest"
        ));
        assert!(!runs_tests_of(&args(&["-p", "sink"]), "ingest"));
        assert!(runs_bucket_tests(&args(&[])));
        assert!(runs_bucket_tests(&args(&["-p", "ingest"])));
        assert!(runs_bucket_tests(&args(&["-p", "ingest", "--test=bucket"])));
        assert!(!runs_bucket_tests(&args(&[
            "-p", "ingest", "--test", "hec"
        ])));
        assert!(!runs_bucket_tests(&args(&[
            "-p", "sink", "--test", "bucket"
        ])));
        // After `--` the words are the test binaries', not cargo's.
        assert!(runs_deploy_tests(&args(&["--", "-p", "detector"])));
        // Picked packages are tested alone: `--workspace` would test them all.
        assert_eq!(
            steps(true, &args(&["-p", "detector", "restart"]))[0].args,
            ["test", "--all-targets", "-p", "detector", "restart"]
        );
        // Picked targets are run alone: `--all-targets` would run every target of the package.
        assert_eq!(
            steps(true, &args(&["-p", "faults", "--test", "prometheus"]))[0].args,
            ["test", "-p", "faults", "--test", "prometheus"]
        );
        assert_eq!(
            steps(true, &args(&["--test=chart", "--", "--test", "x"]))[0].args,
            ["test", "--workspace", "--test=chart", "--", "--test", "x"]
        );
        assert_eq!(
            steps(true, &args(&["--", "--test-threads=1"]))[0].args,
            [
                "test",
                "--workspace",
                "--all-targets",
                "--",
                "--test-threads=1"
            ]
        );
    }

    #[test]
    fn the_stack_ctl_script_quotes_its_paths() {
        let text = stack_ctl_script(
            Path::new("/tmp/ctl/xtask"),
            Path::new("/var/cache/logwarden"),
            Path::new("/srv/it's here"),
        );
        assert_eq!(
            text.lines().last(),
            Some(
                r#"exec '/tmp/ctl/xtask' --cache-dir '/var/cache/logwarden' --data-dir '/srv/it'\''s here' stack "$@""#
            )
        );
        assert!(text.starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn lint_steps_come_first_and_can_be_skipped() {
        let all = steps(false, &[]);
        let names: Vec<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(names, ["fmt", "clippy", "test", "doctest"]);
        assert_eq!(all[3].args, ["test", "--workspace", "--doc"]);
        assert_eq!(all[0].args, ["fmt", "--all", "--check"]);
        assert_eq!(
            all[1].args,
            [
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings"
            ]
        );
        assert!(all[2].uses_stack && !all[0].uses_stack);

        let only_test = steps(
            true,
            &[
                "kafka_".to_owned(),
                "--".to_owned(),
                "--nocapture".to_owned(),
            ],
        );
        assert_eq!(only_test.len(), 1);
        assert_eq!(
            only_test[0].args,
            [
                "test",
                "--workspace",
                "--all-targets",
                "kafka_",
                "--",
                "--nocapture"
            ]
        );
    }
}
