//! The benchmarks' records: seed-shaped WAF records (about 550 bytes each) varied over the
//! seed's value sets, anomalies mixed in, so branch prediction sees realistic traffic. A small
//! deterministic generator (SplitMix64) makes every run measure the same records.

const ACTIONS: [&str; 5] = ["ALLOW", "CAPTCHA", "Challenge", "Count", "BLOCK"];
const SOURCES: [&str; 5] = ["ALB", "APIGW", "APPSYNC", "CF", "-"];
const STATUSES: [&str; 8] = ["200", "202", "307", "308", "403", "404", "502", "504"];
const COUNTRIES: [&str; 7] = ["US", "UK", "IN", "XX", "YY", "ZZ", "WW"];
const METHODS: [&str; 4] = ["GET", "HEAD", "POST", "DELETE"];
const URIS: [&str; 4] = ["/login", "/api/v1/orders", "/static/app.js", "/"];

/// SplitMix64.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[(self.next() % values.len() as u64) as usize]
    }
}

fn record(rng: &mut SplitMix, index: u64) -> String {
    let source = rng.pick(&SOURCES);
    format!(
        concat!(
            r#"{{"timestamp":{ts},"formatVersion":1,"action":"{action}","httpSourceName":"{source}","#,
            r#""httpSourceId":"{source_id}","httpStatus":"{status}","httpRequest":{{"clientIp":"203.0.113.{ip}","#,
            r#""country":"{country}","headers":[{{"name":"Host","value":"www.example.com"}},"#,
            r#"{{"name":"User-Agent","value":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}},"#,
            r#"{{"name":"Accept","value":"text/html"}}],"uri":"{uri}","args":"","httpVersion":"HTTP/1.1","#,
            r#""httpMethod":"{method}","requestId":"run/p0/{index:016}"}}}}"#
        ),
        ts = 1_700_000_000_000 + index * 37,
        action = rng.pick(&ACTIONS),
        source = source,
        source_id = source.to_ascii_lowercase(),
        status = rng.pick(&STATUSES),
        ip = rng.next() % 256,
        country = rng.pick(&COUNTRIES),
        uri = rng.pick(&URIS),
        method = rng.pick(&METHODS),
        index = index,
    )
}

/// The first `count` records of the fixed sequence.
pub fn records(count: u64) -> Vec<String> {
    let mut rng = SplitMix(42);
    (0..count).map(|i| record(&mut rng, i)).collect()
}
