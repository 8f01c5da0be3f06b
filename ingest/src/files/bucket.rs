//! Log files from an S3-compatible bucket (`ingest.bucket`), through `object_store`'s S3 client
//! (signed requests, endpoint override and path-style for S3-compatible servers). Every poll the
//! prefix is listed; each key not in the checkpoint (and whose last segment does not start with
//! `.`) is fetched, decoded and written like a directory's file ([`FileIngest`]), then recorded.
//!
//! A bucket that cannot be read (wrong credentials, no such bucket, unreachable) stops nothing
//! else: the error is logged at every poll with the bucket, the access key id (never the
//! secret) and the fix, counted in `logwarden_ingest_bucket_errors_total{reason}`, and the
//! listing is tried again at the next poll. A key is recorded only once its records are in
//! Kafka, or once it was refused (not gzip, not JSON, too large): never for a failed fetch.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio_util::sync::CancellationToken;

use super::FileIngest;
use super::bucket_config::{BucketSettings, Credentials};
use super::checkpoint::Checkpoint;

/// Why the bucket could not be read; each is a value of the metric's `reason`.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The server refused the credentials (403/401).
    #[error(
        "bucket `{bucket}` refused {credentials}: {detail}. Fix ingest.bucket.access_key_id and \
         the secret key (ingest.bucket.secret_access_key from a Secret, or \
         ingest.bucket.secret_access_key_file), and let them list and read the bucket"
    )]
    Credentials {
        /// The bucket.
        bucket: String,
        /// Which credentials (the access key id, never the secret).
        credentials: String,
        /// The server's answer.
        detail: String,
    },
    /// The bucket does not exist there.
    #[error(
        "bucket `{bucket}` does not exist at {endpoint}: create it, or fix ingest.bucket.name \
         and ingest.bucket.endpoint"
    )]
    NoBucket {
        /// The bucket.
        bucket: String,
        /// Where it was looked for.
        endpoint: String,
    },
    /// Anything else: the server is unreachable, or answered with an error.
    #[error(
        "cannot read bucket `{bucket}` at {endpoint}: {detail} (check ingest.bucket.endpoint, \
         ingest.bucket.region and the network)"
    )]
    Unavailable {
        /// The bucket.
        bucket: String,
        /// Where.
        endpoint: String,
        /// Why.
        detail: String,
    },
    /// The client could not be built from the settings.
    #[error("cannot use bucket `{bucket}`: {detail} (check the ingest.bucket settings)")]
    Client {
        /// The bucket.
        bucket: String,
        /// Why.
        detail: String,
    },
}

impl BucketError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Credentials { .. } => "credentials",
            Self::NoBucket { .. } => "no_bucket",
            Self::Unavailable { .. } => "unavailable",
            Self::Client { .. } => "client",
        }
    }
}

/// The bucket receiver.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    settings: BucketSettings,
    /// Decoding and writing.
    ingest: FileIngest,
}

