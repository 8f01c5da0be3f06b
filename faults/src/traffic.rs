//! Raw traffic at a steady rate: the producer's generator (normal mode), each record stamped on
//! a fixed grid (`1000 / rate` ms apart) and sent once the clock reaches its stamp, so every
//! interval of the detector holds the same number of events whatever the broker does. Sends do
//! not wait for acknowledgements: while the broker is away, records queue in the producer and
//! keep their stamps, as a real sender's would.

use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use producer::generate::Generator;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The wall clock, epoch ms: the stamps' clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a run of traffic sent, all acknowledged by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Records acknowledged.
    pub records: usize,
    /// The first record's stamp, epoch ms.
    pub first_ms: i64,
    /// The last record's stamp, epoch ms.
    pub last_ms: i64,
}

/// Where a run of traffic goes and whose clock stamps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lane {
    /// One partition of `raw`, or any (the producer's partitioner) when `None`.
    pub partition: Option<i32>,
    /// How far the sender's clock runs ahead of the true one, ms (negative: behind): a skewed
    /// partition's records carry stamps this far off, sent when the sender's clock reaches them.
    pub skew_ms: i64,
}

/// Traffic that runs until the test stops it ([`start_until`]).
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<Sent>,
}

impl Running {
    /// Stops sending and waits until every record sent was acknowledged.
    ///
    /// # Panics
    /// When a record was refused for good.
    pub async fn finish(self) -> Sent {
        self.stop.cancel();
        self.task
            .await
            .unwrap_or_else(|err| panic!("the traffic failed: {err}"))
    }
}

/// Sends `rate` records a second to `kafka`'s raw topic in the background until
/// [`Running::finish`], for a test that does not know beforehand how long its fault lasts.
pub fn start_until(kafka: &KafkaConfig, rate: u32, seed: u64) -> Running {
    let stop = CancellationToken::new();
    let task = run(
        kafka,
        Lane::default(),
        rate,
        Duration::MAX,
        stop.clone(),
        seed,
    );
    Running { stop, task }
}

/// Sends `rate` records a second to `kafka`'s raw topic in `lane` (one partition, a skewed
/// clock) for `duration`, in the background; the task ends once the broker acknowledged every
/// record.
///
/// # Panics
/// In the task, when a record is refused for good (delivery timeout, 5 minutes).
pub fn start_in(
    kafka: &KafkaConfig,
    lane: Lane,
    rate: u32,
    duration: Duration,
    seed: u64,
) -> JoinHandle<Sent> {
    run(kafka, lane, rate, duration, CancellationToken::new(), seed)
}

fn run(
    kafka: &KafkaConfig,
    lane: Lane,
    rate: u32,
    duration: Duration,
    stop: CancellationToken,
    seed: u64,
) -> JoinHandle<Sent> {
    let producer: FutureProducer = kafka
        .producer_config("faults-traffic")
        .create()
        .unwrap_or_else(|err| panic!("creating the traffic's producer: {err}"));
    let topic = kafka.topics.raw.clone();
    let step = 1_000 / i64::from(rate.max(1));
    tokio::spawn(async move {
        let mut generator = Generator::new(seed, "faults-0", "faults")
            .unwrap_or_else(|err| panic!("the traffic's generator: {err}"));
        let clock = || now_ms() + lane.skew_ms;
        let first_ms = clock();
        let end_ms =
            first_ms.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        let mut next_ms = first_ms;
        let mut deliveries = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while next_ms < end_ms && !stop.is_cancelled() {
            tick.tick().await;
            let now = clock();
            while next_ms <= now && next_ms < end_ms {
                let log = generator.next(next_ms, None);
                let payload = serde_json::to_vec(&log).unwrap_or_else(|err| panic!("{err}"));
                let mut record = FutureRecord::<(), _>::to(&topic).payload(&payload);
                if let Some(partition) = lane.partition {
                    record = record.partition(partition);
                }
                loop {
                    match producer.send_result(record) {
                        Ok(delivery) => break deliveries.push(delivery),
                        Err((err, returned))
                            if err.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                        {
                            record = returned;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err((err, _)) => panic!("sending a raw record: {err}"),
                    }
                }
                next_ms += step;
            }
        }
        let records = deliveries.len();
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => panic!("a raw record was not delivered: {err}"),
                Err(_) => panic!("a raw record's delivery was cancelled"),
            }
        }
        Sent {
            records,
            first_ms,
            last_ms: next_ms - step,
        }
    })
}

impl Sent {
    /// Two runs of traffic as one: records added, the stamps spanning both.
    #[must_use]
    pub fn and(self, later: Self) -> Self {
        Self {
            records: self.records + later.records,
            first_ms: self.first_ms.min(later.first_ms),
            last_ms: self.last_ms.max(later.last_ms),
        }
    }
}

/// Sends one raw record stamped `stamp_ms` to `partition` of `raw` and returns its event id once
/// the broker acknowledged it.
///
/// # Panics
/// When it is not delivered.
pub async fn send_one(kafka: &KafkaConfig, partition: i32, stamp_ms: i64, seed: u64) -> String {
    let producer: FutureProducer = kafka
        .producer_config("faults-one")
        .create()
        .unwrap_or_else(|err| panic!("creating a producer: {err}"));
    let mut generator = Generator::new(seed, "faults-1", "faults")
        .unwrap_or_else(|err| panic!("the generator: {err}"));
    let payload =
        serde_json::to_vec(&generator.next(stamp_ms, None)).unwrap_or_else(|err| panic!("{err}"));
    let topic = &kafka.topics.raw;
    let record = FutureRecord::<(), _>::to(topic)
        .partition(partition)
        .payload(&payload);
    let delivered = producer
        .send(record, Duration::from_secs(30))
        .await
        .unwrap_or_else(|(err, _)| panic!("sending the record stamped {stamp_ms}: {err}"));
    pipeline::wire::event_id(topic, delivered.partition, delivered.offset)
}
