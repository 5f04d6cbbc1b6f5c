//! The live queue page (`/queue`): per resource, the jobs queued and running against its caps
//! and the oldest wait; and the recent managed jobs with their decision and reason, so that a
//! maintainer sees why a job waits or was cancelled. Plain data in, HTML out: the guard fills
//! it from its store. The same lines show on the live usage pages, drawn by the same macros
//! (`usage_macros.html`): a resource's page its own [`QueueRow`], a project's page its own
//! [`RecentJob`]s.

use serde::{Deserialize, Serialize};

/// One resource's line.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueRow {
    pub resource: String,
    pub provider: String,
    /// Jobs queued (waiting for a runner).
    pub queued: u64,
    /// Jobs in progress.
    pub running: u64,
    /// Jobs holding a machine against the caps (running, or admitted by a gate).
    pub holding: u64,
    /// Jobs on a runner whose gate waits for a slot.
    pub waiting: u64,
    /// `quota.concurrency`, `quota.project_concurrency`, the provider's `max_concurrency`.
    pub concurrency: Option<u32>,
    pub project_concurrency: Option<u32>,
    pub provider_concurrency: Option<u32>,
    /// Jobs holding a machine of the provider, every resource together.
    pub provider_holding: u64,
    /// When the longest-waiting queued job was queued, and how many minutes ago.
    pub oldest_queued_at: Option<String>,
    pub oldest_wait_minutes: Option<u64>,
}

impl QueueRow {
    /// A cap is reached: a further job waits (gate) or is cancelled.
    pub fn full(&self) -> bool {
        self.concurrency
            .is_some_and(|c| self.holding >= u64::from(c))
            || self
                .provider_concurrency
                .is_some_and(|c| self.provider_holding >= u64::from(c))
    }
}

/// A managed job's decision.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecentJob {
    pub decided_at: String,
    pub repository: String,
    pub project: Option<String>,
    pub resource: Option<String>,
    pub job_id: i64,
    pub run_id: i64,
    /// `allow` or `deny`.
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    /// `webhook`, `gate` or `time-limit`.
    pub origin: String,
}

/// A job holding a machine, or waiting for one, against a resource's caps now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeldJob {
    pub resource: String,
    pub repository: String,
    pub run_id: i64,
    /// `None` while a gate's admission waits for its job to go in progress.
    pub job_id: Option<i64>,
    /// `waiting` (its gate waits for a slot: a cap is full), `admitted` (it holds a machine) or
    /// `over` (it went in progress beyond a cap: its run is cancelled, or only recorded).
    pub state: String,
    /// Since when, as the guard writes times.
    pub since: String,
}

/// The queue of every resource, and the recent decisions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Queue {
    /// When it was read.
    pub at: String,
    pub resources: Vec<QueueRow>,
    /// Newest first.
    pub recent: Vec<RecentJob>,
}