impl Bucket {
    /// The receiver for `settings` (no request is made yet).
    pub fn new(settings: BucketSettings, ingest: FileIngest) -> Result<Self, BucketError> {
        let mut builder = match &settings.credentials {
            Credentials::Key {
                access_key_id,
                secret_access_key,
            } => AmazonS3Builder::new()
                .with_access_key_id(access_key_id)
                .with_secret_access_key(secret_access_key.expose()),
            Credentials::Aws => AmazonS3Builder::from_env(),
        }
        .with_bucket_name(&settings.name)
        .with_region(&settings.region)
        .with_virtual_hosted_style_request(!settings.path_style)
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(60)),
        )
        // A poll that fails is tried again at the next poll: no long retries inside one.
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|err| BucketError::Client {
            bucket: settings.name.clone(),
            detail: err.to_string(),
        })?;
        Ok(Self {
            store: Arc::new(store),
            settings,
            ingest,
        })
    }

    /// Lists the prefix: the keys not done yet, in name order.
    pub async fn pending(&self, done: &Checkpoint) -> Result<Vec<(Path, u64)>, BucketError> {
        let prefix = Path::from(self.settings.prefix.as_str());
        let prefix = (!self.settings.prefix.trim_matches('/').is_empty()).then_some(&prefix);
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|err| self.classify(&err))?;
        let mut keys: Vec<(Path, u64)> = listed
            .into_iter()
            .filter(|meta| {
                let hidden = meta.location.filename().is_none_or(|n| n.starts_with('.'));
                !hidden && !done.contains(meta.location.as_ref())
            })
            .map(|meta| (meta.location, meta.size))
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Reads the bucket until `shutdown`; `done` is its checkpoint, loaded at start-up.
    pub async fn serve(self, mut done: Checkpoint, shutdown: CancellationToken) {
        loop {
            match self.pending(&done).await {
                Ok(keys) => {
                    for (key, size) in keys {
                        if shutdown.is_cancelled() {
                            return;
                        }
                        let bytes = match self.fetch(&key, size).await {
                            Ok(bytes) => bytes,
                            Err(err) => {
                                self.failed(&err);
                                break;
                            }
                        };
                        if !self.ingest.ingest(key.as_ref(), bytes, &shutdown).await {
                            return;
                        }
                        if let Err(err) = done.record(key.as_ref()) {
                            tracing::error!(%err, checkpoint = %done.path().display(), "Cannot write the bucket checkpoint; stopping the bucket receiver: make the checkpoint's directory writable and restart (keys already sent are sent again).");
                            return;
                        }
                    }
                }
                Err(err) => self.failed(&err),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// An object's bytes; `Ok(Err(why))` when the object itself is refused (too large), so that
    /// it is counted and recorded; `Err` when the bucket could not be read (tried again later).
    async fn fetch(&self, key: &Path, size: u64) -> Result<Result<Vec<u8>, String>, BucketError> {
        if size > self.settings.max_file_bytes as u64 {
            return Ok(Err(format!(
                "the object is {size} bytes, over ingest.bucket.max_file_bytes ({})",
                self.settings.max_file_bytes
            )));
        }
        let got = self.store.get(key).await.map_err(|e| self.classify(&e))?;
        let bytes = got.bytes().await.map_err(|e| self.classify(&e))?;
        Ok(Ok(bytes.to_vec()))
    }

    fn failed(&self, err: &BucketError) {
        self.ingest
            .metrics
            .bucket_errors
            .with_label_values(&[err.reason()])
            .inc();
        tracing::error!(receiver = "bucket", reason = err.reason(), "{err}");
    }

    fn classify(&self, err: &object_store::Error) -> BucketError {
        classify(err, &self.settings)
    }
}

/// The error's kind, from its variant or, for listings (which the S3 client reports as generic
/// errors), from the status and S3 error code in its text.
fn classify(err: &object_store::Error, settings: &BucketSettings) -> BucketError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    let endpoint = settings
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("AWS S3 ({})", settings.region));
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    let denied = matches!(
        err,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || has(&[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403 Forbidden",
        "401 Unauthorized",
    ]);
    if denied {
        BucketError::Credentials {
            bucket: settings.name.clone(),
            credentials: settings.credentials.describe(),
            detail: s3_code(&text).unwrap_or_else(|| "access denied".to_owned()),
        }
    } else if has(&["NoSuchBucket"]) {
        BucketError::NoBucket {
            bucket: settings.name.clone(),
            endpoint,
        }
    } else {
        BucketError::Unavailable {
            bucket: settings.name.clone(),
            endpoint,
            detail: text,
        }
    }
}

/// The S3 error code (`<Code>SignatureDoesNotMatch</Code>`) in a response's text.
fn s3_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_s3_error_code() {
        assert_eq!(
            s3_code("403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code><Message>x</Message>")
                .as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(s3_code("connection refused"), None);
    }
}
