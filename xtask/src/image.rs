//! `cargo xtask image`: the one OCI image of the five services, `localhost/logwarden:<version>`
//! (also `:dev`), built on this machine without a Docker engine or a registry.
//!
//! The release binaries are built with cargo, a context is staged in the cache (the Debian base
//! from [`base`], the host's CA bundle, `docker/rootfs`, the binaries with their debug info
//! stripped) and Debian's buildah builds `docker/Containerfile` from it into the project's own
//! image storage ([`engine`]). A stamp (the image id and a fingerprint of its inputs) makes a
//! second run with nothing changed a no-op; a rebuild drops the image it replaces, so the vfs
//! storage (a full copy per image) does not grow. `docker/Dockerfile` is the same image for users
//! with Docker; `docker/README.md` says how the two stay equivalent.

mod base;
mod compose;
mod engine;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::Ctx;
use crate::prereq::find_on_path;
use crate::process;

pub use engine::Engine;

/// The packages whose binaries go into the image, each as `logwarden-<package>`.
pub const SERVICES: [&str; 6] = [
    "producer",
    "transformer",
    "sink",
    "detector",
    "provisioner",
    "ingest",
];

/// The image's name; tagged with the workspace version and `dev`.
pub const NAME: &str = "localhost/logwarden";

/// The host's CA bundle (Debian's ca-certificates), copied into the image.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The Debian packages the build needs, by the command each provides.
const TOOLS: [&str; 4] = ["podman", "buildah", "runc", "mmdebstrap"];

/// Options of `cargo xtask image`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImageArgs {
    /// Unpack the Debian base again (fresh packages, e.g. security updates) instead of using the
    /// cached one.
    #[arg(long)]
    pub rebuild_base: bool,
}

/// A built image and how to run it.
#[derive(Debug)]
pub struct Image {
    /// `localhost/logwarden:<version>`.
    pub reference: String,
    /// podman with the storage the image is in.
    pub engine: Engine,
    /// The Dockerfile linter the tests run on `docker/`.
    pub hadolint: PathBuf,
    /// `docker-compose`, which resolves `docker/compose.yaml` for the tests.
    pub compose: PathBuf,
}

impl Image {
    /// The variables the tests of `docker/` read: `XTASK_IMAGE`, podman's settings, and the
    /// linters `XTASK_HADOLINT` and `XTASK_DOCKER_COMPOSE`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("XTASK_IMAGE", self.reference.clone())];
        env.extend(self.engine.env());
        env.push(("XTASK_HADOLINT", self.hadolint.display().to_string()));
        env.push(("XTASK_DOCKER_COMPOSE", self.compose.display().to_string()));
        env
    }
}

/// Runs `cargo xtask image`: builds (or finds up to date) the image and prints how to use it.
pub fn run(ctx: &Ctx, args: &ImageArgs) -> Result<()> {
    let started = Instant::now();
    let image = build(ctx, args)?;
    let size = image_field(&image.engine, &image.reference, "{{.Size}}")?
        .and_then(|size| size.parse::<u64>().ok())
        .context("podman does not report the image's size")?;
    println!(
        "image: {} (also {NAME}:dev), {}, ready in {:.1} s",
        image.reference,
        process::human_bytes(size),
        started.elapsed().as_secs_f64()
    );
    println!();
    for (name, value) in image.env() {
        println!("{name}={value}");
    }
    println!(
        "\nrun a service: CONTAINERS_CONF=$XTASK_PODMAN_CONF $XTASK_PODMAN $XTASK_PODMAN_ARGS run --rm \
         --network host --read-only $XTASK_IMAGE logwarden-transformer --help"
    );
    Ok(())
}

/// Builds the image unless the one in storage was built from the same inputs.
pub fn build(ctx: &Ctx, args: &ImageArgs) -> Result<Image> {
    tools(ctx.root)?;
    let engine = Engine::new(&ctx.dirs.cache)?;
    let binaries = release_binaries()?;
    let base = base::ensure(&ctx.dirs.cache, ctx.root, args.rebuild_base)?;
    let version = env!("CARGO_PKG_VERSION");
    let image = Image {
        reference: format!("{NAME}:{version}"),
        engine,
        hadolint: crate::prereq::hadolint(&ctx.dirs.cache)?,
        compose: compose::ensure(&ctx.dirs.cache)?,
    };
    let dir = ctx.dirs.cache.join("image");
    let stamp_file = dir.join("built");
    let inputs = fingerprint(&base, &binaries)?;
    let previous = image_field(&image.engine, &image.reference, "{{.Id}}")?;
    if let Some(id) = &previous
        && std::fs::read_to_string(&stamp_file).ok() == Some(stamp(id, &inputs))
    {
        println!("image: {} is up to date", image.reference);
        return Ok(image);
    }

    // Per process: two builds at once (two test runs) must not share a context.
    let context = dir.join(format!("context-{}", std::process::id()));
    stage(&context, &base, &binaries)?;
    println!("image: building {} with buildah…", image.reference);
    let started = Instant::now();
    let built = process::run(
        image
            .engine
            .buildah()
            .args(["bud", "--isolation=chroot", "--layers=false", "--quiet"])
            .arg(format!("--build-arg=VERSION={version}"))
            .arg(format!("--tag={}", image.reference))
            .arg(format!("--tag={NAME}:dev"))
            .arg(format!(
                "--file={}",
                context.join("Containerfile").display()
            ))
            .arg(&context),
        "building the image with buildah",
    );
    // The image holds all of it now (or the build failed); the next build stages a fresh one.
    let _ = std::fs::remove_dir_all(&context);
    built?;
    let id = image_field(&image.engine, &image.reference, "{{.Id}}")?
        .context("buildah reported success but the image is not in storage")?;
    println!("image: built in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(old) = previous.filter(|old| *old != id) {
        // Not forced: a container still running from the old image keeps it.
        if let Err(err) = process::run(
            image.engine.podman().args(["rmi", &old]),
            "removing the image this build replaced",
        ) {
            println!("image: kept the previous image {old}: {err:#}");
        }
    }
    // Images kept that way before, now unused: vfs stores every image in full.
    process::run(
        image.engine.podman().args(["image", "prune", "--force"]),
        "removing unused untagged images",
    )?;
    std::fs::write(&stamp_file, stamp(&id, &inputs))
        .with_context(|| format!("writing {}", stamp_file.display()))?;
    Ok(image)
}

