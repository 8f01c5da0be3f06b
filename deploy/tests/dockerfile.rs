//! `docker/Dockerfile` (for users with Docker) cannot be built here: no registry, no engine.
//! It is linted with hadolint, and its runtime stage must declare the same image as
//! `docker/Containerfile`, which `cargo xtask image` builds and the image tests run: same user,
//! working directory, environment, port, command, labels and build argument, the binaries in
//! the same place, the state directory owned by the same user.

use std::path::PathBuf;

use deploy::{tool, workspace};

fn path(file: &str) -> PathBuf {
    workspace().join("docker").join(file)
}

/// The file's instructions: continuation lines joined, comments dropped, whitespace collapsed;
/// `(KEYWORD, arguments)`.
fn instructions(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path(file))
        .unwrap_or_else(|err| panic!("reading docker/{file}: {err}"));
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && !current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if !current.trim().is_empty() {
                    logical.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    logical
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words[0].to_ascii_uppercase(), words[1..].join(" "))
        })
        .collect()
}

/// What the runtime stage (after the last `FROM`) declares about the image.
fn runtime(file: &str) -> (Vec<(String, String)>, Vec<String>) {
    let all = instructions(file);
    let start = all
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .unwrap_or_else(|| panic!("docker/{file} has no FROM"));
    let stage = &all[start + 1..];
    let config = stage
        .iter()
        .filter(|(keyword, _)| {
            [
                "ARG",
                "ENV",
                "LABEL",
                "USER",
                "WORKDIR",
                "EXPOSE",
                "CMD",
                "ENTRYPOINT",
            ]
            .contains(&keyword.as_str())
        })
        .cloned()
        .collect();
    let copies = stage
        .iter()
        .filter(|(keyword, _)| keyword == "COPY" || keyword == "ADD")
        .map(|(_, args)| args.clone())
        .collect();
    (config, copies)
}

#[test]
fn both_runtime_stages_declare_the_same_image() {
    let (docker, docker_copies) = runtime("Dockerfile");
    let (local, local_copies) = runtime("Containerfile");
    assert_eq!(docker, local);
    let keywords: Vec<&str> = local.iter().map(|(keyword, _)| keyword.as_str()).collect();
    assert!(!keywords.contains(&"ENTRYPOINT"), "{local:?}");
    assert!(
        local.contains(&("USER".into(), "65532:65532".into())),
        "{local:?}"
    );
    for copies in [&docker_copies, &local_copies] {
        assert!(
            copies
                .iter()
                .any(|c| c.contains("--chown=65532:65532 ") && c.ends_with(" /var/lib/logwarden/")),
            "the state directory is not owned by 65532: {copies:?}"
        );
        assert!(
            copies.iter().any(|c| c.ends_with(" /usr/local/bin/")),
            "no binaries in /usr/local/bin: {copies:?}"
        );
    }
    let dockerfile = std::fs::read_to_string(path("Dockerfile")).expect("the Dockerfile");
    for service in [
        "producer",
        "transformer",
        "sink",
        "detector",
        "provisioner",
        "ingest",
    ] {
        assert!(
            dockerfile.contains(&format!("-p {service}")),
            "the Dockerfile does not build {service}"
        );
    }
}

#[test]
fn hadolint_accepts_the_dockerfile_and_the_containerfile() {
    let hadolint = tool("XTASK_HADOLINT", "cargo xtask image");
    for file in ["Dockerfile", "Containerfile"] {
        let output = std::process::Command::new(&hadolint)
            .arg("--no-color")
            .arg(path(file))
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", hadolint.display()));
        assert!(
            output.status.success() && output.stdout.is_empty(),
            "hadolint on docker/{file}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
