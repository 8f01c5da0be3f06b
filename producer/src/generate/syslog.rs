//! Syslog messages from several hosts, some sending RFC 5424 and some RFC 3164 (BSD) lines, as a
//! fleet of Debian hosts does: sshd, CRON, systemd, sudo, dockerd and an application, with the
//! facilities and severities those programs use. The injected anomalies are an sshd brute force
//! from one address against the bastion, a burst of sudo to a shell, and kernel and application
//! errors.
//!
//! `line` is the message as a host sends it; `raw` is the record `logwarden-ingest`'s syslog
//! receiver writes for it (its fields, with `received_at` the event time).

use serde_json::{Value, json};

use super::sources::{Common, SourceRecord, utc};

/// The hosts, and whether each sends RFC 5424 (else RFC 3164).
const HOSTS: &[(&str, bool)] = &[
    ("web-1", true),
    ("web-2", true),
    ("bastion-1", false),
    ("db-1", false),
    ("worker-3", true),
];
/// Facilities as `syslog_loose` names them, with their codes.
const AUTH: (&str, u8) = ("auth", 4);
const AUTHPRIV: (&str, u8) = ("authpriv", 10);
const DAEMON: (&str, u8) = ("daemon", 3);
const KERN: (&str, u8) = ("kern", 0);
const LOCAL3: (&str, u8) = ("local3", 19);
/// Severities with their codes.
const CRIT: (&str, u8) = ("crit", 2);
const ERR: (&str, u8) = ("err", 3);
const NOTICE: (&str, u8) = ("notice", 5);
const INFO: (&str, u8) = ("info", 6);
const BRUTE_FORCE_FROM: &str = "203.0.113.45";
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SshAccepted,
    SshDisconnected,
    CronSession,
    SystemdSession,
    Docker,
    AppInfo,
    Sudo,
    SshFailed,
    AppError,
    BruteForce,
    SudoShell,
    KernelError,
}

const NORMAL: &[(Kind, u32)] = &[
    (Kind::SshAccepted, 150),
    (Kind::SshDisconnected, 100),
    (Kind::CronSession, 150),
    (Kind::SystemdSession, 150),
    (Kind::Docker, 100),
    (Kind::AppInfo, 250),
    (Kind::Sudo, 8),
    (Kind::SshFailed, 6),
    (Kind::AppError, 6),
];

fn injected(indicator: &str) -> Kind {
    match indicator {
        "syslog_auth_failure" => Kind::BruteForce,
        "syslog_sudo" => Kind::SudoShell,
        "syslog_error" => Kind::KernelError,
        _ => Kind::AppInfo,
    }
}

/// The syslog generator.
#[derive(Debug, Clone)]
pub struct Syslog {
    pub(crate) common: Common,
}

impl Syslog {
    pub(crate) fn new(common: Common) -> Self {
        Self { common }
    }

    pub(crate) fn next(&mut self, timestamp_ms: i64, inject: Option<&str>) -> SourceRecord {
        let c = &mut self.common;
        let injects = c.injects(inject).map(injected);
        let kind = injects.unwrap_or(*c.pick(NORMAL));
        // The key is the process id, unique within a run (each record its own process, as
        // each sshd connection is).
        let _ = c.key();
        let pid = 2_000 + c.generated;
        let (mut host, _) = *c.one(HOSTS);
        let internal = format!("10.0.{}.{}", c.int(0..8), c.int(2..250));
        let port = c.int(32_768..61_000);
        let order = c.int(100_000..999_999);
        let (app, facility, severity, message) = match kind {
            Kind::SshAccepted => (
                "sshd",
                AUTH,
                INFO,
                format!(
                    "Accepted publickey for deploy from {internal} port {port} ssh2: ED25519 SHA256:pQ3v8kC1mXo2bT4yN7sL9eR6wZ0aF5hJ8dG1uV3iK2c"
                ),
            ),
            Kind::SshDisconnected => (
                "sshd",
                AUTH,
                INFO,
                format!("Disconnected from user deploy {internal} port {port}"),
            ),
            Kind::CronSession => (
                "CRON",
                AUTHPRIV,
                INFO,
                "pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)".to_owned(),
            ),
            Kind::SystemdSession => (
                "systemd",
                DAEMON,
                INFO,
                format!("Started session-{order}.scope - Session {order} of User deploy."),
            ),
            Kind::Docker => (
                "dockerd",
                DAEMON,
                INFO,
                "time=\"2026-12-05T09:00:00Z\" level=info msg=\"ignoring event\" module=libcontainerd namespace=moby topic=/tasks/delete".to_owned(),
            ),
            Kind::AppInfo => (
                "payments",
                LOCAL3,
                INFO,
                format!("charge captured order={order} amount={}.{:02} currency=EUR", c.int(5..400), c.int(0..100)),
            ),
            Kind::Sudo => (
                "sudo",
                AUTHPRIV,
                NOTICE,
                "deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx".to_owned(),
            ),
            Kind::SshFailed => (
                "sshd",
                AUTH,
                INFO,
                format!("Failed password for deploy from {internal} port {port} ssh2"),
            ),
            Kind::AppError => (
                "payments",
                LOCAL3,
                ERR,
                format!("upstream payment gateway returned 502 for order={order}"),
            ),
            Kind::BruteForce => {
                host = "bastion-1";
                let user = *c.one(&["admin", "oracle", "ubuntu", "test", "postgres", "root"]);
                let message = match c.int(0..3) {
                    0 => format!("Failed password for invalid user {user} from {BRUTE_FORCE_FROM} port {port} ssh2"),
                    1 => format!("Invalid user {user} from {BRUTE_FORCE_FROM} port {port}"),
                    _ => format!(
                        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={BRUTE_FORCE_FROM}  user={user}"
                    ),
                };
                ("sshd", AUTH, INFO, message)
            }
            Kind::SudoShell => (
                "sudo",
                AUTHPRIV,
                NOTICE,
                "www-data : TTY=unknown ; PWD=/var/www ; USER=root ; COMMAND=/bin/bash -c id".to_owned(),
            ),
            Kind::KernelError => match c.int(0..3) {
                0 => (
                    "kernel",
                    KERN,
                    ERR,
                    format!("Out of memory: Killed process {} (java) total-vm:8123456kB, anon-rss:3921000kB", c.int(1_000..30_000)),
                ),
                1 => (
                    "kernel",
                    KERN,
                    CRIT,
                    format!("EXT4-fs error (device nvme0n1p1): ext4_find_entry:1455: inode #{order}: comm nginx: reading directory lblock 0"),
                ),
                _ => (
                    "payments",
                    LOCAL3,
                    ERR,
                    format!("database connection pool exhausted after 30000 ms order={order}"),
                ),
            },
        };
        let rfc5424 = HOSTS.iter().any(|(h, five)| *h == host && *five);
        let message = Message {
            facility,
            severity,
            host,
            app,
            pid,
            text: message,
        };
        let line = message.line(timestamp_ms, rfc5424);
        let raw = message.raw(timestamp_ms, rfc5424);
        SourceRecord {
            key: pid.to_string(),
            indicators: indicators(&raw),
            raw: raw.to_string().into_bytes(),
            line,
        }
    }
}