/// Finds podman, buildah, runc and mmdebstrap; as root installs the missing ones with apt.
fn tools(root: bool) -> Result<()> {
    let found =
        |tool: &str| find_on_path(tool).is_some() || Path::new("/usr/sbin").join(tool).exists();
    let missing: Vec<&str> = TOOLS.into_iter().filter(|tool| !found(tool)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !root {
        bail!(
            "building the image needs {} and they are not installed; install them \
             (`sudo apt-get install {}`) and retry",
            missing.join(", "),
            TOOLS.join(" ")
        );
    }
    crate::prereq::apt_install(&missing, "building and running the OCI image")?;
    if let Some(still) = missing.iter().find(|tool| !found(tool)) {
        bail!("apt-get installed the packages but `{still}` is not on PATH; add /usr/sbin to PATH");
    }
    Ok(())
}

/// `cargo build --release --locked` of the five packages; their binaries' paths.
fn release_binaries() -> Result<Vec<PathBuf>> {
    let workspace = workspace()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("image: cargo build --release of {}…", SERVICES.join(", "));
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--locked", "--quiet"]);
    for package in SERVICES {
        command.args(["--package", package]);
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed ({status}); its output is above");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    Ok(SERVICES
        .iter()
        .map(|package| target.join("release").join(format!("logwarden-{package}")))
        .collect())
}

/// What the image is built from, as text: the Containerfile and rootfs files, and the size and
/// modification time of each binary, the base tar and the CA bundle (cargo relinks a binary
/// whenever its code changes).
fn fingerprint(base: &Path, binaries: &[PathBuf]) -> Result<String> {
    let docker = workspace()?.join("docker");
    let mut text = format!("version {}\n", env!("CARGO_PKG_VERSION"));
    for file in [
        "Containerfile",
        "rootfs/etc/passwd",
        "rootfs/etc/group",
        "rootfs/etc/nsswitch.conf",
    ] {
        let path = docker.join(file);
        let content = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.push_str(&format!("{file}\n{content}\n"));
    }
    let others = [base, Path::new(CA_BUNDLE)];
    for path in binaries.iter().map(PathBuf::as_path).chain(others) {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        text.push_str(&format!("{} {} {modified}\n", path.display(), meta.len()));
    }
    Ok(text)
}

fn stamp(id: &str, inputs: &str) -> String {
    format!("{id}\n{inputs}")
}

/// Lays out the build context: the Containerfile, base.tar (a hard link to the cached tar),
/// rootfs/, the CA bundle, an empty directory, bin/ with the binaries' debug info stripped.
fn stage(context: &Path, base: &Path, binaries: &[PathBuf]) -> Result<()> {
    if context.exists() {
        std::fs::remove_dir_all(context)
            .with_context(|| format!("removing the old context {}", context.display()))?;
    }
    let bin = context.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    std::fs::create_dir_all(context.join("empty"))
        .with_context(|| format!("creating {}/empty", context.display()))?;
    let docker = workspace()?.join("docker");
    copy(
        &docker.join("Containerfile"),
        &context.join("Containerfile"),
    )?;
    process::run(
        Command::new("cp")
            .arg("-R")
            .arg(docker.join("rootfs"))
            .arg(context.join("rootfs")),
        "copying docker/rootfs into the context",
    )?;
    let ca = Path::new(CA_BUNDLE);
    if !ca.is_file() {
        bail!(
            "{CA_BUNDLE} is missing: install Debian's ca-certificates (`apt-get install ca-certificates`)"
        );
    }
    copy(ca, &context.join("ca-certificates.crt"))?;
    let tar = context.join("base.tar");
    if std::fs::hard_link(base, &tar).is_err() {
        copy(base, &tar)?;
    }
    for binary in binaries {
        let name = binary.file_name().context("a binary has a file name")?;
        // Line tables make each binary ~5 times larger; symbols stay for backtraces.
        process::run(
            Command::new("objcopy")
                .arg("--strip-debug")
                .arg(binary)
                .arg(bin.join(name)),
            "stripping the debug info of a binary (objcopy, from binutils)",
        )?;
    }
    Ok(())
}

use crate::paths::workspace;

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

/// A field of the image's `podman image inspect` (a Go template), or `None` when there is no
/// such image.
fn image_field(engine: &Engine, reference: &str, template: &str) -> Result<Option<String>> {
    let output = engine
        .podman()
        .args(["image", "inspect", "--format", template, reference])
        .output()
        .context("running podman image inspect")?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned()))
}
