//! The pipeline's three stages run in-process on a test's own topics and indices: the
//! transformer (`raw` → `enriched`), the sink (`enriched` → the events alias) and the detector
//! (`enriched` → results and checkpoints), each with its own telemetry so a test reads its
//! metrics. The detector can be stopped and started again (a new process would do the same:
//! restore from its checkpoint).

use std::future::Future;
use std::time::Duration;

use pipeline::kafka::KafkaConfig;
use pipeline::service::Service;
use pipeline::telemetry::Telemetry;
use pipeline::testkit;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::search::Search;
use crate::traffic::{self, Running};

/// The detector's one detector in the fault suite: events of a known source per interval, a
/// count that stays steady under steady traffic.
pub const DETECTOR: &str = "source-count";
/// The field it sums.
pub const FIELD: &str = "K_source";

/// The traffic and the detector's timing for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Raw records a second.
    pub rate: u32,
    /// The detector's interval, ms.
    pub interval_ms: i64,
    /// How long after its end an interval closes, ms: longer than the fault keeps records
    /// away, as in production (a minute by default), so a fault delays records but makes none late.
    pub window_delay_ms: i64,
    /// The sink's bulk request timeout, ms (short, so a frozen OpenSearch is noticed quickly).
    pub request_timeout_ms: u64,
}

/// One stage running in-process.
pub struct Stage {
    name: &'static str,
    stop: CancellationToken,
    task: JoinHandle<Result<(), String>>,
    /// Its metrics and readiness.
    pub telemetry: Telemetry,
    /// Where it serves `/metrics` (for a Prometheus to scrape).
    pub metrics: std::net::SocketAddr,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage").field("name", &self.name).finish()
    }
}

impl Stage {
    /// Starts `run` as the service `name`, in-process, with its own telemetry server.
    pub async fn spawn<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: FnOnce(Service) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (service, stop) = testkit::service(name).await;
        let telemetry = service.telemetry.clone();
        let metrics = service.server.local_addr;
        let task = tokio::spawn(run(service));
        Self {
            name,
            stop,
            task,
            telemetry,
            metrics,
        }
    }

    /// Stops the stage and waits for its drain; the error it ended with, if any.
    pub async fn stop(self) -> Result<(), String> {
        self.stop.cancel();
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(format!("the {} ended with an error: {err}", self.name)),
            Err(err) => Err(format!("the {} task failed: {err}", self.name)),
        }
    }

    /// Why the stage is no longer running, if it stopped by itself.
    pub fn ended(&self) -> Option<String> {
        self.task
            .is_finished()
            .then(|| format!("the {} stopped by itself", self.name))
    }

    /// The sum of a metric's samples over its label sets (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.telemetry
            .render()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The pipeline of one test.
#[derive(Debug)]
pub struct Pipeline {
    /// Its private topics.
    pub kafka: KafkaConfig,
    /// OpenSearch as the test reads it.
    pub search: Search,
    /// The events alias the sink writes and the detector reads history from.
    pub events: String,
    /// The detector's results index.
    pub results: String,
    /// The detector's checkpoints index.
    pub checkpoints: String,
    /// The traffic and timing.
    pub shape: Shape,
    /// The transformer.
    pub transformer: Stage,
    /// The sink.
    pub sink: Stage,
    /// The detector (`None` while stopped).
    pub detector: Option<Stage>,
    /// Errors the detector ended with (it is started again, as its Deployment would).
    pub exits: Vec<String>,
    /// A webhook the detector's one monitor alerts, if set before it starts (none by default:
    /// the fault tests expect no anomaly).
    pub webhook: Option<String>,
}

