//! A TLS-terminating, authenticating reverse proxy (Debian's nginx) in front of the stack's
//! OpenSearch, for tests of the services' TLS and authentication settings.

use std::time::Duration;

use super::{START_HINT, is_root, require_opensearch, secure_listeners, unique_name};

/// The user the [`AuthProxy`] accepts, and its password (a test's, public).
pub const PROXY_USER: &str = "logwarden";
/// The password of [`PROXY_USER`].
pub const PROXY_PASSWORD: &str = "proxy-test-password";

/// A real TLS-terminating reverse proxy with authentication in front of the stack's OpenSearch:
/// Debian's nginx, started by the test on two free loopback ports with the stack's certificates
/// (the broker certificate names `localhost` and `127.0.0.1`, signed by the stack's CA). One port
/// asks for basic auth ([`PROXY_USER`]), the other for a client certificate signed by the stack's
/// CA. Stopped when dropped. OpenSearch's security plugin is on no registry the project reaches;
/// this is how TLS and authentication to OpenSearch are tested for real.
#[derive(Debug)]
pub struct AuthProxy {
    child: std::process::Child,
    /// `https://127.0.0.1:<port>`, basic auth.
    pub basic_url: String,
    /// `https://127.0.0.1:<port>`, client certificate required.
    pub mtls_url: String,
    /// The CA that signed the proxy's certificate.
    pub ca: std::path::PathBuf,
    /// A CA that signed nothing the proxy presents.
    pub other_ca: std::path::PathBuf,
    /// A client certificate the mutual-TLS port accepts, and its key.
    pub client_certificate: std::path::PathBuf,
    /// The client certificate's key.
    pub client_key: std::path::PathBuf,
    dir: std::path::PathBuf,
}

/// A password the proxy refuses.
pub const WRONG_PROXY_PASSWORD: &str = "wr0ng-proxy-Password";

/// A setting the proxy refuses at a client's start-up, and what the client must say.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The password to give.
    pub password: &'static str,
    /// The CA to trust.
    pub ca: std::path::PathBuf,
    /// What the client's error must contain.
    pub expected: &'static [&'static str],
}

impl Refusal {
    /// Asserts that a client given this refusal's settings exited non-zero, said all `expected`, and
    /// showed no password.
    ///
    /// # Panics
    /// When it did not.
    pub fn assert_stopped(&self, code: Option<i32>, output: &str) {
        assert_ne!(code, Some(0), "{output}");
        for words in self.expected {
            assert!(output.contains(words), "`{words}` missing:\n{output}");
        }
        for password in [WRONG_PROXY_PASSWORD, PROXY_PASSWORD] {
            assert!(
                !output.contains(password),
                "a password was shown:\n{output}"
            );
        }
    }
}

/// Where Debian's nginx is.
const NGINX: &str = "/usr/sbin/nginx";

impl AuthProxy {
    /// What every client of the proxy must refuse at start-up: a wrong password (401) and a
    /// certificate from an untrusted CA.
    pub fn refusals(&self) -> [Refusal; 2] {
        [
            Refusal {
                password: WRONG_PROXY_PASSWORD,
                ca: self.ca.clone(),
                expected: &["401", "check opensearch.username"],
            },
            Refusal {
                password: PROXY_PASSWORD,
                ca: self.other_ca.clone(),
                expected: &["TLS with OpenSearch failed", "opensearch.ca_file"],
            },
        ]
    }

    /// Starts the proxy in front of the stack's OpenSearch.
    ///
    /// # Panics
    /// When nginx is not installed, the stack's TLS material is missing, or nginx does not start.
    pub async fn start() -> Self {
        let upstream = require_opensearch().await;
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is missing: run the suite with `cargo xtask test` (it installs Debian's \
             nginx-light) or `apt-get install nginx-light`"
        );
        let (_, _, tls) = secure_listeners();
        assert!(
            tls.join("broker.pem").exists(),
            "the stack's TLS material is missing in {}: {START_HINT}",
            tls.display()
        );
        let dir = std::env::temp_dir().join(unique_name("auth-proxy"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let hash = std::process::Command::new("openssl")
            .args(["passwd", "-apr1", PROXY_PASSWORD])
            .output()
            .unwrap_or_else(|e| panic!("openssl passwd: {e}"));
        let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
        std::fs::write(dir.join("htpasswd"), format!("{PROXY_USER}:{hash}\n"))
            .unwrap_or_else(|e| panic!("htpasswd: {e}"));
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("a free port: {e}"))
        };
        let (basic, mtls) = (port(), port());
        let d = dir.display();
        let t = tls.display();
        let upstream_host = upstream.trim_start_matches("http://").trim_end_matches('/');
        // As root, nginx's worker would drop to `nobody`, which cannot read the test's files.
        let user = if is_root() { "user root;" } else { "" };
        let config = format!(
            "{user}
master_process off;
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 200m;
  ssl_certificate {t}/broker.pem;
  ssl_certificate_key {t}/broker.key;
  server {{
    listen 127.0.0.1:{basic} ssl;
    auth_basic \"logwarden test\";
    auth_basic_user_file {d}/htpasswd;
    location / {{ proxy_pass http://{upstream_host}; proxy_set_header Authorization \"\"; }}
  }}
  server {{
    listen 127.0.0.1:{mtls} ssl;
    ssl_client_certificate {t}/ca.pem;
    ssl_verify_client on;
    location / {{ proxy_pass http://{upstream_host}; }}
  }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap_or_else(|e| panic!("nginx.conf: {e}"));
        let child = std::process::Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting nginx: {e}"));
        let proxy = Self {
            child,
            basic_url: format!("https://127.0.0.1:{basic}"),
            mtls_url: format!("https://127.0.0.1:{mtls}"),
            ca: tls.join("ca.pem"),
            other_ca: tls.join("other-ca.pem"),
            client_certificate: tls.join("client.pem"),
            client_key: tls.join("client.key"),
            dir,
        };
        for _ in 0..100 {
            let up = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
            if up(basic) && up(mtls) {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(proxy.dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not listen within 5 s:\n{log}");
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
