//! What the guard did, as `/metrics` shows it in Prometheus' text format (OpenMetrics; the
//! route is [`crate::scrape`]).
//!
//! Counters and histograms are kept in memory by this process (each replica reports its own;
//! Prometheus adds them up). Figures that live in the shared store (jobs queued or running per
//! resource, minutes this month per resource) are read from it at each scrape, so every
//! replica reports the same values for them.
//!
//! `gatehouse_decide_duration_seconds_sum / gatehouse_webhook_duration_seconds_sum` is the
//! share of request time spent deciding.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::ActiveJobs;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// One of [`EVENTS`], `other`, or `unverified` for a delivery refused before its
    /// signature was checked good: nothing from an unsigned request names a series.
    event: &'static str,
    /// `processed`, `waiting` (stored, waiting for a fact), `duplicate`, `not-processed`
    /// (stored, processing failed), `rejected` (bad signature, content type or headers),
    /// `store-failed`.
    outcome: &'static str,
}

/// The events the guard reads; any other is counted as `other`.
pub const EVENTS: &[&str] = &[
    "workflow_job",
    "workflow_run",
    "ping",
    "member",
    "membership",
    "team",
    "organization",
    "repository",
];

/// The label of a verified delivery's event: one of a fixed set.
pub fn event_label(event: &str) -> &'static str {
    EVENTS
        .iter()
        .copied()
        .find(|e| *e == event)
        .unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MissingLabels {
    /// `run` or `roles`.
    fact: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: String,
    /// The deny rule's code; empty for `allow`.
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    resource: String,
    status: String,
}

