//! A real S3-compatible server for the bucket tests: SeaweedFS's `weed server`, built by
//! `cargo xtask test` into its cache (`XTASK_WEED`), started by each test on free ports in its
//! own temporary directory with an identities file (one access key), so that every request is
//! signed and a wrong secret is refused. Stopped and deleted when dropped.

use std::path::PathBuf;
use std::time::Duration;

use pipeline::testkit::{self, Process};
use sha2::Digest;

use super::BodyFile;

/// The access key the server knows.
pub const ACCESS_KEY: &str = "LWTESTACCESSKEY";
/// Its secret.
pub const SECRET_KEY: &str = "lw-test-secret-5c1e9a";
/// The region requests are signed for.
pub const REGION: &str = "us-east-1";

/// A running `weed server` with S3 on.
pub struct Weed {
    /// The S3 API's URL.
    pub endpoint: String,
    dir: PathBuf,
    process: Option<Process>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Weed {
    /// Starts the server and waits until its S3 API answers a signed request.
    ///
    /// # Panics
    /// When `XTASK_WEED` is unset (run the tests with `cargo xtask test`), or the server is not
    /// ready within 90 s.
    pub async fn start() -> Self {
        let weed = std::env::var("XTASK_WEED").unwrap_or_else(|_| {
            panic!(
                "XTASK_WEED is not set: the bucket tests need SeaweedFS's `weed`, which \
                 `cargo xtask test` builds and passes (or `cargo xtask seaweedfs` builds and prints)"
            )
        });
        let dir =
            std::env::temp_dir().join(testkit::unique_name("seaweedfs").trim_end_matches('-'));
        std::fs::create_dir_all(dir.join("data")).expect("the server's directory");
        let identities = serde_json::json!({"identities": [{
            "name": "logwarden",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Write"]
        }]});
        let config = dir.join("s3.json");
        std::fs::write(&config, identities.to_string()).expect("the identities file");
        let s3 = free_port();
        let flag = |name: &str, value: String| format!("-{name}={value}");
        let args = [
            flag("dir", dir.join("data").display().to_string()),
            flag("ip", "127.0.0.1".into()),
            flag("ip.bind", "127.0.0.1".into()),
            flag("master.port", free_port().to_string()),
            flag("master.port.grpc", free_port().to_string()),
            flag("volume.port", free_port().to_string()),
            flag("volume.port.grpc", free_port().to_string()),
            flag("filer.port", free_port().to_string()),
            flag("filer.port.grpc", free_port().to_string()),
            flag("s3.port", s3.to_string()),
            flag("s3.port.grpc", free_port().to_string()),
            flag("s3.port.iceberg", "0".into()),
            flag("s3.port.lance", "0".into()),
            flag("s3.config", config.display().to_string()),
            flag("master.telemetry", "false".into()),
            flag("volume.max", "4".into()),
            flag("master.volumeSizeLimitMB", "64".into()),
        ];
        let mut argv = vec!["server".to_owned(), "-s3".to_owned()];
        argv.extend(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let process = Process::start(&weed, &argv, &[]);
        let server = Self {
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
            process: Some(process),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if server.request("GET", "/", None).await.0 == 200 {
                return server;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "weed's S3 API did not answer within 90 s:\n{}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What the server printed.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }

    /// A signed request (curl's SigV4) to `path`, with `body`; the status (0 when nothing
    /// answered) and the body.
    pub async fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        let url = format!("{}{path}", self.endpoint);
        let user = format!("{ACCESS_KEY}:{SECRET_KEY}");
        let sigv4 = format!("aws:amz:{REGION}:s3");
        let file = body.map(BodyFile::new);
        let data = file.as_ref().map(BodyFile::arg);
        // SigV4 for S3 signs the payload's hash, sent as x-amz-content-sha256; curl 7.88 (Debian
        // 12) does not add it, and the server then refuses the signature of any request with a
        // body.
        let payload = format!(
            "x-amz-content-sha256: {:x}",
            sha2::Sha256::digest(body.unwrap_or_default())
        );
        let mut args = vec![
            "--aws-sigv4",
            &sigv4,
            "-u",
            &user,
            "-X",
            method,
            "-H",
            &payload,
            &url,
        ];
        if let Some(data) = &data {
            args.extend(["--data-binary", data]);
        }
        let output = tokio::process::Command::new("curl")
            .args(["-s", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .await
            .unwrap_or_else(|err| panic!("running curl ({err}): install it"));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// Creates `bucket`.
    pub async fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"), None).await;
        assert_eq!(status, 200, "creating bucket {bucket}: {body}");
    }

    /// Uploads `bytes` as `bucket/key`.
    pub async fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, body) = self
            .request("PUT", &format!("/{bucket}/{key}"), Some(bytes))
            .await;
        assert_eq!(status, 200, "uploading {bucket}/{key}: {body}");
    }

    /// The settings that point the ingest service at `bucket` (`LOGWARDEN_*`), reading
    /// `prefix`, with `secret` as the secret key and `checkpoint` as its checkpoint.
    pub fn ingest_vars(
        &self,
        bucket: &str,
        prefix: &str,
        secret: &str,
        checkpoint: &std::path::Path,
    ) -> Vec<(String, String)> {
        [
            ("NAME", bucket.to_owned()),
            ("PREFIX", prefix.to_owned()),
            ("ENDPOINT", self.endpoint.clone()),
            ("REGION", REGION.to_owned()),
            ("ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("SECRET_ACCESS_KEY", secret.to_owned()),
            ("CHECKPOINT_FILE", checkpoint.display().to_string()),
            ("POLL_MS", "300".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("LOGWARDEN_INGEST__BUCKET__{k}"), v))
        .collect()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            let _ = process.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