impl Pipeline {
    /// Creates the test's topics (2 partitions) and starts the transformer and the sink; the
    /// test starts the detector once traffic flows ([`Pipeline::start_detector`]), so its model
    /// learns the traffic's level from its first interval (started on an idle topic, it would
    /// rightly flag the traffic's arrival).
    pub async fn start(test: &str, shape: Shape) -> Self {
        let search = Search::require().await;
        let kafka = testkit::kafka_with_private_topics(test, 2).await;
        let name = testkit::unique_name(test);
        let events = format!("{name}events");

        let transformer_settings = {
            let raw = transformer::settings::RawConfig {
                kafka: kafka.clone(),
                transformer: transformer::settings::TransformerConfig {
                    group_id: format!("{name}transformer"),
                    ..Default::default()
                },
                ..Default::default()
            };
            transformer::settings::Settings::from_raw(raw, Some("faults-0".into()))
                .unwrap_or_else(|err| panic!("transformer settings: {err}"))
        };
        let transformer = Stage::spawn("transformer", move |service| async move {
            transformer::service::run(transformer_settings, &service)
                .await
                .map_err(|err| err.to_string())
        })
        .await;

        let sink_settings = {
            let mut raw = sink::settings::RawConfig {
                kafka: kafka.clone(),
                sink: sink::settings::SinkConfig {
                    index: events.clone(),
                    group_id: format!("{name}sink"),
                    batch_ms: 200,
                    request_timeout_ms: shape.request_timeout_ms,
                    ..Default::default()
                },
                ..Default::default()
            };
            raw.opensearch.url = search.url.clone();
            sink::settings::Settings::from_raw(raw, Some("faults-0".into()))
                .unwrap_or_else(|err| panic!("sink settings: {err}"))
        };
        let sink = Stage::spawn("sink", move |service| async move {
            sink::service::run(sink_settings, &service)
                .await
                .map_err(|err| err.to_string())
        })
        .await;

        Self {
            kafka,
            search,
            results: format!("{name}results"),
            checkpoints: format!("{name}checkpoints"),
            events,
            shape,
            transformer,
            sink,
            detector: None,
            exits: Vec::new(),
            webhook: None,
        }
    }

    /// The detector's settings: one detector summing [`FIELD`], no history (it learns live),
    /// a rise of an eighth of an interval's traffic needed to flag anything (steady traffic
    /// never does; a replay of records counted twice does), checkpoints every second.
    fn detector_settings(&self) -> detector::settings::Settings {
        let Shape {
            rate,
            interval_ms,
            window_delay_ms,
            ..
        } = self.shape;
        let min_rise = (i64::from(rate) * interval_ms / 1_000 / 8).max(5);
        let mut spec = format!(
            r#"
events: {events}
results: {results}
checkpoints: {checkpoints}
detectors:
  - name: {DETECTOR}
    feature: {{field: {FIELD}}}
    interval: {interval_ms}ms
    window_delay: {window_delay_ms}ms
    model: {{history: 0, baseline: 10, min_rise: {min_rise}}}
"#,
            events = self.events,
            results = self.results,
            checkpoints = self.checkpoints,
        );
        if let Some(hook) = &self.webhook {
            spec.push_str(&format!(
                "monitors:\n  - {{name: {DETECTOR}-monitor, detectors: [{DETECTOR}], channels: [hook]}}\n\
                 channels:\n  - {{name: hook, webhook: {{value: \"{hook}\"}}}}\n"
            ));
        }
        let mut raw = detector::settings::RawConfig {
            kafka: self.kafka.clone(),
            ..Default::default()
        };
        raw.opensearch.url = self.search.url.clone();
        raw.detector.checkpoint_ms = 1_000;
        let mut settings = detector::settings::Settings::from_raw(raw, Some("faults-0".into()))
            .unwrap_or_else(|err| panic!("detector settings: {err}"));
        settings.spec = detector::spec::Spec::parse(&spec, "the fault suite's spec")
            .unwrap_or_else(|err| panic!("the fault suite's spec: {err}"));
        settings
    }

    /// Starts the detector (again): it restores from its checkpoint if there is one, else it
    /// starts cold at the current interval.
    pub async fn start_detector(&mut self) {
        assert!(self.detector.is_none(), "the detector runs already");
        let settings = self.detector_settings();
        self.detector = Some(
            Stage::spawn("detector", move |service| async move {
                detector::service::run(settings, &service)
                    .await
                    .map_err(|err| err.to_string())
            })
            .await,
        );
    }

