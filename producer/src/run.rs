//! The producer's run loop: walk the schedule, generate each record, send it (paced by the wall
//! clock when live, as fast as the output takes it when backfilling), and publish each phase's
//! label once the phase is over (every anomaly phase's, and every normal phase's with a
//! duration: [`crate::schedule::PlannedPhase::label`]).
//!
//! Labels are published when a phase ends (or is cut short by a stop), so a label's span is what
//! was really produced. On shutdown the loop stops between records, awaits every delivery in
//! flight within the drain deadline, and publishes the label of a phase it cut short.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeline::service::Service;
use pipeline::shutdown::{DRAIN_DEADLINE, drain};
use pipeline::wire::Label;

use crate::generate::{Generator, InvalidInstance, SourceError, SourceGenerator};
use crate::output::{KafkaOutput, Metrics, Output, OutputError, StdoutOutput};
use crate::schedule::{Schedule, ScheduleError};
use crate::settings::{OutputKind, Settings, Timeline};

/// What a run did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Records sent and acknowledged.
    pub records: u64,
    /// Labels published.
    pub labels: Vec<Label>,
    /// Whether a signal stopped the run before its end.
    pub interrupted: bool,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The schedule could not be laid out.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The instance name is unusable.
    #[error(transparent)]
    Instance(#[from] InvalidInstance),
    /// The source's generator could not be built.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Records could not be delivered.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The drain deadline passed with deliveries outstanding.
    #[error("shutdown: {unacknowledged} records still unacknowledged after {deadline:?}")]
    DrainTimeout {
        /// How many.
        unacknowledged: usize,
        /// The deadline.
        deadline: Duration,
    },
}

/// The wall clock in epoch milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs the producer to the end of its schedule or until `service.shutdown` is cancelled.
pub async fn run(settings: Settings, service: &Service) -> Result<Summary, RunError> {
    let metrics = Metrics::register(&service.telemetry.registry)?;
    let schedule = match settings.timeline {
        Timeline::Live { start_ms } => {
            Schedule::live(&settings.scenario, start_ms, &settings.options)?
        }
        Timeline::Backfill { now_ms, span } => {
            Schedule::backfill(&settings.scenario, now_ms, Some(span), &settings.options)?
        }
    };
    let (seed, instance, run_id) = (settings.options.seed, &settings.instance, &settings.run_id);
    let mut records = match settings.scenario.source {
        None => Records::Seed(Generator::with_clients(
            seed,
            instance,
            run_id,
            settings.scenario.clients,
        )?),
        Some(source) => Records::Source(SourceGenerator::new(source, seed, instance, run_id)?),
    };
    let mut output = match settings.output {
        OutputKind::Kafka => Output::Kafka(KafkaOutput::new(
            &settings.kafka,
            &format!("logwarden-producer-{}", settings.instance),
            metrics.clone(),
            service.telemetry.health.clone(),
            service.shutdown.clone(),
        )?),
        OutputKind::Stdout => Output::Stdout(StdoutOutput::new(
            settings.labels_file.as_deref(),
            metrics.clone(),
        )?),
    };
    let paced = matches!(settings.timeline, Timeline::Live { .. });
    tracing::info!(
        scenario = %settings.scenario.name,
        run_id = %settings.run_id,
        instance = %settings.instance,
        seed = settings.options.seed,
        paced,
        events = ?schedule.total_events(),
        "Producing."
    );

    let shutdown = &service.shutdown;
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut current_phase = None;
    let mut last_ms = None;
    for event in schedule.events() {
        if paced {
            let wait = event.timestamp_ms - now_ms();
            if wait > 0 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
        if shutdown.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        if current_phase != Some(event.phase) {
            if let Some(done) = current_phase {
                publish_label(&schedule, done, None, &settings, &mut output, &mut summary).await?;
            }
            current_phase = Some(event.phase);
        }
        let (key, payload, source) = records.next(&event, settings.output);
        output.send(key, payload, source).await?;
        let (mode, field) = match (event.anomaly, event.inject) {
            (Some(field), _) => ("anomaly", field.name()),
            (None, Some(indicator)) => ("anomaly", indicator),
            (None, None) => ("normal", "none"),
        };
        metrics.records.with_label_values(&[mode, field]).inc();
        summary.records += 1;
        last_ms = Some(event.timestamp_ms);
    }

    if let Some(phase) = current_phase {
        if summary.interrupted {
            let stop_ms = last_ms.map_or(i64::MIN, |ms| ms + 1);
            publish_label(
                &schedule,
                phase,
                Some(stop_ms),
                &settings,
                &mut output,
                &mut summary,
            )
            .await?;
        } else {
            // A live phase lasts its whole planned span, not just until its last event.
            if paced && let Some(end_ms) = schedule.end_ms() {
                let wait = end_ms - now_ms();
                if wait > 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
            publish_label(&schedule, phase, None, &settings, &mut output, &mut summary).await?;
        }
    }

    let unacknowledged = output.unacknowledged();
    drain(output.flush(), DRAIN_DEADLINE)
        .await
        .map_err(|_| RunError::DrainTimeout {
            unacknowledged,
            deadline: DRAIN_DEADLINE,
        })??;
    let elapsed = started.elapsed().as_secs_f64();
    tracing::info!(
        records = summary.records,
        labels = summary.labels.len(),
        interrupted = summary.interrupted,
        elapsed_s = format!("{elapsed:.2}"),
        records_per_s = format!("{:.0}", summary.records as f64 / elapsed.max(1e-9)),
        "Done: every record delivered."
    );
    Ok(summary)
}

/// The generator a run draws from: the seed's, or a real source's.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per run, never moved in a loop: boxing would buy nothing"
)]
enum Records {
    Seed(Generator),
    Source(SourceGenerator),
}

impl Records {
    /// The record for `event`: its key, its payload for `output` (a source's records go to
    /// Kafka as `raw` holds them and to stdout as their senders send them) and its source.
    fn next(
        &mut self,
        event: &crate::schedule::Event,
        output: OutputKind,
    ) -> (String, Vec<u8>, Option<pipeline::wire::Source>) {
        match self {
            Self::Seed(generator) => {
                let record = generator.record(event);
                // A `RawLog` holds only strings and integers: serializing cannot fail.
                let payload = serde_json::to_vec(&record).unwrap_or_default();
                (record.http_request.request_id, payload, None)
            }
            Self::Source(generator) => {
                let record = generator.next(event.timestamp_ms, event.inject);
                let payload = match output {
                    OutputKind::Kafka => record.raw,
                    OutputKind::Stdout => record.line.into_bytes(),
                };
                (record.key, payload, Some(generator.source()))
            }
        }
    }
}

async fn publish_label(
    schedule: &Schedule,
    phase: usize,
    stop_ms: Option<i64>,
    settings: &Settings,
    output: &mut Output,
    summary: &mut Summary,
) -> Result<(), OutputError> {
    let Some(planned) = schedule.phases().iter().find(|p| p.index == phase) else {
        return Ok(());
    };
    let label = match stop_ms {
        Some(stop) => planned.label_until(&settings.run_id, &settings.instance, stop),
        None => planned.label(&settings.run_id, &settings.instance),
    };
    if let Some(label) = label {
        tracing::info!(
            kind = ?label.kind,
            field = %label.field,
            start_ms = label.start_ms,
            end_ms = label.end_ms,
            intensity = ?label.intensity,
            traffic = ?label.traffic,
            "Phase done."
        );
        output.send_label(&label).await?;
        summary.labels.push(label);
    }
    Ok(())
}