/// One message's parts.
struct Message<'a> {
    facility: (&'static str, u8),
    severity: (&'static str, u8),
    host: &'a str,
    app: &'a str,
    pid: u64,
    text: String,
}

impl Message<'_> {
    fn priority(&self) -> u16 {
        u16::from(self.facility.1) * 8 + u16::from(self.severity.1)
    }

    /// The line a host sends: RFC 5424 (no message id or structured data) or RFC 3164.
    fn line(&self, timestamp_ms: i64, rfc5424: bool) -> String {
        let Self {
            host,
            app,
            pid,
            text,
            ..
        } = self;
        let priority = self.priority();
        let time = utc(timestamp_ms);
        if rfc5424 {
            let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            format!("<{priority}>1 {stamp} {host} {app} {pid} - - {text}")
        } else {
            use chrono::{Datelike, Timelike};
            let month = MONTHS[time.month0() as usize];
            let (day, h, m, s) = (time.day(), time.hour(), time.minute(), time.second());
            format!("<{priority}>{month} {day:>2} {h:02}:{m:02}:{s:02} {host} {app}[{pid}]: {text}")
        }
    }

    /// The record the syslog receiver writes for the line.
    fn raw(&self, timestamp_ms: i64, rfc5424: bool) -> Value {
        // RFC 3164 has whole seconds only.
        let stamp_ms = if rfc5424 {
            timestamp_ms
        } else {
            timestamp_ms - timestamp_ms.rem_euclid(1_000)
        };
        json!({
            "protocol": if rfc5424 { "rfc5424" } else { "rfc3164" },
            "facility": self.facility.0,
            "facility_code": self.facility.1,
            "severity": self.severity.0,
            "severity_code": self.severity.1,
            "timestamp": utc(stamp_ms).fixed_offset().to_rfc3339(),
            "hostname": self.host,
            "appname": self.app,
            "procid": self.pid.to_string(),
            "message": self.text,
            "received_at": utc(timestamp_ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}

/// The preset's indicators of a syslog record, read from its fields.
fn indicators(raw: &Value) -> Vec<&'static str> {
    let app = raw["appname"].as_str().unwrap_or_default();
    let message = raw["message"].as_str().unwrap_or_default();
    let auth_failure = (app == "sshd"
        && (message.contains("Failed password") || message.contains("Invalid user")))
        || message.contains("authentication failure");
    [
        ("syslog_auth_failure", auth_failure),
        ("syslog_sudo", app == "sudo"),
        (
            "syslog_error",
            raw["severity_code"].as_u64().is_some_and(|s| s <= 3),
        ),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use pipeline::wire::Source;

    use super::super::sources::tests::{T0, records};

    #[test]
    fn lines_are_rfc5424_or_rfc3164_by_host() {
        let all = records(Source::Syslog, 300, Some("syslog_auth_failure"));
        let five = all.iter().filter(|r| r.line.contains(">1 2025-")).count();
        let bsd = all.iter().filter(|r| r.line.contains(">Dec ")).count();
        assert_eq!(five + bsd, all.len(), "{:?}", all.first());
        assert!(five > 30 && bsd > 30, "{five} RFC 5424, {bsd} RFC 3164");
        let first = &all[0];
        let raw: serde_json::Value = serde_json::from_slice(&first.raw).expect("JSON");
        assert_eq!(raw["procid"], first.key.as_str());
        let _ = T0;
    }
}
