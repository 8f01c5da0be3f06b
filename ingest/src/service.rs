//! The service: binds every configured listener (so a taken port fails start-up, naming the
//! key), then serves until the shutdown token is cancelled. Shutdown stops accepting, lets
//! requests in progress finish within the drain deadline, and flushes the producer.

use std::net::SocketAddr;

use pipeline::service::Service;
use pipeline::shutdown::DRAIN_DEADLINE;
use tokio::task::JoinSet;

use crate::hec::channels::Channels;
use crate::http::{App, Inner};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::syslog;
use crate::writer::Writer;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The Kafka client could not be built.
    #[error("creating the Kafka producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source} (set `{key}` to a free address)")]
    Listen {
        /// The config key.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The syslog TLS material cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The bucket source's client cannot be built.
    #[error(transparent)]
    Bucket(#[from] crate::files::bucket::BucketError),
    /// A file source's checkpoint exists but cannot be read.
    #[error(
        "cannot read the checkpoint {} (`{key}`): {source}; let this user read it, or name \
         another file (a new one reads every file again)",
        path.display()
    )]
    Checkpoint {
        /// The config key naming it.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A receiver failed.
    #[error("{receiver} receiver: {source}")]
    Receiver {
        /// Which.
        receiver: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where the receivers listen (their actual addresses, when a port was 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound {
    /// The HTTP receivers.
    pub http: Option<SocketAddr>,
    /// Syslog over TCP.
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog over UDP.
    pub syslog_udp: Option<SocketAddr>,
}

/// Runs the receivers until `service.shutdown`.
pub async fn run(settings: Settings, service: &Service) -> Result<(), IngestError> {
    run_with(settings, service, |_| {}).await
}

/// As [`run`], telling `on_bound` where the receivers listen once they do (tests bind port 0).
pub async fn run_with(
    settings: Settings,
    service: &Service,
    on_bound: impl FnOnce(Bound),
) -> Result<(), IngestError> {
    let metrics = Metrics::new(&service.telemetry.registry)?;
    let health = service.telemetry.health.clone();
    let writer = Writer::new(
        &settings.kafka,
        settings.ack_timeout,
        metrics.clone(),
        health.clone(),
    )?;
    match writer.probe().await {
        Ok(()) => tracing::info!(brokers = %settings.kafka.brokers, "Kafka reachable."),
        Err(err) => tracing::warn!(%err, "Kafka not reachable yet; requests get 503 until it is."),
    }
    let shutdown = service.shutdown.clone();
    let mut tasks: JoinSet<Result<(), IngestError>> = JoinSet::new();
    let mut bound = Bound::default();
    if let Some(http) = &settings.http {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .map_err(|source| IngestError::Listen {
                key: "ingest.http.listen",
                addr: http.listen,
                source,
            })?;
        bound.http = listener.local_addr().ok();
        let app = App::new(Inner {
            writer: writer.clone(),
            tokens: settings.tokens.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            max_body: http.max_body_bytes,
            max_event: settings.max_event_bytes,
            retry_after: settings.retry_after,
            channels: http
                .hec_acknowledgements
                .then(|| Channels::new(http.max_channels)),
        });
        tracing::info!(listen = ?bound.http, "Serving HEC, Firehose and NDJSON.");
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            crate::http::serve(listener, app, shutdown)
                .await
                .map_err(|source| IngestError::Receiver {
                    receiver: "http",
                    source,
                })
        });
    }
    let receiver = syslog::Receiver {
        writer: writer.clone(),
        metrics: metrics.clone(),
        max_message: settings.max_event_bytes,
        retry_after: settings.retry_after,
    };
    if let Some(addr) = settings.syslog.tcp {
        let tls = settings
            .syslog
            .tls
            .as_ref()
            .map(syslog::tls::acceptor)
            .transpose()
            .map_err(IngestError::Tls)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| IngestError::Listen {
                key: "ingest.syslog.tcp",
                addr,
                source,
            })?;
        bound.syslog_tcp = listener.local_addr().ok();
        tracing::info!(listen = ?bound.syslog_tcp, tls = tls.is_some(), "Serving syslog over TCP.");
        let receiver = receiver.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            receiver.serve_tcp(listener, tls, shutdown).await;
            Ok(())
        });
    }
    if let Some(addr) = settings.syslog.udp {
        let socket =
            tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(|source| IngestError::Listen {
                    key: "ingest.syslog.udp",
                    addr,
                    source,
                })?;
        bound.syslog_udp = socket.local_addr().ok();
        tracing::info!(listen = ?bound.syslog_udp, "Serving syslog over UDP.");
        let receiver = receiver.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            receiver.serve_udp(socket, shutdown).await;
            Ok(())
        });
    }
    let file_ingest = |receiver, source, max_file| crate::files::FileIngest {
        receiver,
        source,
        max_file,
        max_event: settings.max_event_bytes,
        writer: writer.clone(),
        metrics: metrics.clone(),
        retry_after: settings.retry_after,
    };
    if let Some((directory, checkpoint, source)) = settings.files.clone() {
        tracing::info!(directory = %directory.display(), "Reading log files.");
        let files = crate::files::Files {
            directory,
            checkpoint: load_checkpoint("ingest.files.checkpoint_file", &checkpoint)?,
            poll: settings.files_poll,
            ingest: file_ingest("files", source, settings.max_file_bytes),
        };
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            files.serve(shutdown).await;
            Ok(())
        });
    }
    if let Some(bucket) = settings.bucket.clone() {
        tracing::info!(bucket = %bucket.name, prefix = %bucket.prefix, endpoint = ?bucket.endpoint, credentials = %bucket.credentials.describe(), "Reading log files from a bucket.");
        let ingest = file_ingest("bucket", bucket.source, bucket.max_file_bytes);
        let done = load_checkpoint("ingest.bucket.checkpoint_file", &bucket.checkpoint)?;
        let bucket = crate::files::bucket::Bucket::new(bucket, ingest)?;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            bucket.serve(done, shutdown).await;
            Ok(())
        });
    }
    on_bound(bound);
    let mut result = Ok(());
    let mut record = |joined: Result<Result<(), IngestError>, tokio::task::JoinError>| match joined
    {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::error!(%err, "A receiver failed; stopping.");
            shutdown.cancel();
            if result.is_ok() {
                result = Err(err);
            }
        }
        Err(err) => {
            tracing::error!(%err, "A receiver task failed; stopping.");
            shutdown.cancel();
        }
    };
    // Until shutdown (or a receiver's failure, which cancels it)...
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            joined = tasks.join_next() => match joined {
                Some(joined) => record(joined),
                None => break,
            },
        }
    }
    // ...then the receivers drain within the deadline.
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while let Some(joined) = tasks.join_next().await {
            record(joined);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(deadline = ?DRAIN_DEADLINE, "Receivers did not drain in time.");
    }
    writer.flush(std::time::Duration::from_secs(5));
    tracing::info!("Ingest stopped.");
    result
}

/// A file source's checkpoint, read at start-up (`key` names it in the error).
fn load_checkpoint(
    key: &'static str,
    path: &std::path::Path,
) -> Result<crate::files::checkpoint::Checkpoint, IngestError> {
    crate::files::checkpoint::Checkpoint::load(path).map_err(|source| IngestError::Checkpoint {
        key,
        path: path.to_owned(),
        source,
    })
}
