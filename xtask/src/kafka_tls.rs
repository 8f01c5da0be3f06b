//! The local Kafka's secure listeners: the certificates they present and the SCRAM users they
//! accept, so the services' TLS, mutual-TLS and SASL settings are tested against a real broker.
//!
//! - A CA, a broker certificate for `localhost`/`127.0.0.1` signed by it, a client certificate
//!   (CN `logwarden`) for mutual TLS, and a second CA that signed nothing (what an "untrusted CA"
//!   test trusts instead), made once with Debian's `openssl` into `<data>/kafka/tls`. The broker
//!   reads PEM directly (`ssl.keystore.type=PEM`: the PKCS#8 key followed by its certificate).
//! - SCRAM-SHA-256 and SCRAM-SHA-512 credentials for [`SCRAM_USER`], written into the metadata
//!   log when the storage is formatted (`--add-scram`); a stack formatted before that gets them
//!   once through the Admin API, by a single-file Java program run against the broker's own jars
//!   (the Maven jar set has no `kafka-configs` tool, and rdkafka does not wrap that API).
//!
//! These are a development stack's credentials, known to everyone: never use them elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::prereq::Java;
use crate::process;

/// The SCRAM user the stack creates, and its password (the tests' side of the same constants).
pub use pipeline::testkit::{
    STACK_SCRAM_PASSWORD as SCRAM_PASSWORD, STACK_SCRAM_USER as SCRAM_USER,
};

/// The files of the stack's TLS material: `ca.pem`, `broker-keystore.pem`, and for the tests
/// (`pipeline::testkit::secure_kafka`) `client.pem`/`client.key` and `other-ca.pem`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The directory.
    pub dir: PathBuf,
}

impl TlsFiles {
    /// The files under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    /// The CA certificate clients trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// The broker's key and certificate in one PEM file (the broker's keystore).
    pub fn broker_keystore(&self) -> PathBuf {
        self.dir.join("broker-keystore.pem")
    }
    /// Written last; its name changes when the material does (v2: the client certificate is
    /// X.509 v3, which rustls requires), so older material is made again.
    fn marker(&self) -> PathBuf {
        self.dir.join(".complete-v2")
    }
}

/// Makes the certificates unless they exist (a marker file written last).
pub fn ensure_certificates(files: &TlsFiles) -> Result<()> {
    if files.marker().exists() {
        return Ok(());
    }
    let dir = &files.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let openssl = |args: &[&str], what: &str| -> Result<()> {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(dir);
        process::run(&mut command, what)
            .map(drop)
            .with_context(|| format!("{what}: is Debian's `openssl` installed?"))
    };
    let days = "3650";
    for (name, subject) in [
        ("ca", "/CN=logwarden stack CA"),
        ("other-ca", "/CN=untrusted CA"),
    ] {
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                days,
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ],
            &format!("making the {name} certificate"),
        )?;
    }
    // Extensions make X.509 v3 certificates (a v1 client certificate is refused by rustls).
    std::fs::write(
        dir.join("broker.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .context("writing broker.ext")?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")
        .context("writing client.ext")?;
    for (name, subject, extensions) in [
        ("broker", "/CN=localhost", "broker.ext"),
        ("client", "/CN=logwarden", "client.ext"),
    ] {
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.rsa.key"),
                "-out",
                &format!("{name}.csr"),
            ],
            &format!("making the {name} key"),
        )?;
        let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
        let sign = [
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-out",
            &pem,
            "-extfile",
            extensions,
        ];
        openssl(&sign, &format!("signing the {name} certificate"))?;
        openssl(
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{name}.rsa.key"),
                "-out",
                &format!("{name}.key"),
            ],
            &format!("converting the {name} key to PKCS#8"),
        )?;
    }
    let keystore = [
        std::fs::read_to_string(dir.join("broker.key")).context("reading broker.key")?,
        std::fs::read_to_string(dir.join("broker.pem")).context("reading broker.pem")?,
    ]
    .concat();
    std::fs::write(files.broker_keystore(), keystore).context("writing the broker keystore")?;
    std::fs::write(files.marker(), "").context("writing the TLS marker")?;
    Ok(())
}

/// The single-file Java program that upserts SCRAM credentials through the Admin API.
const SCRAM_PROGRAM: &str = r#"
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

/** Upserts SCRAM-SHA-256 and -512 credentials: args bootstrap, user, password. */
public class ScramUsers {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            // One mechanism per request: the broker refuses two alterations of a user at once.
            for (ScramMechanism mechanism : List.of(ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)) {
                admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                    args[1], new ScramCredentialInfo(mechanism, 4096), args[2]))).all().get();
            }
        }
    }
}
"#;

/// The file that says the stack's SCRAM user exists (written when the storage was formatted with
/// it, or after it was created through the Admin API).
pub fn scram_marker(kafka_dir: &Path) -> PathBuf {
    kafka_dir.join("data").join(".scram-users")
}

/// Creates the stack's SCRAM user through the plaintext listener at `brokers`, unless the marker
/// says it exists. (Source-file mode compiles in memory: this path needs a JDK, not a JRE; only
/// stacks formatted before the user existed take it.)
pub fn ensure_scram_user(java: &Java, lib: &Path, work: &Path, brokers: &str) -> Result<()> {
    let marker = scram_marker(work);
    if marker.exists() {
        return Ok(());
    }
    let source = work.join("ScramUsers.java");
    std::fs::write(&source, SCRAM_PROGRAM)
        .with_context(|| format!("writing {}", source.display()))?;
    let mut command = Command::new(java.bin());
    command
        .args(["-cp", &format!("{}/*", lib.display())])
        .arg(&source)
        .args([brokers, SCRAM_USER, SCRAM_PASSWORD])
        .current_dir(work);
    process::run(&mut command, "creating the SCRAM user")?;
    std::fs::write(&marker, "").context("writing the SCRAM marker")
}