/// The guard's metrics and the registry that prints them.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    minutes: Family<ResourceLabels, Counter>,
    webhook_seconds: Histogram,
    decide_seconds: Histogram,
    month_minutes: Family<ResourceLabels, Gauge>,
    jobs: Family<JobLabels, Gauge>,
    redeliveries: Counter,
    pool_alerts: Counter,
    waiting: Gauge,
    pending: Gauge,
    pending_oldest: Gauge,
    role_fetches: Family<OutcomeLabels, Counter>,
    facts_unavailable: Family<MissingLabels, Counter>,
    cancel_seconds: Histogram,
    explanations_dropped: Counter,
    run_approvals: Family<OutcomeLabels, Counter>,
    admissions: Family<OutcomeLabels, Counter>,
    gate_disagreements: Counter,
    gate_ungated: Counter,
    snapshot_bytes: Gauge,
    outliers: Family<ProjectLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "gatehouse_deliveries",
            "Webhook deliveries received, by event and what became of them",
            deliveries.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "gatehouse_decisions",
            "Jobs decided, by outcome and deny rule",
            decisions.clone(),
        );
        let minutes = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "gatehouse_counted_minutes",
            "Minutes of finished jobs counted by this process, by resource",
            minutes.clone(),
        );
        // 0.5 ms .. 8 s
        let webhook_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
        registry.register(
            "gatehouse_webhook_duration_seconds",
            "Time from a webhook delivery's arrival (body read) to its answer",
            webhook_seconds.clone(),
        );
        // 1 µs .. 16 ms
        let decide_seconds = Histogram::new(exponential_buckets(0.000001, 2.0, 15));
        registry.register(
            "gatehouse_decide_duration_seconds",
            "Time spent in the policy's decide (and its message) per queued job",
            decide_seconds.clone(),
        );
        let month_minutes = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "gatehouse_month_minutes",
            "Minutes used this calendar month (UTC), by resource, from the store",
            month_minutes.clone(),
        );
        let outliers = Family::<ProjectLabels, Gauge>::default();
        registry.register(
            "gatehouse_usage_outlier_minutes",
            "Minutes this week of each project using far more than its own recent median (guard.outliers in gatehouse.yml); only flagged projects appear",
            outliers.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "gatehouse_jobs",
            "Managed jobs queued or in progress, by resource, from the store",
            jobs.clone(),
        );
        let redeliveries = Counter::default();
        registry.register(
            "gatehouse_redeliveries_requested",
            "Missed webhook deliveries GitHub was asked to send again (catch-up)",
            redeliveries.clone(),
        );
        let pool_alerts = Counter::default();
        registry.register(
            "gatehouse_pool_alerts",
            "Sponsor credit pool alert thresholds reached and acted on (an issue opened or edited)",
            pool_alerts.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "gatehouse_waiting_deliveries",
            "Deliveries this process waits on: a queued job whose run or roles are being fetched, or a denied run not cancelled yet",
            waiting.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "gatehouse_unprocessed_deliveries",
            "Deliveries stored but not processed yet, from the store (every replica's)",
            pending.clone(),
        );
        let pending_oldest = Gauge::default();
        registry.register(
            "gatehouse_unprocessed_oldest_seconds",
            "How long the oldest unprocessed delivery has been waiting, from the store",
            pending_oldest.clone(),
        );
        let role_fetches = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gatehouse_role_fact_fetches",
            "Fetches of a repository's collaborator list, by outcome (fetched, failed)",
            role_fetches.clone(),
        );
        let facts_unavailable = Family::<MissingLabels, Counter>::default();
        registry.register(
            "gatehouse_facts_unavailable",
            "Jobs denied because a fact they needed could not be had in time, by fact",
            facts_unavailable.clone(),
        );
        // 1 ms .. 16 s
        let cancel_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "gatehouse_cancel_delay_seconds",
            "Time from a denied job's delivery reaching the guard to its cancel request leaving it",
            cancel_seconds.clone(),
        );
        let explanations_dropped = Counter::default();
        registry.register(
            "gatehouse_explanations_dropped",
            "Denials whose explanation (a check run) was dropped because too many waited for GitHub",
            explanations_dropped.clone(),
        );
        let run_approvals = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gatehouse_run_approvals",
            "Run approvals (`/gatehouse run`) by outcome: recorded, refused (answered why), admitted (a job admitted under one), allowance-used (a job refused because its approval's runs were used up)",
            run_approvals.clone(),
        );
        let admissions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gatehouse_admissions",
            "Runners' gates asking before a job's first step, by outcome (allow, deny, refused: a wrong token or a request about no such job, failed: the guard could not decide)",
            admissions.clone(),
        );
        let gate_disagreements = Counter::default();
        registry.register(
            "gatehouse_gate_disagreements",
            "Jobs the gate and the webhook path decided differently (the stricter holds)",
            gate_disagreements.clone(),
        );
        let gate_ungated = Counter::default();
        registry.register(
            "gatehouse_gate_ungated",
            "Jobs that started on a gated pool's resource without its gate asking first (a runner whose job-started hook is not set up)",
            gate_ungated.clone(),
        );
        let snapshot_bytes = Gauge::default();
        registry.register(
            "gatehouse_snapshot_bytes",
            "Size of the last signed policy snapshot made for runners",
            snapshot_bytes.clone(),
        );
        Metrics {
            run_approvals,
            admissions,
            gate_disagreements,
            gate_ungated,
            snapshot_bytes,
            explanations_dropped,
            registry,
            deliveries,
            decisions,
            minutes,
            webhook_seconds,
            decide_seconds,
            month_minutes,
            outliers,
            jobs,
            redeliveries,
            pool_alerts,
            waiting,
            pending,
            pending_oldest,
            role_fetches,
            facts_unavailable,
            cancel_seconds,
        }
    }

    /// A delivery's fate; `event` must come from [`event_label`] (or be `unverified`).
    pub fn delivery(&self, event: &'static str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { event, outcome })
            .inc();
    }

    pub fn admission(&self, outcome: &'static str) {
        self.admissions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn gate_disagreement(&self) {
        self.gate_disagreements.inc();
    }

    pub fn gate_ungated(&self) {
        self.gate_ungated.inc();
    }

    pub fn snapshot_made(&self, bytes: usize) {
        self.snapshot_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn explanation_dropped(&self) {
        self.explanations_dropped.inc();
    }

    pub fn run_approval(&self, outcome: &'static str) {
        self.run_approvals
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn waiting(&self, delta: i64) {
        self.waiting.inc_by(delta);
    }

    pub fn role_fetch(&self, outcome: &'static str) {
        self.role_fetches
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn facts_unavailable(&self, missing: gatehouse_policy::Missing) {
        self.facts_unavailable
            .get_or_create(&MissingLabels {
                fact: missing.as_str(),
            })
            .inc();
    }

    /// A cancel request leaves now, for a delivery that reached the guard at `received_at`.
    pub fn cancel_sent(&self, received_at: jiff::Timestamp) {
        let took = jiff::Timestamp::now().duration_since(received_at);
        self.cancel_seconds.observe(took.as_secs_f64().max(0.0));
    }

    pub fn decision(&self, outcome: &str, rule: Option<&str>) {
        self.decisions
            .get_or_create(&DecisionLabels {
                outcome: outcome.to_string(),
                rule: rule.unwrap_or_default().to_string(),
            })
            .inc();
    }

    pub fn minutes(&self, resource: &str, minutes: i64) {
        self.minutes
            .get_or_create(&ResourceLabels {
                resource: resource.to_string(),
            })
            .inc_by(minutes.max(0) as u64);
    }

    pub fn pool_alert(&self) {
        self.pool_alerts.inc();
    }

    pub fn redeliveries(&self, n: usize) {
        self.redeliveries.inc_by(n as u64);
    }

    pub fn webhook(&self, took: Duration) {
        self.webhook_seconds.observe(took.as_secs_f64());
    }

    pub fn decide(&self, took: Duration) {
        self.decide_seconds.observe(took.as_secs_f64());
    }
}

/// The figures read from the store at each scrape ([`crate::scrape`]), each replacing the
/// last: a resource or project no longer reported is dropped.
impl Metrics {
    /// This month's minutes per resource, every project together.
    pub fn set_month_minutes(&self, rows: Vec<(String, i64)>) {
        self.month_minutes.clear();
        for (resource, minutes) in rows {
            self.month_minutes
                .get_or_create(&ResourceLabels { resource })
                .set(minutes);
        }
    }

    /// This week's outliers (project, minutes this week).
    pub fn set_outliers<'a>(&self, found: impl IntoIterator<Item = (&'a str, u64)>) {
        self.outliers.clear();
        for (project, minutes) in found {
            self.outliers
                .get_or_create(&ProjectLabels {
                    project: project.to_string(),
                })
                .set(i64::try_from(minutes).unwrap_or(i64::MAX));
        }
    }

    /// Managed jobs queued and in progress, per resource.
    pub fn set_jobs(&self, rows: Vec<ActiveJobs>) {
        self.jobs.clear();
        for row in rows {
            for (status, n) in [("queued", row.queued), ("in_progress", row.in_progress)] {
                self.jobs
                    .get_or_create(&JobLabels {
                        resource: row.resource.clone(),
                        status: status.into(),
                    })
                    .set(n);
            }
        }
    }

    /// Deliveries stored but not processed yet, and the age of the oldest in seconds.
    pub fn set_pending(&self, count: i64, oldest_secs: i64) {
        self.pending.set(count);
        self.pending_oldest.set(oldest_secs);
    }

    /// Every metric in Prometheus' text format; `None` if it cannot be written.
    pub fn encode(&self) -> Option<String> {
        let mut text = String::new();
        encode(&mut text, &self.registry).ok()?;
        Some(text)
    }
}
