//! Syslog receivers: TCP (both RFC 6587 framings, optional TLS) and UDP (one message per
//! datagram). Messages are framed ([`frame`]), parsed ([`parse`]) and written in batches; a TCP
//! connection is not read while its last batch waits for Kafka, so a slow or absent Kafka
//! pushes back on the sender through TCP's own flow control. A failed batch is retried (with
//! backoff) until it is written or the service stops; what is still unwritten at shutdown is
//! logged and counted (`reason="shutdown"`), never dropped silently.

pub mod frame;
pub mod parse;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use pipeline::wire::Source;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::writer::Writer;
use frame::Framer;
use parse::Receipt;

/// Most messages written in one batch.
const MAX_BATCH: usize = 1_000;

/// What the syslog receivers share.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The producer to `raw`.
    pub writer: Writer,
    /// The service's metrics.
    pub metrics: Metrics,
    /// Longest message kept whole (`ingest.max_event_bytes`); longer ones are cut.
    pub max_message: usize,
    /// The longest wait between retries of a failed batch.
    pub retry_after: Duration,
}

impl Receiver {
    /// Accepts connections until `shutdown`, then waits for open connections to finish
    /// writing what they read.
    pub async fn serve_tcp(
        self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        shutdown: CancellationToken,
    ) {
        let connections = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(%err, "Accepting a syslog connection failed.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let receiver = self.clone();
            let shutdown = shutdown.clone();
            let tls = tls.clone();
            connections.spawn(async move {
                receiver.metrics.connections.inc();
                match tls {
                    None => receiver.connection(stream, peer, "tcp", &shutdown).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => receiver.connection(stream, peer, "tls", &shutdown).await,
                        Err(err) => {
                            tracing::warn!(%err, %peer, "Syslog TLS handshake failed.");
                        }
                    },
                }
                receiver.metrics.connections.dec();
            });
        }
        connections.close();
        connections.wait().await;
    }

    /// Reads one connection to its end (or shutdown), writing every message.
    async fn connection<S: AsyncRead + Unpin>(
        &self,
        mut stream: S,
        peer: SocketAddr,
        transport: &'static str,
        shutdown: &CancellationToken,
    ) {
        let mut framer = Framer::new(self.max_message);
        let mut buffer = vec![0_u8; 64 * 1024];
        let mut open = true;
        while open {
            let mut batch = Vec::new();
            while batch.len() < MAX_BATCH
                && let Some(frame) = framer.next_frame()
            {
                batch.push(self.record(&frame, Some(peer), transport));
            }
            if batch.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => open = false,
                    read = stream.read(&mut buffer) => match read {
                        Ok(0) => open = false,
                        Ok(n) => framer.push(&buffer[..n]),
                        Err(err) => {
                            tracing::debug!(%err, %peer, "Syslog connection closed.");
                            open = false;
                        }
                    },
                }
                if open {
                    continue;
                }
                while let Some(frame) = framer.finish() {
                    batch.push(self.record(&frame, Some(peer), transport));
                }
                if batch.is_empty() {
                    break;
                }
            }
            // Nothing more is read until the batch is written: back-pressure on the sender.
            if !self.deliver(&batch, transport, shutdown).await {
                // Stopped while Kafka could not take the batch: count what else was read.
                let mut left = 0_u64;
                while framer.next_frame().is_some() {
                    left += 1;
                }
                left += u64::from(framer.finish().is_some());
                self.count_unwritten(transport, left);
                break;
            }
        }
    }

    /// Receives datagrams until `shutdown`; each is one message.
    pub async fn serve_udp(self, socket: UdpSocket, shutdown: CancellationToken) {
        let mut buffer = vec![0_u8; 65_536];
        loop {
            let (n, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                received = socket.recv_from(&mut buffer) => match received {
                    Ok(received) => received,
                    Err(err) => {
                        tracing::warn!(%err, "Receiving a syslog datagram failed.");
                        continue;
                    }
                },
            };
            let mut batch = vec![self.datagram(&buffer[..n], peer)];
            // Whatever else is already waiting joins the batch.
            while batch.len() < MAX_BATCH {
                match socket.try_recv_from(&mut buffer) {
                    Ok((n, peer)) => batch.push(self.datagram(&buffer[..n], peer)),
                    Err(_) => break,
                }
            }
            if !self.deliver(&batch, "udp", &shutdown).await {
                break;
            }
        }
    }

    fn datagram(&self, bytes: &[u8], peer: SocketAddr) -> Vec<u8> {
        let text = bytes.trim_ascii_end();
        let kept = &text[..text.len().min(self.max_message)];
        let frame = frame::Frame {
            bytes: kept.to_vec(),
            truncated: kept.len() < text.len(),
        };
        self.record(&frame, Some(peer), "udp")
    }

    fn record(
        &self,
        frame: &frame::Frame,
        peer: Option<SocketAddr>,
        transport: &'static str,
    ) -> Vec<u8> {
        if frame.truncated {
            self.metrics.truncated.with_label_values(&[transport]).inc();
        }
        let receipt = Receipt {
            at: chrono::Utc::now(),
            peer,
        };
        parse::record(&frame.bytes, frame.truncated, receipt)
    }

    /// Writes `batch`, retrying until Kafka has it (true) or the service stops (false).
    async fn deliver(
        &self,
        batch: &[Vec<u8>],
        transport: &'static str,
        shutdown: &CancellationToken,
    ) -> bool {
        let receiver = format!("syslog_{transport}");
        let written = self
            .writer
            .write_until_done(Source::Syslog, batch, &receiver, self.retry_after, shutdown)
            .await;
        if !written {
            self.count_unwritten(transport, batch.len() as u64);
        }
        written
    }

    fn count_unwritten(&self, transport: &'static str, messages: u64) {
        if messages > 0 {
            self.metrics
                .refused
                .with_label_values(&[&format!("syslog_{transport}"), "shutdown"])
                .inc_by(messages);
            tracing::error!(
                messages,
                transport,
                "Stopped with syslog messages Kafka never acknowledged: they are lost unless the sender resends them; check /readyz (Kafka reachable) before stopping the service."
            );
        }
    }
}
