use std::time::Duration;

use proptest::prelude::*;

use super::*;

const EXAMPLE: &str = "\
name: five-fields
rate: 50          # default events/s for phases without their own
phases:
  - normal: 2m
  - anomaly: country
    duration: 3m
    rate: 80
  - normal: 1m
  - anomaly: random
    duration: 1m
";

fn error(text: &str) -> String {
    Scenario::from_yaml(text)
        .expect_err("the scenario is rejected")
        .to_string()
}

#[test]
fn parses_the_documented_example() {
    let scenario = Scenario::from_yaml(EXAMPLE).expect("valid");
    let minutes = |m: u64| Some(Duration::from_secs(60 * m));
    assert_eq!(
        scenario,
        Scenario {
            name: "five-fields".into(),
            source: None,
            rate: Some(50.0),
            clients: CLIENT_POOL_SIZE,
            phases: vec![
                Phase::new(PhaseKind::Normal, minutes(2)),
                Phase::new(PhaseKind::Anomaly(MonitoredField::Country), minutes(3)).with_rate(80.0),
                Phase::new(PhaseKind::Normal, minutes(1)),
                Phase::new(PhaseKind::RandomAnomaly, minutes(1)),
            ],
        }
    );
    assert_eq!(scenario.duration(), minutes(7));
}

