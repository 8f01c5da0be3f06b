//! Reading a request body within the size limit, and undoing `Content-Encoding: gzip` within
//! the same limit (a small gzip bomb is refused, not inflated).

use std::io::Read;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};

use super::refusal::{Reason, Refusal};

/// The body's bytes, decoded, at most `max` bytes before and after decoding.
pub async fn read(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, Refusal> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > max as u64
    {
        return Err(too_large(max));
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|err| {
        if is_length_limit(&err) {
            too_large(max)
        } else {
            Refusal::new(Reason::InvalidData, format!("reading the body: {err}"))
        }
    })?;
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(bytes.to_vec()),
        Some("gzip" | "x-gzip") => gunzip(&bytes, max),
        Some(other) => Err(Refusal::new(
            Reason::BadEncoding,
            format!("Content-Encoding `{other}` is not supported (send gzip or none)"),
        )),
    }
}

/// Decompresses gzip (every member) into at most `max` bytes.
pub fn gunzip(bytes: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| Refusal::new(Reason::BadEncoding, format!("not valid gzip: {err}")))?;
    if out.len() > max {
        return Err(Refusal::new(
            Reason::BodyTooLarge,
            format!("the body decompresses to more than {max} bytes"),
        ));
    }
    Ok(out)
}

fn too_large(max: usize) -> Refusal {
    Refusal::new(
        Reason::BodyTooLarge,
        format!("the body is larger than {max} bytes"),
    )
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// gzip of `bytes`, for the unit tests of what undoes it.
#[cfg(test)]
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writes");
    encoder.finish().expect("finishes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_undone_within_the_limit() {
        assert_eq!(gunzip(&gzip(b"hello"), 5), Ok(b"hello".to_vec()));
        let bomb = gzip(&vec![b'a'; 10_000]);
        assert!(
            bomb.len() < 1_000,
            "a small body that inflates 10x: {}",
            bomb.len()
        );
        assert_eq!(
            gunzip(&bomb, 9_999).map_err(|r| r.reason),
            Err(Reason::BodyTooLarge)
        );
        assert_eq!(
            gunzip(b"not gzip", 100).map_err(|r| r.reason),
            Err(Reason::BadEncoding)
        );
    }
}