    /// For a test whose traffic has just begun: waits until the detector's first interval (it
    /// starts cold `window_delay` back) lies inside the traffic, starts it, and waits until its
    /// model has learnt the traffic's level (a shingle of 8 intervals), so that what follows is
    /// judged against steady traffic.
    pub async fn start_detector_on_traffic(&mut self) {
        let interval = Duration::from_millis(u64::try_from(self.shape.interval_ms).unwrap_or(0));
        let delay = Duration::from_millis(u64::try_from(self.shape.window_delay_ms).unwrap_or(0));
        tokio::time::sleep(delay + interval).await;
        self.start_detector().await;
        self.wait_ready().await;
        tokio::time::sleep(interval * 9).await;
    }

    /// A pipeline of `shape` with steady traffic at its rate (until the test finishes it) and
    /// the detector started on it, having learnt its level: ready for a fault.
    pub async fn with_steady_traffic(test: &str, shape: Shape, seed: u64) -> (Self, Running) {
        let mut pipeline = Self::start(test, shape).await;
        pipeline.wait_ready().await;
        let traffic = traffic::start_until(&pipeline.kafka, shape.rate, seed);
        pipeline.start_detector_on_traffic().await;
        (pipeline, traffic)
    }

    /// Stops the detector (it saves a checkpoint as it stops); an error it ended with is kept
    /// in [`Pipeline::exits`].
    pub async fn stop_detector(&mut self) {
        if let Some(detector) = self.detector.take()
            && let Err(err) = detector.stop().await
        {
            self.exits.push(err);
        }
    }

    /// If the detector stopped by itself, starts it again, as its Deployment would, and keeps
    /// why it stopped in [`Pipeline::exits`] (the verdict fails on it: the detector must ride
    /// out a fault without a restart). Returns whether it did.
    pub async fn revive_detector(&mut self) -> bool {
        if self.detector.as_ref().and_then(Stage::ended).is_none() {
            return false;
        }
        self.stop_detector().await;
        let exit = self.exits.last().cloned().unwrap_or_default();
        eprintln!("{exit}; started again");
        self.start_detector().await;
        true
    }

    /// The running detector.
    ///
    /// # Panics
    /// When it is stopped.
    pub fn detector(&self) -> &Stage {
        self.detector
            .as_ref()
            .unwrap_or_else(|| panic!("the detector is stopped"))
    }

    /// Waits until every running stage is ready (the transformer and sink have joined their
    /// groups, the detector holds its lease and is assigned its partitions).
    ///
    /// # Panics
    /// When one is not ready within a minute, saying why.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for stage in [
            Some(&self.transformer),
            Some(&self.sink),
            self.detector.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            loop {
                let (ready, why) = stage.telemetry.health.report();
                if ready {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the {} was not ready within a minute: {why}",
                    stage.name
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// The transformer or the sink, if one stopped by itself.
    pub fn ended(&self) -> Option<String> {
        [&self.transformer, &self.sink]
            .into_iter()
            .find_map(Stage::ended)
    }

    /// Stops every stage, then deletes the test's indices and topics; returns the errors the
    /// stages end with now (those of the detector's earlier exits are in the verdict already).
    pub async fn stop(mut self) -> Vec<String> {
        let before = self.exits.len();
        self.stop_detector().await;
        let mut exits = self.exits.split_off(before);
        exits.extend(self.sink.stop().await.err());
        exits.extend(self.transformer.stop().await.err());
        self.search
            .clean(&[
                format!("{}-*", self.events),
                self.events.clone(),
                self.results.clone(),
                self.checkpoints.clone(),
            ])
            .await;
        let topics = self.kafka.topics.all();
        testkit::delete_topics(&self.kafka, &topics).await;
        exits
    }

    /// How long to wait for the pipeline to catch up after traffic ends.
    pub fn catch_up(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.shape.window_delay_ms).unwrap_or(0))
            + Duration::from_secs(120)
    }
}