#[test]
fn the_module_docs_example_parses() {
    let docs = include_str!("../../scenario.rs");
    let start = docs.find("//! ```yaml\n").expect("has an example") + "//! ```yaml\n".len();
    let end = start + docs[start..].find("//! ```\n").expect("closed");
    let yaml: String = docs[start..end]
        .lines()
        .map(|line| line.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
        .collect();
    let scenario = Scenario::from_yaml(&yaml).expect("the documented example is valid");
    assert_eq!(scenario.phases.len(), 4);
}

#[test]
fn a_source_scenario_injects_its_indicators() {
    let docs = include_str!("../../scenario.rs");
    let start = docs
        .find("//! source: syslog\n")
        .expect("has a source example");
    let end = start + docs[start..].find("//! ```\n").expect("closed");
    let yaml: String = docs[start..end]
        .lines()
        .map(|line| line.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
        .collect();
    let scenario = Scenario::from_yaml(&yaml).expect("the documented example is valid");
    assert_eq!(scenario.source, Some(Source::Syslog));
    assert_eq!(
        scenario.phases[1].kind,
        PhaseKind::Inject("syslog_auth_failure")
    );

    for (text, says) in [
        (
            "source: syslog\nrate: 1\nphases:\n  - anomaly: waf_blocked\n    duration: 1m\n",
            "`waf_blocked` is not a syslog indicator; valid: syslog_auth_failure, syslog_sudo, syslog_error",
        ),
        (
            "source: waf\nrate: 1\nphases:\n  - anomaly: country\n    duration: 1m\n",
            "`country` is not a waf indicator",
        ),
        (
            "source: nginx\nrate: 1\nphases:\n  - normal: 1m\n",
            "source: unknown source `nginx`; valid sources: waf, cloudtrail",
        ),
        (
            "source: ndjson\nrate: 1\nphases:\n  - normal: 1m\n",
            "unknown source `ndjson`",
        ),
    ] {
        let message = error(text);
        assert!(message.contains(says), "{message}");
    }
    let seed_field = Scenario::sourced(
        Source::Splunk,
        "s",
        Some(1.0),
        vec![Phase::anomaly(
            MonitoredField::Action,
            Duration::from_secs(1),
        )],
    )
    .expect_err("a seed field in a source scenario")
    .to_string();
    assert!(
        seed_field.contains("hec_error, hec_warning"),
        "{seed_field}"
    );
    let no_source = Scenario::new(
        "s",
        Some(1.0),
        vec![Phase::inject("hec_error", Duration::from_secs(1))],
    )
    .expect_err("an indicator without a source")
    .to_string();
    assert!(
        no_source.contains("give the scenario its `source:`"),
        "{no_source}"
    );
}

#[test]
fn fields_are_named_as_users_type_them() {
    for (target, kind) in [
        ("action", PhaseKind::Anomaly(MonitoredField::Action)),
        (
            "httpSourceName",
            PhaseKind::Anomaly(MonitoredField::HttpSourceName),
        ),
        ("httpstatus", PhaseKind::Anomaly(MonitoredField::HttpStatus)),
        (
            "httpRequest.country",
            PhaseKind::Anomaly(MonitoredField::Country),
        ),
        ("httpMethod", PhaseKind::Anomaly(MonitoredField::HttpMethod)),
        ("Random", PhaseKind::RandomAnomaly),
    ] {
        let text = format!("rate: 1\nphases:\n  - anomaly: {target}\n    duration: 1s\n");
        let scenario = Scenario::from_yaml(&text).expect("valid");
        assert_eq!(scenario.phases[0].kind, kind, "{target}");
    }
}

#[test]
fn an_unknown_field_is_named_with_the_valid_ones() {
    let message = error("phases:\n  - normal: 1m\n  - anomaly: colour\n    duration: 1m\n");
    assert!(message.contains("phases[1]"), "{message}");
    assert!(message.contains("unknown field `colour`"), "{message}");
    for valid in [
        "action",
        "httpSourceName",
        "httpStatus",
        "country",
        "httpMethod",
        "random",
    ] {
        assert!(message.contains(valid), "{message} lacks {valid}");
    }
}

#[test]
fn zero_and_negative_rates_are_rejected_by_value() {
    for (text, shown, at) in [
        (
            "rate: 0\nphases:\n  - normal: 1m\n",
            "`0`",
            "scenario: rate",
        ),
        (
            "rate: -5\nphases:\n  - normal: 1m\n",
            "`-5`",
            "scenario: rate",
        ),
        (
            "phases:\n  - normal: 1m\n    rate: -5\n",
            "`-5`",
            "phases[0]",
        ),
        (
            "phases:\n  - normal: 1m\n    rate: .nan\n",
            "`NaN`",
            "phases[0]",
        ),
    ] {
        let message = error(text);
        assert!(message.contains(shown), "{message}");
        assert!(message.contains(at), "{message}");
        assert!(message.contains("greater than 0"), "{message}");
    }
    assert!(Scenario::normal(0.0, None).is_err());
    assert!(Scenario::anomaly(MonitoredField::Action, Duration::from_secs(1), -5.0).is_err());
}

#[test]
fn bad_durations_are_rejected_with_the_units() {
    for (duration, shown, reason) in [
        ("5x", "`5x`", "unknown time unit \"x\""),
        ("30", "`30`", "time unit needed, for example 30sec or 30ms"),
        ("0s", "`0s`", "it must be longer than 0"),
        ("0", "`0`", "it must be longer than 0"),
        ("soon", "`soon`", "expected number at 0"),
        ("''", "``", "value was empty"),
        (
            "99999999999999999999d",
            "`99999999999999999999d`",
            "number is too large",
        ),
        ("999999999y", "`999999999y`", "it is too long"),
    ] {
        let message = error(&format!("rate: 1\nphases:\n  - normal: {duration}\n"));
        assert!(
            message.contains(&format!("phases[0]: invalid duration {shown}: {reason}")),
            "{message}"
        );
        assert!(
            message.ends_with("; write numbers with units (ms, s, m, h, d, ...), e.g. `500ms`, `30s`, `5m`, `1h30m`"),
            "{message}"
        );
    }
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let message = error("rate: 1\nphases:\n  - normal: 1m\n    colour: red\n");
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(
        message.contains("anomaly"),
        "lists the valid keys: {message}"
    );
    let message = error("rate: 1\nspeed: 3\nphases:\n  - normal: 1m\n");
    assert!(message.contains("unknown field `speed`"), "{message}");
}

#[test]
fn malformed_phases_say_what_to_write() {
    for (phases, says) in [
        ("  - anomaly: action\n", "needs a duration"),
        (
            "  - normal: 1m\n    anomaly: action\n    duration: 1m\n",
            "not both",
        ),
        (
            "  - rate: 5\n",
            "needs `normal: <duration>` or `anomaly: <field>`",
        ),
        (
            "  - normal: 1m\n    duration: 1m\n",
            "takes its duration as its value",
        ),
    ] {
        let message = error(&format!("rate: 1\nphases:\n{phases}"));
        assert!(
            message.contains("phases[0]") && message.contains(says),
            "{message}"
        );
    }
    assert!(error("rate: 1\nphases: []\n").contains("at least one phase"));
    assert!(error("rate: 1\n").contains("phases"));
    assert!(error("- 1\n- 2\n").starts_with("scenario: "));
}

#[test]
fn the_moving_traffic_example_parses() {
    let docs = include_str!("../../scenario.rs");
    let start = docs
        .find("//! name: moving-traffic\n")
        .expect("has a moving-traffic example");
    let end = start + docs[start..].find("//! ```\n").expect("closed");
    let yaml: String = docs[start..end]
        .lines()
        .map(|line| line.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
        .collect();
    let scenario = Scenario::from_yaml(&yaml).expect("the documented example is valid");
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let rates: Vec<Option<RateCurve>> = scenario.phases.iter().map(|p| p.rate).collect();
    assert_eq!(
        rates,
        [
            None,
            Some(RateCurve::times(3.0)),
            Some(RateCurve::sine(50.0, 25.0, minutes(10))),
            None,
            Some(RateCurve::ramp(20.0, 60.0)),
            None,
            None,
        ]
    );
    let intensities: Vec<Intensity> = scenario.phases.iter().map(|p| p.intensity).collect();
    assert_eq!(intensities[3], Intensity::Constant(0.05));
    assert_eq!(intensities[5], Intensity::ramp(0.0, 0.3));
    assert_eq!(scenario.duration(), Some(minutes(45)));
    for (rate, curve) in [
        ("3X", RateCurve::Times(3.0)),
        ("' 0.5x '", RateCurve::Times(0.5)),
        ("'50'", RateCurve::Constant(50.0)),
    ] {
        let text = format!("rate: 10\nphases:\n  - normal: 1m\n    rate: {rate}\n");
        let scenario = Scenario::from_yaml(&text).expect("valid");
        assert_eq!(scenario.phases[0].rate, Some(curve), "{rate}");
    }
}

#[test]
fn bad_curves_and_intensities_name_the_key_and_the_fix() {
    let anomaly = |extra: &str| {
        format!(
            "rate: 10\nphases:\n  - normal: 1m\n  - anomaly: country\n    duration: 1m\n{extra}"
        )
    };
    let normal = |extra: &str| format!("rate: 10\nphases:\n  - normal: 1m\n{extra}");
    let cases = [
        (
            anomaly("    intensity: -0.1\n"),
            "phases[1]: intensity: invalid intensity `-0.1`: the share of the phase's records \
                 drawn with the anomaly's weights is a number above 0 and at most 1, e.g. `0.05`",
        ),
        (anomaly("    intensity: 1.5\n"), "invalid intensity `1.5`"),
        (anomaly("    intensity: 0\n"), "invalid intensity `0`"),
        (
            anomaly("    intensity: {from: 0, to: 2}\n"),
            "phases[1]: intensity.to: invalid intensity `2`: the share of the phase's records \
                 drawn with the anomaly's weights is a number from 0 to 1",
        ),
        (
            anomaly("    intensity: {from: 0, to: 0}\n"),
            "phases[1]: intensity: a ramp from 0 to 0 makes no anomalous record: give `to` \
                 above 0",
        ),
        (anomaly("    intensity: {from: 0}\n"), "missing field `to`"),
        (
            anomaly("    intensity: {from: 0, to: 1, by: 2}\n"),
            "unknown field `by`",
        ),
        (
            anomaly("    intensity: high\n"),
            "an intensity: the share of the phase's records",
        ),
        (
            normal("    intensity: 0.05\n"),
            "phases[0]: intensity: a normal phase has no intensity: give it to an anomaly phase",
        ),
        (
            normal("    intensty: 0.05\n"),
            "unknown field `intensty`, expected one of",
        ),
        (
            normal("    rate: {sine: {mean: 10, amplitude: 20, period: 1m}}\n"),
            "phases[0]: rate.sine: the rate would fall to 10 - 20 = -10/s at the cycle's \
                 trough, and a rate must stay above 0: make `amplitude` smaller than `mean` \
                 (below 10), or raise `mean` above 20",
        ),
        (
            normal("    rate: {sine: {mean: 10, amplitude: 10, period: 1m}}\n"),
            "rate.sine: the rate would fall to 10 - 10 = 0/s",
        ),
        (
            normal("    rate: {sine: {mean: 10, amplitude: -1, period: 1m}}\n"),
            "phases[0]: rate.sine.amplitude: invalid amplitude `-1`",
        ),
        (
            normal("    rate: {sine: {mean: -10, amplitude: 1, period: 1m}}\n"),
            "phases[0]: rate.sine.mean: invalid rate `-10`",
        ),
        (
            normal("    rate: {sine: {mean: 10, amplitude: 1, period: 10}}\n"),
            "phases[0]: rate.sine.period: invalid duration `10`: time unit needed",
        ),
        (
            normal("    rate: {sine: {mean: 10, period: 1m}}\n"),
            "missing field `amplitude`",
        ),
        (
            normal("    rate: {sine: {mean: 10, amplitude: 1, period: 1m, phase: 2}}\n"),
            "unknown field `phase`",
        ),
        (
            normal("    rate: {from: 1, too: 2}\n"),
            "unknown field `too`",
        ),
        (
            normal("    rate: {from: 1}\n"),
            "phases[0]: rate: a ramp needs both ends: `{from: 20, to: 60}`",
        ),
        (
            normal("    rate: {from: 1, to: 2, sine: {mean: 1, amplitude: 0, period: 1m}}\n"),
            "not both",
        ),
        (
            normal("    rate: {from: -5, to: 2}\n"),
            "phases[0]: rate.from: invalid rate `-5`: the rate must be a number of events \
                 per second greater than 0",
        ),
        (
            normal("    rate: 0x\n"),
            "phases[0]: rate: invalid multiple `0x`: a surge is a multiple of the scenario's \
                 rate greater than 0, e.g. `3x`",
        ),
        (
            normal("    rate: fast\n"),
            "phases[0]: rate: invalid rate `fast`: write events per second (`50`), a multiple \
                 of the scenario's rate (`3x`), a ramp (`{from: 20, to: 60}`) or a cycle",
        ),
    ];
    for (text, says) in cases {
        let message = error(&text);
        assert!(message.contains(says), "{text}\n{message}\nlacks: {says}");
    }
}

#[test]
fn clients_and_from_parse_into_the_pool_size_and_the_entity() {
    let minute = Duration::from_secs(60);
    let named = "203.0.113.7".parse().expect("an address");
    for (text, clients, from) in [
        ("rate: 1\nphases:\n  - normal: 1m\n", 300, None),
        (
            "clients: 10000\nrate: 1\nphases:\n  - normal: 1m\n",
            10_000,
            None,
        ),
        ("clients: 1\nrate: 1\nphases:\n  - normal: 1m\n", 1, None),
        (
            "clients: 100000\nrate: 1\nphases:\n  - normal: 1m\n",
            100_000,
            None,
        ),
        (
            "rate: 1\nphases:\n  - anomaly: country\n    duration: 1m\n    from: client\n",
            300,
            Some(FromClient::Picked),
        ),
        (
            "rate: 1\nphases:\n  - anomaly: random\n    duration: 1m\n    from: ' Client'\n",
            300,
            Some(FromClient::Picked),
        ),
        (
            "rate: 1\nphases:\n  - anomaly: action\n    duration: 1m\n    from: {client: 203.0.113.7}\n",
            300,
            Some(FromClient::Address(named)),
        ),
    ] {
        let scenario = Scenario::from_yaml(text).expect(text);
        assert_eq!(scenario.clients, clients, "{text}");
        assert_eq!(scenario.phases[0].from, from, "{text}");
    }
    let shipped = Scenario::from_yaml(include_str!("../../../scenarios/one-bad-client.yaml"))
        .expect("the shipped example is valid");
    let code = Scenario::new(
        "one-bad-client",
        Some(200.0),
        vec![
            Phase::normal(10 * minute),
            Phase::anomaly(MonitoredField::Country, 3 * minute)
                .with_intensity(0.02)
                .from_client(FromClient::Picked),
            Phase::normal(5 * minute),
        ],
    )
    .and_then(|scenario| scenario.with_clients(10_000))
    .expect("valid");
    assert_eq!(shipped, code);
    let docs = include_str!("../../scenario.rs");
    let start = docs
        .find("//! name: one-bad-client\n")
        .expect("has a one-bad-client example");
    let end = start + docs[start..].find("//! ```\n").expect("closed");
    let yaml: String = docs[start..end]
        .lines()
        .map(|line| line.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
        .collect();
    let documented = Scenario::from_yaml(&yaml).expect("the documented example is valid");
    assert_eq!(documented, code);
}

#[test]
fn bad_clients_and_from_name_the_key_and_the_fix() {
    let pool = |clients: &str| format!("clients: {clients}\nrate: 1\nphases:\n  - normal: 1m\n");
    let from = |kind: &str, from: &str| {
        format!("rate: 1\nphases:\n  - normal: 1m\n  - {kind}\n    from: {from}\n")
    };
    let anomaly = "anomaly: country\n    duration: 1m";
    let cases = [
        (
            pool("0"),
            "scenario: clients: invalid client pool size `0`: `clients:` is how many \
                 distinct client addresses the records draw from, 1 to 100000 (e.g. \
                 `clients: 10000`; 300 when absent)",
        ),
        (
            pool("-3"),
            "scenario: clients: invalid client pool size `-3`",
        ),
        (
            pool("100001"),
            "scenario: clients: invalid client pool size `100001`",
        ),
        (pool("many"), "clients: invalid type: string \"many\""),
        (
            from("normal: 1m", "client"),
            "scenario: phases[1]: from: a normal phase comes from every client: give `from` \
                 to an anomaly phase (`anomaly: country` with `from: client`)",
        ),
        (
            from(anomaly, "host"),
            "scenario: phases[1]: from: unknown `from` value `host`: write `from: client` (a \
                 quiet client of the pool, picked from the seed) or `from: {client: \
                 198.51.100.7}` (that address)",
        ),
        (from(anomaly, "3"), "unknown `from` value `3`"),
        (
            from(anomaly, "{client: 300.1.2.3}"),
            "phases[1]: from: invalid client address `300.1.2.3`, not an IPv4 address: \
                 write `from: client`",
        ),
        (
            from(anomaly, "{client: '2001:db8::1'}"),
            "invalid client address `2001:db8::1`",
        ),
        (
            from(anomaly, "{host: web-1}"),
            "unknown field `host`, expected `client`",
        ),
        (
            "source: syslog\nrate: 1\nphases:\n  - anomaly: syslog_auth_failure\n    \
                 duration: 1m\n    from: client\n"
                .to_owned(),
            "scenario: phases[0]: from: `from` picks a client of the seed's records, and a \
                 source's records have no client pool",
        ),
    ];
    for (text, says) in cases {
        let message = error(&text);
        assert!(message.contains(says), "{text}\n{message}\nlacks: {says}");
    }
    let in_code = Scenario::normal(1.0, None)
        .and_then(|scenario| scenario.with_clients(0))
        .expect_err("an empty pool")
        .to_string();
    assert!(
        in_code.contains("scenario `normal`: clients: invalid client pool size `0`"),
        "{in_code}"
    );
    let normal_from = Scenario::new(
        "s",
        Some(1.0),
        vec![Phase::normal(Duration::from_secs(1)).from_client(FromClient::Picked)],
    )
    .expect_err("a normal phase with a client")
    .to_string();
    assert!(
        normal_from.contains("phases[0]: from: a normal phase"),
        "{normal_from}"
    );
}

#[test]
fn files_are_read_and_named_after_their_stem() {
    let path = std::env::temp_dir().join(format!("logwarden-{}-demo.yaml", std::process::id()));
    std::fs::write(&path, "rate: 5\nphases:\n  - normal: 1s\n").expect("writes");
    let scenario = Scenario::load(&path);
    std::fs::remove_file(&path).expect("removes");
    let scenario = scenario.expect("valid");
    assert!(scenario.name.ends_with("-demo"), "{}", scenario.name);

    let missing = Path::new("/nonexistent/logwarden/missing.yaml");
    let message = Scenario::load(missing).expect_err("unreadable").to_string();
    assert!(message.contains("cannot read scenario file /nonexistent/logwarden/missing.yaml"));
}

proptest! {
    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = Scenario::from_yaml(&text);
        let _ = parse_duration(&text);
    }

    #[test]
    fn parsing_arbitrary_values_in_a_scenario_never_panics(
        value in "[ -~]{0,20}",
        key in prop::sample::select(vec!["normal", "anomaly", "duration", "rate", "name", "intensity", "from", "clients"]),
    ) {
        let text = format!("rate: 1\nphases:\n  - normal: 1m\n  - {key}: {value}\n");
        let _ = Scenario::from_yaml(&text);
        let curve = format!("rate: 1\nphases:\n  - anomaly: country\n    duration: 1m\n    {key}: {{from: {value}, to: 1}}\n");
        let _ = Scenario::from_yaml(&curve);
    }
}
