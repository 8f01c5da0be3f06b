//! Pure: one log file's bytes into `raw` records. gzip is undone (by magic bytes, whatever the
//! name); a JSON document `{"Records":[...]}` (a CloudTrail log file) becomes one `cloudtrail`
//! record per element, as sent; anything else is NDJSON, one record per line of the directory's
//! configured source. No IO, no panics on input.

use pipeline::wire::Source;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::body::gunzip;
use crate::http::refusal::Refusal;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CloudTrail<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// The records of a file, and their source; `max_file` bounds the decompressed size.
pub fn records(
    bytes: &[u8],
    lines_source: Source,
    max_file: usize,
    max_event: usize,
) -> Result<(Source, Vec<Vec<u8>>), Refusal> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        gunzip(bytes, max_file)?
    } else {
        bytes.to_vec()
    };
    if let Ok(trail) = serde_json::from_slice::<CloudTrail<'_>>(&text) {
        let records: Vec<Vec<u8>> = trail
            .records
            .iter()
            .map(|r| r.get().as_bytes().to_vec())
            .collect();
        if let Some(index) = records.iter().position(|r| r.len() > max_event) {
            return Err(Refusal::at(
                crate::http::refusal::Reason::EventTooLarge,
                index,
                format!("record {index} is over {max_event} bytes"),
            ));
        }
        return Ok((Source::Cloudtrail, records));
    }
    crate::ndjson::lines(&text, max_event).map(|records| (lines_source, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::gzip;
    use crate::http::refusal::Reason;

    #[test]
    fn cloudtrail_documents_and_ndjson() {
        let trail = br#"{"Records":[{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com"},{"eventName":"PutBucketPolicy"}]}"#;
        let (source, trail) = records(&gzip(trail), Source::Waf, 1000, 1000).expect("valid");
        assert_eq!(source, Source::Cloudtrail);
        assert_eq!(
            trail,
            [
                br#"{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com"}"#.to_vec(),
                br#"{"eventName":"PutBucketPolicy"}"#.to_vec()
            ]
        );
        let (source, lines) =
            records_of(b"{\"action\":\"BLOCK\"}\n{\"action\":\"ALLOW\"}\n").expect("valid");
        assert_eq!((source, lines.len()), (Source::Waf, 2));
        assert_eq!(
            records_of(b"{\"a\":1}\nnot json").map_err(|r| r.reason),
            Err(Reason::InvalidData)
        );
        assert_eq!(
            records(&gzip(&[b'x'; 5000]), Source::Waf, 1000, 1000).map_err(|r| r.reason),
            Err(Reason::BodyTooLarge)
        );
    }

    fn records_of(bytes: &[u8]) -> Result<(Source, Vec<Vec<u8>>), Refusal> {
        records(&gzip(bytes), Source::Waf, 1000, 1000)
    }
}
