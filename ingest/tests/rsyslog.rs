//! rsyslog (Debian's, installed by `cargo xtask test`) forwarding a log file to the syslog TCP
//! receiver, as a host's syslog daemon would: RFC 5424 with octet counting and RFC 3164 with
//! newline framing, every line counted on `raw` with its fields.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Ingest, sourced};
use pipeline::testkit;
use pipeline::wire::Source;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"global(workDirectory="{dir}/work")
module(load="imfile")
input(type="imfile" File="{dir}/app.log" Tag="payments" Severity="error" Facility="local3"
      freshStartTail="off")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       TCP_Framing="traditional" template="RSYSLOG_ForwardFormat")
"#
    )
}

#[tokio::test]
async fn rsyslog_forwards_a_file_over_tcp_in_both_framings() {
    assert!(
        Path::new(RSYSLOGD).exists(),
        "{RSYSLOGD} is missing: run the suite with `cargo xtask test` (it installs Debian's rsyslog)"
    );
    let ingest = Ingest::start("rsyslog", &[]).await;
    let port = ingest.bound.syslog_tcp.expect("tcp").port();
    let dir = std::env::temp_dir().join(testkit::unique_name("rsyslog").trim_end_matches('-'));
    std::fs::create_dir_all(dir.join("work")).expect("work directory");
    let lines: Vec<String> = (0..50)
        .map(|i| format!("card declined for order {i} (code 51)"))
        .collect();
    std::fs::write(dir.join("app.log"), lines.join("\n") + "\n").expect("log file");
    std::fs::write(dir.join("rsyslog.conf"), config(&dir, port)).expect("config");
    let mut rsyslogd = tokio::process::Command::new(RSYSLOGD)
        .arg("-n")
        .arg("-f")
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("starting {RSYSLOGD}: {err}"));

    let records = sourced(&ingest.raw(100).await);
    let _ = rsyslogd.kill().await;
    assert_eq!(records.len(), 100, "each line once per framing");
    let expected: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    for protocol in ["rfc5424", "rfc3164"] {
        let of: Vec<_> = records
            .iter()
            .filter(|(_, r)| r["protocol"] == protocol)
            .collect();
        let messages: BTreeSet<&str> = of
            .iter()
            .filter_map(|(_, r)| r["message"].as_str())
            .collect();
        assert_eq!(messages, expected, "{protocol}: every line, once");
        for (source, record) in of {
            assert_eq!(*source, Some(Source::Syslog));
            assert_eq!(
                (&record["appname"], &record["facility"], &record["severity"]),
                (&"payments".into(), &"local3".into(), &"err".into()),
                "{record}"
            );
        }
    }
    ingest.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
