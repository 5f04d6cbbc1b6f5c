//! Where the guard keeps what it must not forget: deliveries, runs, decisions and minutes.
//!
//! Two backends behind one enum: a SQLite file (the default, one process) and PostgreSQL
//! (several replicas behind a load balancer). Both run the same SQL text; only the schema's
//! type names differ. `$N` placeholders work on both (sqlx's SQLite driver reads `$N` as the
//! N-th argument).
//!
//! Deduplication rests on unique keys, not on memory: a delivery id or a job id is inserted
//! with `ON CONFLICT DO NOTHING`, and whoever inserts it first owns it. That holds across
//! replicas sharing one PostgreSQL.
//!
//! Every change goes through [`Store::commit`] as a unit of [`Write`]s applied all or nothing.
//! On SQLite one writer thread ([`crate::sqlite_writer`]) owns the only writing connection
//! and commits the units it has received together in one transaction (group commit): one
//! disk sync serves many deliveries, and each caller is answered only once its unit is
//! durable. On PostgreSQL each unit is its
//! own transaction on the pool (the server does the grouping).
//!
//! The read functions ([`Store::usage_of_month`], [`Store::weekly_usage`],
//! [`Store::project_usage`], [`Store::recent_denials`], [`Store::active_jobs`]) are public for
//! whoever shows the guard's data (the API, the ledger site's dashboard).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use sqlx::Connection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::sqlite_writer::{self, Unit};

/// The schema, one statement per entry. `{id}`, `{int}` and `{bytes}` are the backend's type
/// names; everything else is shared. `CREATE ... IF NOT EXISTS` makes it safe to run at every
/// start.
const SCHEMA: &[&str] = &[
    // `processed_at` stays NULL until the delivery's effects are stored: a delivery stored
    // but not processed (the process was killed in between) is processed at the next start.
    "CREATE TABLE IF NOT EXISTS deliveries (
        delivery_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        received_at TEXT NOT NULL,
        body {bytes} NOT NULL,
        processed_at TEXT,
        outcome TEXT
    )",
    "CREATE TABLE IF NOT EXISTS runs (
        run_id {int} PRIMARY KEY,
        repository TEXT NOT NULL,
        event TEXT NOT NULL,
        head_repository TEXT,
        actor_login TEXT NOT NULL,
        actor_id {int} NOT NULL,
        triggering_actor_login TEXT,
        triggering_actor_id {int},
        workflow TEXT,
        git_ref TEXT,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS decisions (
        id {id},
        delivery_id TEXT NOT NULL,
        job_id {int} NOT NULL,
        run_id {int} NOT NULL,
        repository TEXT NOT NULL,
        project TEXT,
        resource TEXT,
        outcome TEXT NOT NULL,
        rule TEXT,
        message TEXT,
        decided_at TEXT NOT NULL,
        context TEXT
    )",
    "CREATE INDEX IF NOT EXISTS decisions_by_project ON decisions (project, resource)",
    "CREATE TABLE IF NOT EXISTS job_minutes (
        job_id {int} PRIMARY KEY,
        project TEXT NOT NULL,
        resource TEXT NOT NULL,
        day TEXT NOT NULL,
        minutes {int} NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS job_minutes_by_month ON job_minutes (resource, day)",
    // Totals per month kept as jobs are counted, so that deciding a job reads a few rows
    // instead of summing every job of the month.
    "CREATE TABLE IF NOT EXISTS usage_by_month (
        project TEXT NOT NULL,
        resource TEXT NOT NULL,
        month TEXT NOT NULL,
        minutes {int} NOT NULL,
        PRIMARY KEY (project, resource, month)
    )",
    // Managed jobs and how far they got (queued, in_progress, completed): concurrency per
    // resource is the count of those not completed.
    "CREATE TABLE IF NOT EXISTS jobs (
        job_id {int} PRIMARY KEY,
        project TEXT,
        resource TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, resource)",
    // Jobs that hold a machine of a capped resource, or wait in a gate for one: the counts
    // behind the concurrency caps ([`crate::caps`]). One row per job, keyed by what both the
    // webhook and the gate know of it: `<run id>:<attempt>:<runner>`. `state`: `admitted`
    // (counts), `over` (went in progress beyond a cap: counts, and is cancelled or recorded),
    // `waiting` (in progress on a gated runner whose gate has not admitted it: does not
    // count). A row is removed when its job completes, and stops counting at `expires`.
    "CREATE TABLE IF NOT EXISTS holds (
        holder TEXT PRIMARY KEY,
        resource TEXT NOT NULL,
        provider TEXT NOT NULL,
        project TEXT,
        repository TEXT NOT NULL,
        run_id {int} NOT NULL,
        job_id {int},
        state TEXT NOT NULL,
        since TEXT NOT NULL,
        expires TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS holds_by_resource ON holds (resource, project)",
    "CREATE INDEX IF NOT EXISTS holds_by_provider ON holds (provider)",
    "CREATE INDEX IF NOT EXISTS holds_by_expiry ON holds (expires)",
    // A run's context per attempt: a re-run is a new attempt with its own triggering actor,
    // and an older attempt's events never overwrite a newer one's. (`runs`, keyed by run id
    // alone, is read only to migrate.)
    "CREATE TABLE IF NOT EXISTS run_attempts (
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        repository TEXT NOT NULL,
        event TEXT NOT NULL,
        head_repository TEXT,
        head_owner_login TEXT,
        head_owner_id {int},
        head_sha TEXT,
        actor_login TEXT NOT NULL,
        actor_id {int} NOT NULL,
        triggering_actor_login TEXT,
        triggering_actor_id {int},
        workflow TEXT,
        git_ref TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, run_attempt)
    )",
    // Who holds which role on each granted project's repository (the guard's role facts):
    // the repository's whole collaborator list as GitHub last gave it (`people`, JSON), when
    // that fetch started, and when something (a webhook) made it stale. Fresh when
    // `fetched_at` is after `invalidated_at` and within the time to live. `changed_at` lets
    // every replica read what another changed.
    "CREATE TABLE IF NOT EXISTS role_facts (
        repository TEXT PRIMARY KEY,
        people TEXT,
        etag TEXT,
        fetched_at TEXT,
        invalidated_at TEXT,
        changed_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS role_facts_by_change ON role_facts (changed_at)",
    // Who is in each team a grant names (the guard's team facts, [`team_facts`]), kept like
    // the role facts: the member list (`members`, JSON), when its fetch started, when a
    // webhook made it stale, and `changed_at` for the other replicas.
    "CREATE TABLE IF NOT EXISTS team_facts (
        team TEXT PRIMARY KEY,
        members TEXT,
        fetched_at TEXT,
        invalidated_at TEXT,
        changed_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS team_facts_by_change ON team_facts (changed_at)",
    // Run approvals (`/gatehouse run <sha>`, [`crate::run_approvals`]): one row per approving
    // comment or review (`source`: `comment:<id>` or `review:<id>`), the runs that used it
    // (`by_guard`: re-run by the guard after the approval, not counted against `runs`), and
    // the guard's one reply per pull request.
    "CREATE TABLE IF NOT EXISTS run_approvals (
        id {id},
        source TEXT NOT NULL,
        repository TEXT NOT NULL,
        pull_number {int} NOT NULL,
        head_sha TEXT NOT NULL,
        head_repository TEXT NOT NULL,
        resources TEXT NOT NULL,
        approver_login TEXT NOT NULL,
        approver_id {int} NOT NULL,
        approved_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        runs {int} NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS run_approvals_by_source ON run_approvals (source)",
    "CREATE INDEX IF NOT EXISTS run_approvals_by_commit ON run_approvals (head_sha)",
    "CREATE TABLE IF NOT EXISTS run_approval_runs (
        approval_id {int} NOT NULL,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        by_guard {int} NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (approval_id, run_id, run_attempt)
    )",
    "CREATE INDEX IF NOT EXISTS run_approval_runs_by_run ON run_approval_runs (run_id)",
    // The jobs a run approval let run: one row per job whose decision used it (the decision
    // records the approval it stood on), for the pages, the API, history and audit.
    "CREATE TABLE IF NOT EXISTS run_approval_jobs (
        approval_id {int} NOT NULL,
        job_id {int} NOT NULL,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        delivery_id TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        PRIMARY KEY (approval_id, job_id)
    )",
    "CREATE INDEX IF NOT EXISTS run_approval_jobs_by_job ON run_approval_jobs (job_id)",
    "CREATE TABLE IF NOT EXISTS run_approval_replies (
        repository TEXT NOT NULL,
        pull_number {int} NOT NULL,
        comment_id {int} NOT NULL,
        PRIMARY KEY (repository, pull_number)
    )",
    // Jobs running on a resource with a time limit (`max_job_minutes`): the guard cancels the
    // run of one still running at `deadline` ([`crate::time_limits`]). A replica takes a due
    // timer (`lease`: until then no other replica acts on it) before it calls GitHub, and
    // marks it `fired_at` once it acted; a lease that ends unfired (a crash, an error) lets
    // the next replica try. A row is removed when its job completes first.
    "CREATE TABLE IF NOT EXISTS job_timers (
        job_id {int} PRIMARY KEY,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        repository TEXT NOT NULL,
        project TEXT,
        resource TEXT NOT NULL,
        job_name TEXT,
        head_sha TEXT,
        started TEXT NOT NULL,
        deadline TEXT NOT NULL,
        lease TEXT,
        fired_at TEXT
    )",
    "CREATE INDEX IF NOT EXISTS job_timers_by_deadline ON job_timers (deadline)",
    // Sponsor credit pools ([`crate::credit`], `store/credit.rs`). What each running job of a
    // funded resource holds of its pool (its expected cost, in the pool's units), keyed like
    // `holds`; removed when the job completes, not counted after `expires`.
    "CREATE TABLE IF NOT EXISTS pool_reservations (
        holder TEXT PRIMARY KEY,
        pool TEXT NOT NULL,
        job_id {int},
        project TEXT,
        resource TEXT NOT NULL,
        units {int} NOT NULL,
        per_minute {int} NOT NULL,
        since TEXT NOT NULL,
        expires TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS pool_reservations_by_pool ON pool_reservations (pool, expires)",
    // What each completed job cost its pool, once per job.
    "CREATE TABLE IF NOT EXISTS pool_spend (
        job_id {int} PRIMARY KEY,
        pool TEXT NOT NULL,
        project TEXT,
        resource TEXT NOT NULL,
        day TEXT NOT NULL,
        units {int} NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS pool_spend_by_pool ON pool_spend (pool, day)",
    // Each pool's spending so far, in all, per day and per project (sums of `pool_spend`,
    // kept with it, so that a reservation and the pool's page read a few rows, not every job).
    "CREATE TABLE IF NOT EXISTS pool_totals (
        pool TEXT PRIMARY KEY,
        spent {int} NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS pool_days (
        pool TEXT NOT NULL,
        day TEXT NOT NULL,
        spent {int} NOT NULL,
        PRIMARY KEY (pool, day)
    )",
    "CREATE TABLE IF NOT EXISTS pool_projects (
        pool TEXT NOT NULL,
        project TEXT NOT NULL,
        spent {int} NOT NULL,
        PRIMARY KEY (pool, project)
    )",
    // Alert thresholds reached: a replica takes one (`lease`) before it calls GitHub, and
    // marks it `done_at` once it opened or edited the pool's issue (`issue`).
    "CREATE TABLE IF NOT EXISTS pool_alerts (
        pool TEXT NOT NULL,
        threshold {int} NOT NULL,
        lease TEXT,
        done_at TEXT,
        issue {int},
        PRIMARY KEY (pool, threshold)
    )",
];

/// Run after [`SCHEMA`] and after the columns added since the first schema exist.
const SCHEMA_LATE: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS deliveries_unprocessed ON deliveries (received_at)
        WHERE processed_at IS NULL",
    // One decision per delivery: a delivery processed again (after a crash, or by a second
    // replica) records nothing new.
    "CREATE UNIQUE INDEX IF NOT EXISTS decisions_by_delivery ON decisions (delivery_id)",
    // An admission is matched with its job's webhook decision by job id.
    "CREATE INDEX IF NOT EXISTS decisions_by_job ON decisions (job_id)",
    // A run approval finds the denied runs of its commit.
    "CREATE INDEX IF NOT EXISTS run_attempts_by_head ON run_attempts (head_sha)",
    // `gatehouse why` reads a run's decisions.
    "CREATE INDEX IF NOT EXISTS decisions_by_run ON decisions (run_id)",
    // Usage of one month (every project's, or each resource's total) without reading the
    // other months.
    "CREATE INDEX IF NOT EXISTS usage_by_month_by_month ON usage_by_month (month, resource, minutes)",
    // Usage charts read job minutes by day range.
    "CREATE INDEX IF NOT EXISTS job_minutes_by_day ON job_minutes (day, resource)",
    // A database from before `usage_by_month` existed: total what was counted.
    "INSERT INTO usage_by_month (project, resource, month, minutes)
        SELECT project, resource, SUBSTR(day, 1, 7), SUM(minutes) FROM job_minutes
        WHERE NOT EXISTS (SELECT 1 FROM usage_by_month)
        GROUP BY project, resource, SUBSTR(day, 1, 7)",
    // A database from before runs were kept per attempt: what it knew was the first attempt.
    "INSERT INTO run_attempts (run_id, run_attempt, repository, event, head_repository,
            actor_login, actor_id, triggering_actor_login, triggering_actor_id, workflow,
            git_ref, updated_at)
        SELECT run_id, 1, repository, event, head_repository, actor_login, actor_id,
            triggering_actor_login, triggering_actor_id, workflow, git_ref, updated_at
        FROM runs WHERE NOT EXISTS (SELECT 1 FROM run_attempts)",
];

/// Columns added after the first schema: (table, column, type, what to fill old rows with).
const ADDED_COLUMNS: &[(&str, &str, &str, Option<&str>)] = &[
    // Deliveries stored before this column existed were processed when they arrived.
    (
        "deliveries",
        "processed_at",
        "TEXT",
        Some("UPDATE deliveries SET processed_at = received_at"),
    ),
    ("deliveries", "outcome", "TEXT", None),
    ("decisions", "context", "TEXT", None),
    // For `bots: trusted`: whether a run's push is to the default branch.
    ("run_attempts", "default_branch", "TEXT", None),
    // Decisions made before admissions existed were the webhook path's.
    (
        "decisions",
        "origin",
        "TEXT",
        Some("UPDATE decisions SET origin = 'webhook'"),
    ),
];

/// The storage, on one of its two backends.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// SQLite only: the writer thread's queue.
    writer: Option<mpsc::Sender<Unit>>,
    /// `sqlite::memory:` only: the temporary folder of the file standing in for it (held,
    /// never read: dropping the last clone removes it).
    #[cfg_attr(not(test), allow(dead_code))]
    temporary: Option<Arc<tempfile::TempDir>>,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code on whichever pool the store holds (the pools have different
/// types, so each arm is compiled for its own backend).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

// After `on_pool!`, which they use.
mod credit;
mod run_approvals;
mod team_facts;
pub use credit::{Balance, CreditWrite, Reservation};
pub use run_approvals::{ApprovedJob, ApprovedRun, RunApprovalRecord, StoredRunApproval};
pub use team_facts::{TeamFactsRow, TeamFactsWrite};

/// One change to the store. [`Store::commit`] applies a list of them all or nothing and
/// answers, for each, how many rows it changed (0 for a duplicate).
#[derive(Clone, Debug)]
pub enum Write {
    /// A delivery as received; 0 rows when its id was stored before.
    Delivery {
        delivery_id: String,
        event: String,
        received_at: String,
        body: Bytes,
    },
    /// A run attempt's context; a later event about the same attempt replaces it (another
    /// attempt is another row).
    Run { run: RunRecord, now: String },
    /// A repository's collaborator list as GitHub gave it, from a fetch that started at
    /// `fetched_at`; ignored when a fetch that started later was stored already.
    RoleFacts {
        repository: String,
        people: String,
        etag: Option<String>,
        fetched_at: String,
        changed_at: String,
    },
    /// GitHub said a repository's collaborator list has not changed (304) in a fetch that
    /// started at `fetched_at`: the stored list is fresh as of then.
    RoleFactsFetched {
        repository: String,
        fetched_at: String,
        changed_at: String,
    },
    /// A webhook said a repository's roles changed at `at`: its facts are stale until fetched
    /// again. `None`: every repository's.
    InvalidateRoles {
        repository: Option<String>,
        at: String,
    },
    /// A change to the team facts.
    TeamFacts(TeamFactsWrite),
    /// A decision and, as JSON, the job context it was made on (for `replay`); 0 rows when
    /// this delivery's decision was recorded before.
    Decision {
        decision: DecisionRecord,
        context: Option<String>,
    },
    /// The admission `delivery_id` (`gate:<run>:<attempt>:<runner>`) was for job `job_id`.
    MatchAdmission { delivery_id: String, job_id: i64 },
    /// A finished job's minutes; 0 rows when this job was counted before.
    Minutes {
        job_id: i64,
        project: String,
        resource: String,
        /// `YYYY-MM-DD`, the day the job finished (UTC).
        day: String,
        minutes: i64,
    },
    /// How far a managed job got; a job never moves back (a late `queued` after
    /// `completed` changes nothing).
    JobStatus {
        job_id: i64,
        project: Option<String>,
        resource: String,
        status: JobStatus,
        at: String,
    },
    /// A gate asks to run a job on a capped resource: it takes a slot when every cap has
    /// room (1 row), else nothing changes (0 rows; also when it held one already).
    Admit(Hold),
    /// A job of a capped resource went in progress: it holds a machine, `admitted` when every
    /// cap had room, `over` when not, `waiting` on a gated resource (its gate decides);
    /// nothing when the job was reported completed before. A row the gate made keeps its state.
    Started { hold: Hold, gated: bool },
    /// A job completed: its machine is free.
    Release { holder: String },
    /// A run approval; 0 rows when its comment or review was recorded before.
    RunApproval(RunApprovalRecord),
    /// A run admitted under a run approval (see [`ApprovedRun`]).
    ApprovedRun(ApprovedRun),
    /// A change to the sponsor credit pools' books.
    Credit(CreditWrite),
    /// The comment the guard answers run approvals with on a pull request.
    RunApprovalReply {
        repository: String,
        pull_number: i64,
        comment_id: i64,
    },
    /// A job went in progress on a resource with a time limit; nothing when it was reported
    /// completed before, or is timed already.
    ArmTimer(JobTimer),
    /// A job completed: its time limit no longer applies.
    DisarmTimer { job_id: i64 },
    /// The guard acted on a job's time limit (cancelled its run, or found nothing to cancel).
    TimerFired { job_id: i64, at: String },
    /// The delivery's effects are stored; `outcome` is what processing said.
    Processed {
        delivery_id: String,
        at: String,
        outcome: String,
    },
}

/// A running job's time limit ([`crate::time_limits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTimer {
    pub job_id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub repository: String,
    pub project: Option<String>,
    pub resource: String,
    pub job_name: Option<String>,
    pub head_sha: Option<String>,
    /// When the job started, as [`time_text`] writes it.
    pub started: String,
    /// When it has run too long.
    pub deadline: String,
}

/// A job's claim on a machine of a capped resource, and the caps it is counted against.
#[derive(Clone, Debug)]
pub struct Hold {
    /// `<run id>:<attempt>:<runner>` ([`crate::caps::holder`]).
    pub holder: String,
    pub resource: String,
    pub provider: String,
    pub project: Option<String>,
    pub repository: String,
    pub run_id: i64,
    pub job_id: Option<i64>,
    pub limits: Limits,
    /// Now, as [`time_text`] writes it.
    pub at: String,
    /// When it stops counting if its job never reports completion.
    pub expires: String,
}

/// The caps a job counts against; `None`: no such cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub resource: Option<u32>,
    pub project: Option<u32>,
    pub provider: Option<u32>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.resource.is_some() || self.project.is_some() || self.provider.is_some()
    }
}

/// How many jobs hold a machine, per cap ([`Store::held`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    pub resource: i64,
    pub project: i64,
    pub provider: i64,
}

/// Where a managed job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }
}

/// What a `workflow_run` event (or GitHub's API) says about one attempt of a run, kept by
/// run id and attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: i64,
    pub run_attempt: i64,
    pub repository: String,
    pub event: String,
    pub head_repository: Option<String>,
    /// The head repository's owner (login, id): for a fork, whose code runs.
    pub head_owner: Option<(String, i64)>,
    pub head_sha: Option<String>,
    /// The repository's default branch, when the event (or the API) said.
    pub default_branch: Option<String>,
    pub actor: (String, i64),
    pub triggering_actor: Option<(String, i64)>,
    pub workflow: Option<String>,
    pub git_ref: Option<String>,
}

/// One repository's role facts as stored (times as [`time_text`] writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleFactsRow {
    /// Lower-cased `owner/name`.
    pub repository: String,
    /// The collaborator list as JSON; `None` when never fetched.
    pub people: Option<String>,
    pub etag: Option<String>,
    pub fetched_at: Option<String>,
    pub invalidated_at: Option<String>,
    pub changed_at: String,
}

/// One decision as recorded and as the JSON API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub delivery_id: String,
    pub job_id: i64,
    pub run_id: i64,
    pub repository: String,
    pub project: Option<String>,
    pub resource: Option<String>,
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub decided_at: String,
    /// `webhook` (the guard decided the queued job) or `gate` (a runner's gate asked before
    /// the job's first step; `delivery_id` is then `gate:<run>:<attempt>:<runner>`).
    pub origin: String,
}

/// Filters of `GET /api/v1/decisions`.
#[derive(Clone, Debug, Default)]
pub struct DecisionFilter {
    pub project: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Minutes of one project on one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub project: String,
    pub resource: String,
    pub minutes: i64,
}

impl From<(String, String, i64)> for UsageRow {
    /// A `(project, resource, minutes)` row as the usage queries select it.
    fn from((project, resource, minutes): (String, String, i64)) -> Self {
        UsageRow {
            project,
            resource,
            minutes,
        }
    }
}

/// Minutes on one resource in one week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeekUsage {
    /// The week's Monday, `YYYY-MM-DD`.
    pub week: String,
    pub resource: String,
    pub minutes: i64,
}

/// Managed jobs not finished yet on one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveJobs {
    pub resource: String,
    pub queued: i64,
    pub in_progress: i64,
}

/// A delivery as stored.
#[derive(Clone, Debug)]
pub struct StoredDelivery {
    pub delivery_id: String,
    pub event: String,
    pub received_at: String,
    pub body: Vec<u8>,
}

/// A stored `workflow_job` delivery with the decision recorded for it, if any (for `replay`).
#[derive(Clone, Debug)]
pub struct JobDelivery {
    pub delivery: StoredDelivery,
    /// `allow` or `deny`; `None` when no decision was recorded (the job was not managed, or
    /// it was not a `queued` event).
    pub outcome: Option<String>,
    pub rule: Option<String>,
    pub resource: Option<String>,
    /// The job context the decision was made on, as JSON.
    pub context: Option<String>,
    /// What processing the delivery said (`error: ...` when it failed); `None` while it
    /// is not processed.
    pub processed: Option<String>,
}

type DecisionRow = (
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// A decision as [`DecisionRow`] reads it.
fn decision_record(r: DecisionRow) -> DecisionRecord {
    DecisionRecord {
        delivery_id: r.0,
        job_id: r.1,
        run_id: r.2,
        repository: r.3,
        project: r.4,
        resource: r.5,
        outcome: r.6,
        rule: r.7,
        message: r.8,
        decided_at: r.9,
        origin: r.10,
    }
}

/// The present moment as the store writes it: fixed width, so text order is time order.
pub fn now_text() -> String {
    time_text(Timestamp::now())
}

/// `t` as the store writes times (`2026-01-02T03:04:05.000000000Z`).
pub fn time_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

const INSERT_DELIVERY: &str = "INSERT INTO deliveries (delivery_id, event, received_at, body)
    VALUES ($1, $2, $3, $4) ON CONFLICT (delivery_id) DO NOTHING";
const UPSERT_RUN: &str = "INSERT INTO run_attempts (run_id, run_attempt, repository, event,
        head_repository, head_owner_login, head_owner_id, head_sha, actor_login, actor_id,
        triggering_actor_login, triggering_actor_id, workflow, git_ref, updated_at,
        default_branch)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (run_id, run_attempt) DO UPDATE SET repository = excluded.repository,
        event = excluded.event, head_repository = excluded.head_repository,
        head_owner_login = excluded.head_owner_login, head_owner_id = excluded.head_owner_id,
        head_sha = excluded.head_sha,
        actor_login = excluded.actor_login, actor_id = excluded.actor_id,
        triggering_actor_login = excluded.triggering_actor_login,
        triggering_actor_id = excluded.triggering_actor_id,
        workflow = excluded.workflow, git_ref = excluded.git_ref,
        updated_at = excluded.updated_at, default_branch = excluded.default_branch";
/// A fetch's result replaces the stored one unless a fetch that started later was stored.
const UPSERT_ROLE_FACTS: &str = "INSERT INTO role_facts (repository, people, etag, fetched_at,
        changed_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (repository) DO UPDATE SET people = excluded.people, etag = excluded.etag,
        fetched_at = excluded.fetched_at, changed_at = excluded.changed_at
    WHERE role_facts.fetched_at IS NULL OR role_facts.fetched_at < excluded.fetched_at";
const TOUCH_ROLE_FACTS: &str = "UPDATE role_facts SET fetched_at = $2, changed_at = $3
    WHERE repository = $1 AND (fetched_at IS NULL OR fetched_at < $2)";
const INVALIDATE_ROLES: &str = "INSERT INTO role_facts (repository, invalidated_at, changed_at)
    VALUES ($1, $2, $2)
    ON CONFLICT (repository) DO UPDATE SET invalidated_at = excluded.invalidated_at,
        changed_at = excluded.changed_at";
const INVALIDATE_ALL_ROLES: &str = "UPDATE role_facts SET invalidated_at = $1, changed_at = $1";
const INSERT_DECISION: &str = "INSERT INTO decisions (delivery_id, job_id, run_id, repository,
        project, resource, outcome, rule, message, decided_at, context, origin)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (delivery_id) DO NOTHING";
/// An admission, matched with its job once the job is known (it goes in progress).
const MATCH_ADMISSION: &str =
    "UPDATE decisions SET job_id = $2 WHERE delivery_id = $1 AND origin = 'gate'";
const INSERT_MINUTES: &str = "INSERT INTO job_minutes (job_id, project, resource, day, minutes)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING";
const ADD_MONTH_MINUTES: &str = "INSERT INTO usage_by_month (project, resource, month, minutes)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (project, resource, month)
    DO UPDATE SET minutes = usage_by_month.minutes + excluded.minutes";
/// Statuses only move forward: queued (0) → in_progress (1) → completed (2).
const UPSERT_JOB: &str = "INSERT INTO jobs (job_id, project, resource, status, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (job_id) DO UPDATE SET status = excluded.status,
        updated_at = excluded.updated_at
    WHERE (CASE jobs.status WHEN 'queued' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END)
        < (CASE excluded.status WHEN 'queued' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END)";
/// Whether every cap has room for holder `$1` (of resource `$2`, provider `$3`, project `$4`)
/// at `$9`, against caps `$7` (resource), `$8` (project), `$10` (provider). Jobs waiting in a
/// gate and rows past `expires` do not count.
macro_rules! room {
    () => {
        "($7 IS NULL OR (SELECT COUNT(*) FROM holds WHERE resource = $2 AND state <> 'waiting'
                AND expires > $9 AND holder <> $1) < $7)
        AND ($8 IS NULL OR (SELECT COUNT(*) FROM holds WHERE resource = $2 AND project = $4
                AND state <> 'waiting' AND expires > $9 AND holder <> $1) < $8)
        AND ($10 IS NULL OR (SELECT COUNT(*) FROM holds WHERE provider = $3
                AND state <> 'waiting' AND expires > $9 AND holder <> $1) < $10)"
    };
}
/// A gate's claim: a new row, or a waiting row admitted, only when there is room.
const ADMIT_HOLD: &str = concat!(
    "INSERT INTO holds (holder, resource, provider, project, repository, run_id, job_id, state,
        since, expires)
    SELECT $1, $2, $3, $4, $5, $6, $11, 'admitted', $9, $12 WHERE ",
    room!(),
    " ON CONFLICT (holder) DO UPDATE SET state = 'admitted', since = excluded.since
    WHERE holds.state = 'waiting'"
);
/// A job in progress: counted as admitted or over (or waiting for its gate, `$13` = 1),
/// unless it completed before; a row the gate made keeps its state, learns the job id and
/// counts as long as a started job does.
const START_HOLD: &str = concat!(
    "INSERT INTO holds (holder, resource, provider, project, repository, run_id, job_id, state,
        since, expires)
    SELECT $1, $2, $3, $4, $5, $6, $11,
        CASE WHEN $13 = 1 THEN 'waiting' WHEN ",
    room!(),
    " THEN 'admitted' ELSE 'over' END, $9, $12
    WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = $11 AND status = 'completed')
    ON CONFLICT (holder) DO UPDATE SET job_id = excluded.job_id, expires = excluded.expires"
);
const RELEASE_HOLD: &str = "DELETE FROM holds WHERE holder = $1";
const ARM_TIMER: &str = "INSERT INTO job_timers (job_id, run_id, run_attempt, repository,
        project, resource, job_name, head_sha, started, deadline)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
    WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = $1 AND status = 'completed')
    ON CONFLICT (job_id) DO NOTHING";
const DISARM_TIMER: &str = "DELETE FROM job_timers WHERE job_id = $1 AND fired_at IS NULL";
const TIMER_FIRED: &str = "UPDATE job_timers SET fired_at = $2 WHERE job_id = $1";
/// On PostgreSQL, claims on one provider's machines take turns (until their transaction
/// ends), so that two replicas never both see the last free slot. SQLite has one writer.
const LOCK_PROVIDER: &str = "SELECT pg_advisory_xact_lock(7140532, hashtext($1))";
/// The same for a job's claim, which also takes its turn with the job's completion
/// ([`LOCK_JOB`]).
const LOCK_PROVIDER_AND_JOB: &str =
    "SELECT pg_advisory_xact_lock(7140532, hashtext($1)), pg_advisory_xact_lock($2)";
/// On PostgreSQL, a job's completion and its claim on a machine or credit take turns: a claim
/// written while the completion is not committed yet would see no completed job, and the
/// completion would see no claim to end; each would commit, and the claim would outlive its
/// job. Taking turns, whichever comes second sees the other. (A one-key advisory lock: its key
/// space is not the two-key locks'.)
const LOCK_JOB: &str = "SELECT pg_advisory_xact_lock($1)";
const MARK_PROCESSED: &str =
    "UPDATE deliveries SET processed_at = $2, outcome = $3 WHERE delivery_id = $1";

/// A value bound to one placeholder of a write's statement: what both backends bind.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Blob(&'a [u8]),
}

/// A statement and its arguments, `$1` first.
pub(crate) type Statement<'a> = (&'static str, Vec<Param<'a>>);

impl Write {
    /// The statement that applies this write (one place names each write's columns, for both
    /// backends).
    pub(crate) fn statement(&self) -> Statement<'_> {
        use Param::{Blob, Int, Text};
        fn t(s: &str) -> Param<'_> {
            Text(Some(s))
        }
        match self {
            Write::Delivery {
                delivery_id,
                event,
                received_at,
                body,
            } => (
                INSERT_DELIVERY,
                vec![t(delivery_id), t(event), t(received_at), Blob(body)],
            ),
            Write::Run { run, now } => {
                let triggering = run.triggering_actor.as_ref();
                let owner = run.head_owner.as_ref();
                (
                    UPSERT_RUN,
                    vec![
                        Int(Some(run.run_id)),
                        Int(Some(run.run_attempt)),
                        t(&run.repository),
                        t(&run.event),
                        Text(run.head_repository.as_deref()),
                        Text(owner.map(|o| o.0.as_str())),
                        Int(owner.map(|o| o.1)),
                        Text(run.head_sha.as_deref()),
                        t(&run.actor.0),
                        Int(Some(run.actor.1)),
                        Text(triggering.map(|a| a.0.as_str())),
                        Int(triggering.map(|a| a.1)),
                        Text(run.workflow.as_deref()),
                        Text(run.git_ref.as_deref()),
                        t(now),
                        Text(run.default_branch.as_deref()),
                    ],
                )
            }
            Write::RoleFacts {
                repository,
                people,
                etag,
                fetched_at,
                changed_at,
            } => (
                UPSERT_ROLE_FACTS,
                vec![
                    t(repository),
                    t(people),
                    Text(etag.as_deref()),
                    t(fetched_at),
                    t(changed_at),
                ],
            ),
            Write::RoleFactsFetched {
                repository,
                fetched_at,
                changed_at,
            } => (
                TOUCH_ROLE_FACTS,
                vec![t(repository), t(fetched_at), t(changed_at)],
            ),
            Write::InvalidateRoles {
                repository: Some(repository),
                at,
            } => (INVALIDATE_ROLES, vec![t(repository), t(at)]),
            Write::InvalidateRoles {
                repository: None,
                at,
            } => (INVALIDATE_ALL_ROLES, vec![t(at)]),
            Write::Decision {
                decision: d,
                context,
            } => (
                INSERT_DECISION,
                vec![
                    t(&d.delivery_id),
                    Int(Some(d.job_id)),
                    Int(Some(d.run_id)),
                    t(&d.repository),
                    Text(d.project.as_deref()),
                    Text(d.resource.as_deref()),
                    t(&d.outcome),
                    Text(d.rule.as_deref()),
                    Text(d.message.as_deref()),
                    t(&d.decided_at),
                    Text(context.as_deref()),
                    t(&d.origin),
                ],
            ),
            Write::MatchAdmission {
                delivery_id,
                job_id,
            } => (MATCH_ADMISSION, vec![t(delivery_id), Int(Some(*job_id))]),
            Write::Minutes {
                job_id,
                project,
                resource,
                day,
                minutes,
            } => (
                INSERT_MINUTES,
                vec![
                    Int(Some(*job_id)),
                    t(project),
                    t(resource),
                    t(day),
                    Int(Some(*minutes)),
                ],
            ),
            Write::JobStatus {
                job_id,
                project,
                resource,
                status,
                at,
            } => (
                UPSERT_JOB,
                vec![
                    Int(Some(*job_id)),
                    Text(project.as_deref()),
                    t(resource),
                    t(status.as_str()),
                    t(at),
                ],
            ),
            Write::Admit(h) => (ADMIT_HOLD, hold_params(h, None)),
            Write::Started { hold, gated } => (START_HOLD, hold_params(hold, Some(*gated))),
            Write::Release { holder } => (RELEASE_HOLD, vec![t(holder)]),
            Write::ArmTimer(j) => (
                ARM_TIMER,
                vec![
                    Int(Some(j.job_id)),
                    Int(Some(j.run_id)),
                    Int(Some(j.run_attempt)),
                    t(&j.repository),
                    Text(j.project.as_deref()),
                    t(&j.resource),
                    Text(j.job_name.as_deref()),
                    Text(j.head_sha.as_deref()),
                    t(&j.started),
                    t(&j.deadline),
                ],
            ),
            Write::DisarmTimer { job_id } => (DISARM_TIMER, vec![Int(Some(*job_id))]),
            Write::TimerFired { job_id, at } => (TIMER_FIRED, vec![Int(Some(*job_id)), t(at)]),
            Write::Processed {
                delivery_id,
                at,
                outcome,
            } => (MARK_PROCESSED, vec![t(delivery_id), t(at), t(outcome)]),
            Write::RunApproval(a) => a.statement(),
            Write::Credit(c) => c.statement(),
            Write::TeamFacts(t) => t.statement(),
            Write::ApprovedRun(r) => r.statement(),
            Write::RunApprovalReply {
                repository,
                pull_number,
                comment_id,
            } => (
                run_approvals::UPSERT_REPLY,
                vec![
                    t(repository),
                    Int(Some(*pull_number)),
                    Int(Some(*comment_id)),
                ],
            ),
        }
    }

    /// What PostgreSQL runs before [`Write::statement`] in the same transaction.
    pub(crate) fn lock_pg(&self) -> Option<Statement<'_>> {
        match self {
            Write::Started {
                hold:
                    h @ Hold {
                        job_id: Some(job_id),
                        ..
                    },
                ..
            } => Some((
                LOCK_PROVIDER_AND_JOB,
                vec![Param::Text(Some(&h.provider)), Param::Int(Some(*job_id))],
            )),
            Write::Admit(h) | Write::Started { hold: h, .. } => {
                Some((LOCK_PROVIDER, vec![Param::Text(Some(&h.provider))]))
            }
            Write::JobStatus {
                job_id,
                status: JobStatus::Completed,
                ..
            } => Some((LOCK_JOB, vec![Param::Int(Some(*job_id))])),
            Write::ApprovedRun(r) => r.lock_pg(),
            Write::Credit(c) => c.lock_pg(),
            _ => None,
        }
    }

    /// What follows [`Write::statement`] when it changed a row: a newly counted job's minutes
    /// are added to its month's total; a job's cost to its pool's totals.
    pub(crate) fn follow_ups(&self) -> Vec<Statement<'_>> {
        if let Write::Credit(c) = self {
            return c.follow_ups();
        }
        let Write::Minutes {
            project,
            resource,
            day,
            minutes,
            ..
        } = self
        else {
            return Vec::new();
        };
        vec![(
            ADD_MONTH_MINUTES,
            vec![
                Param::Text(Some(project)),
                Param::Text(Some(resource)),
                Param::Text(Some(day.get(..7).unwrap_or(day))),
                Param::Int(Some(*minutes)),
            ],
        )]
    }
}

/// The parameters of [`ADMIT_HOLD`] and (with `gated`) [`START_HOLD`].
fn hold_params(h: &Hold, gated: Option<bool>) -> Vec<Param<'_>> {
    use Param::{Int, Text};
    let cap = |c: Option<u32>| Int(c.map(i64::from));
    let mut params = vec![
        Text(Some(&h.holder)),
        Text(Some(&h.resource)),
        Text(Some(&h.provider)),
        Text(h.project.as_deref()),
        Text(Some(&h.repository)),
        Int(Some(h.run_id)),
        cap(h.limits.resource),
        cap(h.limits.project),
        Text(Some(&h.at)),
        cap(h.limits.provider),
        Int(h.job_id),
        Text(Some(&h.expires)),
    ];
    if let Some(gated) = gated {
        params.push(Int(Some(i64::from(gated))));
    }
    params
}

/// Applies one write on PostgreSQL; how many rows it changed (0 for a duplicate).
async fn write_pg(conn: &mut sqlx::PgConnection, w: &Write) -> sqlx::Result<u64> {
    async fn run(conn: &mut sqlx::PgConnection, (sql, params): Statement<'_>) -> sqlx::Result<u64> {
        let mut q = sqlx::query(sql);
        for p in params {
            q = match p {
                Param::Text(v) => q.bind(v),
                Param::Int(v) => q.bind(v),
                Param::Blob(v) => q.bind(v),
            };
        }
        Ok(q.execute(conn).await?.rows_affected())
    }
    if let Some(lock) = w.lock_pg() {
        run(&mut *conn, lock).await?;
    }
    let rows = run(&mut *conn, w.statement()).await?;
    if rows == 1 {
        for next in w.follow_ups() {
            run(&mut *conn, next).await?;
        }
    }
    Ok(rows)
}

impl Store {
    /// Opens `sqlite://path` (created when missing) or `postgres://...`, and migrates it.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).with_context(|| {
                format!("`{url}` is not a SQLite URL such as sqlite://gatehouse.db")
            })?;
            // An in-memory database could not be shared between the pool and the writer's
            // connection: it is a file in a temporary folder instead, removed with the last
            // clone of the store.
            let (options, temporary) = if url.contains(":memory:") {
                let dir = tempfile::Builder::new()
                    .prefix("gatehouse-memory-")
                    .tempdir()
                    .context("cannot create a temporary folder for sqlite::memory:")?;
                let options = SqliteConnectOptions::new().filename(dir.path().join("guard.db"));
                (options, Some(Arc::new(dir)))
            } else {
                (options, None)
            };
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .with_context(|| format!("cannot open the SQLite database `{url}`"))?;
            let store = Store {
                pool: Pool::Sqlite(pool.clone()),
                writer: None,
                temporary,
            };
            store
                .migrate()
                .await
                .context("cannot create the database tables")?;
            let (tx, rx) = mpsc::channel(4 * sqlite_writer::MAX_BATCH);
            sqlite_writer::start(options.get_filename(), rx)
                .with_context(|| format!("cannot open the SQLite database `{url}` for writing"))?;
            return Ok(Store {
                writer: Some(tx),
                ..store
            });
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                // The URL may hold a password: name only the backend.
                .context("cannot connect to the PostgreSQL database given with --db")?;
            Store {
                pool: Pool::Postgres(pool),
                writer: None,
                temporary: None,
            }
        } else {
            anyhow::bail!(
                "--db must start with sqlite:// or postgres://, got `{}`",
                scheme_of(url)
            );
        };
        store
            .migrate()
            .await
            .context("cannot create the database tables")?;
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                for stmt in SCHEMA {
                    let sql = stmt
                        .replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                        .replace("{int}", "INTEGER")
                        .replace("{bytes}", "BLOB");
                    sqlx::query(&sql).execute(&mut *conn).await?;
                }
                for (table, column, ty, fill) in ADDED_COLUMNS {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_one(&mut *conn)
                    .await?;
                    if n == 0 {
                        let mut tx = conn.begin().await?;
                        sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                            .execute(&mut *tx)
                            .await?;
                        if let Some(fill) = fill {
                            sqlx::query(fill).execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                    }
                }
                for stmt in SCHEMA_LATE {
                    sqlx::query(stmt).execute(&mut *conn).await?;
                }
            }
            Pool::Postgres(pool) => {
                // Replicas starting together would race on `CREATE TABLE IF NOT EXISTS`
                // (it is not atomic in PostgreSQL); a transaction-scoped advisory lock makes
                // them take turns.
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7140531)")
                    .execute(&mut *tx)
                    .await?;
                for stmt in SCHEMA {
                    let sql = stmt
                        .replace("{id}", "BIGSERIAL PRIMARY KEY")
                        .replace("{int}", "BIGINT")
                        .replace("{bytes}", "BYTEA");
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
                for (table, column, ty, fill) in ADDED_COLUMNS {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = $1
                           AND column_name = $2",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_one(&mut *tx)
                    .await?;
                    if n == 0 {
                        sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                            .execute(&mut *tx)
                            .await?;
                        if let Some(fill) = fill {
                            sqlx::query(fill).execute(&mut *tx).await?;
                        }
                    }
                }
                for stmt in SCHEMA_LATE {
                    sqlx::query(stmt).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Which of `ids` are stored deliveries.
    pub async fn known_deliveries(
        &self,
        ids: &[String],
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String,)> = on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT delivery_id FROM deliveries WHERE delivery_id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                list.push_unseparated(")");
                q.build_query_as().fetch_all(pool).await?
            });
            known.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(known)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        if self.writer.as_ref().is_some_and(mpsc::Sender::is_closed) {
            anyhow::bail!("the SQLite writer has stopped: restart the guard");
        }
        Ok(())
    }

    /// Applies `writes` all or nothing and returns, for each, how many rows it changed. Returns
    /// once they are durable.
    pub async fn commit(&self, writes: Vec<Write>) -> anyhow::Result<Vec<u64>> {
        self.apply(writes, false).await
    }

    /// [`Store::commit`], except that when the first write changes nothing (a delivery stored
    /// before) the rest is not applied and `None` is returned. Stores a delivery and its
    /// effects in one step.
    pub async fn commit_if_new(&self, writes: Vec<Write>) -> anyhow::Result<Option<Vec<u64>>> {
        let rows = self.apply(writes, true).await?;
        Ok((rows.first() != Some(&0)).then_some(rows))
    }

    async fn apply(&self, writes: Vec<Write>, if_first_new: bool) -> anyhow::Result<Vec<u64>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(writer) = &self.writer {
            let (tx, rx) = oneshot::channel();
            writer
                .send(Unit {
                    writes,
                    if_first_new,
                    reply: tx,
                })
                .await
                .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
            return rx
                .await
                .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?
                .map_err(anyhow::Error::msg);
        }
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let mut rows = Vec::with_capacity(writes.len());
                for w in &writes {
                    let n = write_pg(&mut tx, w).await?;
                    if if_first_new && rows.is_empty() && n == 0 {
                        tx.rollback().await?;
                        return Ok(vec![0]);
                    }
                    rows.push(n);
                }
                tx.commit().await?;
                Ok(rows)
            }
            Pool::Sqlite(_) => anyhow::bail!("the SQLite store has no writer"),
        }
    }

    /// Stores a delivery; `false` when one with this id was stored before (by this process or
    /// by another replica), in which case it must not be processed again.
    pub async fn insert_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        received_at: &str,
        body: &[u8],
    ) -> anyhow::Result<bool> {
        let rows = self
            .commit(vec![Write::Delivery {
                delivery_id: delivery_id.to_string(),
                event: event.to_string(),
                received_at: received_at.to_string(),
                body: Bytes::copy_from_slice(body),
            }])
            .await?;
        Ok(rows.first() == Some(&1))
    }

    /// Remembers a run's context; a later event about the same run replaces it.
    pub async fn upsert_run(&self, run: &RunRecord, now: &str) -> anyhow::Result<()> {
        self.commit(vec![Write::Run {
            run: run.clone(),
            now: now.to_string(),
        }])
        .await
        .map(drop)
    }

    /// The context of one attempt of a run, if a `workflow_run` event (or GitHub's API) told
    /// it.
    pub async fn get_run(&self, run_id: i64, attempt: i64) -> anyhow::Result<Option<RunRecord>> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            String,
            i64,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        const SQL: &str = "SELECT run_id, run_attempt, repository, event, head_repository,
                head_owner_login, head_owner_id, head_sha, actor_login, actor_id,
                triggering_actor_login, triggering_actor_id, workflow, git_ref, default_branch
            FROM run_attempts WHERE run_id = $1 AND run_attempt = $2";
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(run_id)
            .bind(attempt)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| RunRecord {
            run_id: r.0,
            run_attempt: r.1,
            repository: r.2,
            event: r.3,
            head_repository: r.4,
            head_owner: r.5.zip(r.6),
            head_sha: r.7,
            actor: (r.8, r.9),
            triggering_actor: r.10.zip(r.11),
            workflow: r.12,
            git_ref: r.13,
            default_branch: r.14,
        }))
    }

    /// Role facts whose row changed at or after `since` (every row when `None`), oldest
    /// change first.
    pub async fn role_facts_since(&self, since: Option<&str>) -> anyhow::Result<Vec<RoleFactsRow>> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        const SQL: &str = "SELECT repository, people, etag, fetched_at, invalidated_at, changed_at
            FROM role_facts WHERE CAST($1 AS TEXT) IS NULL OR changed_at >= $1
            ORDER BY changed_at";
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| RoleFactsRow {
                repository: r.0,
                people: r.1,
                etag: r.2,
                fetched_at: r.3,
                invalidated_at: r.4,
                changed_at: r.5,
            })
            .collect())
    }

    /// How many deliveries are stored but not processed (waiting for a fact, or for a
    /// cancel to go through), and when the oldest of them was received.
    pub async fn pending(&self) -> anyhow::Result<(i64, Option<String>)> {
        const SQL: &str =
            "SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE processed_at IS NULL";
        let row: (i64, Option<String>) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(row)
    }

    /// Newest first.
    pub async fn decisions(&self, f: &DecisionFilter) -> anyhow::Result<Vec<DecisionRecord>> {
        // `CAST($n AS TEXT) IS NULL` lets one statement serve every combination of filters
        // (PostgreSQL needs the cast to know the parameter's type).
        const SQL: &str = "SELECT delivery_id, job_id, run_id, repository, project, resource,
                outcome, rule, message, decided_at, COALESCE(origin, 'webhook')
            FROM decisions
            WHERE (CAST($1 AS TEXT) IS NULL OR project = $1)
              AND (CAST($2 AS TEXT) IS NULL OR resource = $2)
              AND (CAST($3 AS TEXT) IS NULL OR outcome = $3)
            ORDER BY id DESC LIMIT $4 OFFSET $5";
        let rows: Vec<DecisionRow> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(f.project.as_deref())
            .bind(f.resource.as_deref())
            .bind(f.outcome.as_deref())
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(decision_record).collect())
    }

    /// The outcomes of an admission (by its delivery id) and of its job's webhook decision
    /// (by job id), when recorded: for telling when the two disagree.
    pub async fn admission_and_decision(
        &self,
        admission: &str,
        job_id: i64,
    ) -> anyhow::Result<(Option<String>, Option<String>)> {
        const SQL: &str = "SELECT delivery_id, outcome, COALESCE(origin, 'webhook') FROM decisions
            WHERE delivery_id = $1 OR (job_id = $2 AND COALESCE(origin, 'webhook') = 'webhook')";
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(admission)
            .bind(job_id)
            .fetch_all(pool)
            .await)?;
        let gate = rows.iter().find(|r| r.0 == admission).map(|r| r.1.clone());
        let webhook = rows
            .iter()
            .find(|r| r.2 == "webhook" && r.0 != admission)
            .map(|r| r.1.clone());
        Ok((gate, webhook))
    }

    /// The `limit` most recent denials, newest first: what a dashboard lists as "recently
    /// refused", each with its rule and the message the person saw.
    pub async fn recent_denials(&self, limit: i64) -> anyhow::Result<Vec<DecisionRecord>> {
        self.decisions(&DecisionFilter {
            outcome: Some("deny".into()),
            limit: limit.max(0),
            ..DecisionFilter::default()
        })
        .await
    }

    /// Minutes used on `resource` in `month` (`YYYY-MM`) by `project` and by every project.
    pub async fn minutes_used(
        &self,
        project: &str,
        resource: &str,
        month: &str,
    ) -> anyhow::Result<(u64, u64)> {
        const SQL: &str = "SELECT
                CAST(COALESCE(SUM(CASE WHEN project = $1 THEN minutes ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(minutes), 0) AS BIGINT)
            FROM usage_by_month WHERE resource = $2 AND month = $3";
        let (project_minutes, resource_minutes): (i64, i64) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(project)
            .bind(resource)
            .bind(month)
            .fetch_one(pool)
            .await)?;
        Ok((
            project_minutes.max(0) as u64,
            resource_minutes.max(0) as u64,
        ))
    }

    /// Minutes per project and resource in `month` (`YYYY-MM`), sorted by project and
    /// resource. The figures quotas are judged on.
    pub async fn usage_of_month(&self, month: &str) -> anyhow::Result<Vec<UsageRow>> {
        self.usage_of_month_where(month, None, None).await
    }

    /// Minutes per project and day on days in `[from, until)` (`YYYY-MM-DD`): `(project, day,
    /// minutes)`.
    pub async fn project_day_minutes(
        &self,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        // Served by `job_minutes_by_day` (day, resource).
        const SQL: &str = "SELECT project, day, CAST(SUM(minutes) AS BIGINT)
            FROM job_minutes WHERE day >= $1 AND day < $2 GROUP BY project, day";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await)?)
    }

    /// Minutes per resource and month from `from` (`YYYY-MM`) on: `(resource, month,
    /// minutes)`, by resource and month.
    pub async fn monthly_usage(&self, from: &str) -> anyhow::Result<Vec<(String, String, u64)>> {
        const SQL: &str = "SELECT resource, month, CAST(SUM(minutes) AS BIGINT)
            FROM usage_by_month WHERE month >= $1
            GROUP BY resource, month ORDER BY resource, month";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(r, m, n)| (r, m, n.max(0) as u64))
            .collect())
    }

    /// [`Store::usage_of_month`] narrowed to one project (lower-cased) or one resource, or
    /// both; served by the table's key (project first) or `usage_by_month_by_month`.
    pub async fn usage_of_month_where(
        &self,
        month: &str,
        project: Option<&str>,
        resource: Option<&str>,
    ) -> anyhow::Result<Vec<UsageRow>> {
        const SQL: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE month = $1 AND (CAST($2 AS TEXT) IS NULL OR project = $2)
              AND (CAST($3 AS TEXT) IS NULL OR resource = $3)
            ORDER BY project, resource";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(month)
            .bind(project)
            .bind(resource)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(UsageRow::from).collect())
    }

    /// Minutes per resource in `month` (`YYYY-MM`), every project together.
    pub async fn month_minutes_by_resource(
        &self,
        month: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        const SQL: &str = "SELECT resource, CAST(SUM(minutes) AS BIGINT) FROM usage_by_month
            WHERE month = $1 GROUP BY resource";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(month)
            .fetch_all(pool)
            .await)?)
    }

    /// Minutes per project and resource of jobs that finished on days in `[from, until)`
    /// (`YYYY-MM-DD`), sorted by project and resource.
    pub async fn usage(&self, from: &str, until: &str) -> anyhow::Result<Vec<UsageRow>> {
        const SQL: &str = "SELECT project, resource, CAST(SUM(minutes) AS BIGINT)
            FROM job_minutes WHERE day >= $1 AND day < $2
            GROUP BY project, resource ORDER BY project, resource";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(UsageRow::from).collect())
    }

    /// One project's minutes per resource on days in `[from, until)` (`YYYY-MM-DD`);
    /// `project` is the lower-cased project name.
    pub async fn project_usage(
        &self,
        project: &str,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<UsageRow>> {
        Ok(self
            .usage(from, until)
            .await?
            .into_iter()
            .filter(|r| r.project == project)
            .collect())
    }

    /// Minutes per resource per week (weeks start on Monday) of jobs that finished on days in
    /// `[from, until)` (`YYYY-MM-DD`), sorted by week then resource: the data of a usage chart.
    pub async fn weekly_usage(&self, from: &str, until: &str) -> anyhow::Result<Vec<WeekUsage>> {
        self.weekly_usage_where(None, from, until).await
    }

    /// [`Store::weekly_usage`] of one project (the lower-cased project name): the data of a
    /// project's own usage chart.
    pub async fn weekly_usage_of_project(
        &self,
        project: &str,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<WeekUsage>> {
        self.weekly_usage_where(Some(project), from, until).await
    }

    async fn weekly_usage_where(
        &self,
        project: Option<&str>,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<WeekUsage>> {
        // Served by `job_minutes_by_day` (day, resource).
        const SQL: &str = "SELECT day, resource, CAST(SUM(minutes) AS BIGINT)
            FROM job_minutes WHERE day >= $1 AND day < $2
              AND (CAST($3 AS TEXT) IS NULL OR project = $3)
            GROUP BY day, resource";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .bind(until)
            .bind(project)
            .fetch_all(pool)
            .await)?;
        let mut weeks = std::collections::BTreeMap::<(String, String), i64>::new();
        for (day, resource, minutes) in rows {
            let Ok(date) = day.parse::<jiff::civil::Date>() else {
                continue;
            };
            let back = i64::from(date.weekday().to_monday_zero_offset());
            let monday = date
                .checked_sub(jiff::Span::new().days(back))
                .unwrap_or(date);
            *weeks.entry((monday.to_string(), resource)).or_default() += minutes;
        }
        Ok(weeks
            .into_iter()
            .map(|((week, resource), minutes)| WeekUsage {
                week,
                resource,
                minutes,
            })
            .collect())
    }

    /// Managed jobs queued or running, per resource (resources with none are left out).
    pub async fn active_jobs(&self) -> anyhow::Result<Vec<ActiveJobs>> {
        const SQL: &str = "SELECT resource, status, COUNT(*) FROM jobs
            WHERE status IN ('queued', 'in_progress') GROUP BY resource, status";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .fetch_all(pool)
            .await)?;
        let mut by = std::collections::BTreeMap::<String, ActiveJobs>::new();
        for (resource, status, n) in rows {
            let e = by.entry(resource.clone()).or_insert_with(|| ActiveJobs {
                resource,
                ..ActiveJobs::default()
            });
            if status == "queued" {
                e.queued = n;
            } else {
                e.in_progress = n;
            }
        }
        Ok(by.into_values().collect())
    }

    /// Managed jobs queued or in progress: `(resource, status, how many, the earliest
    /// `updated_at`)` (for queued jobs, when the oldest was queued).
    pub async fn queue_jobs(&self) -> anyhow::Result<Vec<(String, String, i64, String)>> {
        const SQL: &str = "SELECT resource, status, COUNT(*), MIN(updated_at) FROM jobs
            WHERE status IN ('queued', 'in_progress') GROUP BY resource, status";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?)
    }

    /// Claims on capped machines that count at `now`: `(resource, provider, state, how
    /// many)`.
    pub async fn queue_holds(
        &self,
        now: &str,
    ) -> anyhow::Result<Vec<(String, String, String, i64)>> {
        const SQL: &str = "SELECT resource, provider, state, COUNT(*) FROM holds
            WHERE expires > $1 GROUP BY resource, provider, state";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(now)
            .fetch_all(pool)
            .await)?)
    }

    /// Every decision about the jobs of run `run_id` of `repository` (lower-cased or not),
    /// oldest first.
    pub async fn decisions_of_run(
        &self,
        repository: &str,
        run_id: i64,
    ) -> anyhow::Result<Vec<DecisionRecord>> {
        const SQL: &str = "SELECT delivery_id, job_id, run_id, repository, project, resource,
                outcome, rule, message, decided_at, COALESCE(origin, 'webhook')
            FROM decisions WHERE run_id = $1 AND LOWER(repository) = LOWER($2)
            ORDER BY id";
        let rows: Vec<DecisionRow> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(run_id)
            .bind(repository)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(decision_record).collect())
    }

    /// The state of `holder`'s claim (`admitted`, `over`, `waiting`), if it holds one.
    pub async fn hold_state(&self, holder: &str) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT state FROM holds WHERE holder = $1";
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(holder)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(s,)| s))
    }

    /// How many jobs other than `holder`'s hold a machine at `now` (as [`time_text`] writes
    /// it): of `resource`, of `project` on it, of `provider`.
    pub async fn held(
        &self,
        resource: &str,
        provider: &str,
        project: Option<&str>,
        now: &str,
        holder: &str,
    ) -> anyhow::Result<Held> {
        const SQL: &str = "SELECT
            (SELECT COUNT(*) FROM holds WHERE resource = $1 AND state <> 'waiting'
                AND expires > $4 AND holder <> $5),
            (SELECT COUNT(*) FROM holds WHERE resource = $1 AND project = $3
                AND state <> 'waiting' AND expires > $4 AND holder <> $5),
            (SELECT COUNT(*) FROM holds WHERE provider = $2 AND state <> 'waiting'
                AND expires > $4 AND holder <> $5)";
        let (resource, project, provider): (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(resource)
            .bind(provider)
            .bind(project)
            .bind(now)
            .bind(holder)
            .fetch_one(pool)
            .await)?;
        Ok(Held {
            resource,
            project,
            provider,
        })
    }

    /// Removes the claims and pool reservations past their `expires` at `now`; how many
    /// claims.
    pub async fn drop_expired_holds(&self, now: &str) -> anyhow::Result<u64> {
        const SQL: &str = "DELETE FROM holds WHERE expires <= $1";
        const RESERVATIONS: &str = "DELETE FROM pool_reservations WHERE expires <= $1";
        on_pool!(self, pool => sqlx::query(RESERVATIONS)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(on_pool!(self, pool => sqlx::query(SQL)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// Claims held since before `before` that name their job: the sweep asks GitHub whether
    /// those jobs are still running. At most `limit`, oldest first.
    pub async fn old_holds(
        &self,
        before: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        const SQL: &str = "SELECT holder, repository, job_id FROM holds
            WHERE since < $1 AND job_id IS NOT NULL ORDER BY since LIMIT $2";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Time limits due at `now` that no replica holds a lease on: at most `limit`, the
    /// earliest first.
    pub async fn due_timers(&self, now: &str, limit: i64) -> anyhow::Result<Vec<JobTimer>> {
        const SQL: &str = "SELECT job_id, run_id, run_attempt, repository, project, resource,
                job_name, head_sha, started, deadline
            FROM job_timers WHERE fired_at IS NULL AND deadline <= $1
                AND (lease IS NULL OR lease <= $1)
            ORDER BY deadline LIMIT $2";
        type Row = (
            i64,
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| JobTimer {
                job_id: r.0,
                run_id: r.1,
                run_attempt: r.2,
                repository: r.3,
                project: r.4,
                resource: r.5,
                job_name: r.6,
                head_sha: r.7,
                started: r.8,
                deadline: r.9,
            })
            .collect())
    }

    /// Takes job `job_id`'s due time limit until `until`: `true` for the one replica that
    /// got it (no other holds a lease at `now` and it has not fired), which then acts on it.
    pub async fn lease_timer(&self, job_id: i64, now: &str, until: &str) -> anyhow::Result<bool> {
        const SQL: &str = "UPDATE job_timers SET lease = $3
            WHERE job_id = $1 AND fired_at IS NULL AND deadline <= $2
                AND (lease IS NULL OR lease <= $2)";
        let rows = on_pool!(self, pool => sqlx::query(SQL)
            .bind(job_id)
            .bind(now)
            .bind(until)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(rows == 1)
    }

    /// Moves job `job_id`'s unfired time limit to `deadline` (the resource's limit changed),
    /// or removes it (`None`: the resource has none any more).
    pub async fn move_timer(&self, job_id: i64, deadline: Option<&str>) -> anyhow::Result<()> {
        match deadline {
            Some(deadline) => {
                const SQL: &str = "UPDATE job_timers SET deadline = $2, lease = NULL
                    WHERE job_id = $1 AND fired_at IS NULL";
                on_pool!(self, pool => sqlx::query(SQL)
                    .bind(job_id)
                    .bind(deadline)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            None => {
                on_pool!(self, pool => sqlx::query(DISARM_TIMER)
                    .bind(job_id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }

    /// Deliveries stored but not processed, oldest first, at most `limit`.
    pub async fn unprocessed(&self, limit: i64) -> anyhow::Result<Vec<StoredDelivery>> {
        const SQL: &str = "SELECT delivery_id, event, received_at, body FROM deliveries
            WHERE processed_at IS NULL ORDER BY received_at, delivery_id LIMIT $1";
        let rows: Vec<(String, String, String, Vec<u8>)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(delivery_id, event, received_at, body)| StoredDelivery {
                delivery_id,
                event,
                received_at,
                body,
            })
            .collect())
    }

    /// `workflow_job` deliveries received at or after `since` (as [`time_text`] writes it),
    /// oldest first, each with the decision recorded for it.
    pub async fn job_deliveries_since(&self, since: &str) -> anyhow::Result<Vec<JobDelivery>> {
        type Row = (
            String,
            String,
            String,
            Vec<u8>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        const SQL: &str = "SELECT d.delivery_id, d.event, d.received_at, d.body, c.outcome,
                c.rule, c.resource, c.context, d.outcome
            FROM deliveries d LEFT JOIN decisions c ON c.delivery_id = d.delivery_id
            WHERE d.event = 'workflow_job' AND d.received_at >= $1
            ORDER BY d.received_at, d.delivery_id";
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| JobDelivery {
                delivery: StoredDelivery {
                    delivery_id: r.0,
                    event: r.1,
                    received_at: r.2,
                    body: r.3,
                },
                outcome: r.4,
                rule: r.5,
                resource: r.6,
                context: r.7,
                processed: r.8,
            })
            .collect())
    }
}

/// Totals over the whole store, for checks after a load or crash test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoredCounts {
    pub deliveries: i64,
    pub unprocessed: i64,
    pub decisions: i64,
    /// Sum of `job_minutes`.
    pub job_minutes: i64,
    /// Sum of the monthly totals (must equal `job_minutes`).
    pub month_minutes: i64,
}

impl Store {
    /// Totals over the whole store (see [`StoredCounts`]).
    pub async fn counts(&self) -> anyhow::Result<StoredCounts> {
        const SQL: &str = "SELECT
            (SELECT COUNT(*) FROM deliveries),
            (SELECT COUNT(*) FROM deliveries WHERE processed_at IS NULL),
            (SELECT COUNT(*) FROM decisions),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM job_minutes),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM usage_by_month)";
        let r: (i64, i64, i64, i64, i64) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(StoredCounts {
            deliveries: r.0,
            unprocessed: r.1,
            decisions: r.2,
            job_minutes: r.3,
            month_minutes: r.4,
        })
    }

    /// Every stored delivery id.
    pub async fn delivery_ids(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT delivery_id FROM deliveries").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// The part of a database URL before `://`: enough to say what was wrong without repeating
/// a password that may follow.
fn scheme_of(url: &str) -> &str {
    url.split_once("://").map_or("(no scheme)", |(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> Write {
        Write::Delivery {
            delivery_id: id.into(),
            event: "ping".into(),
            received_at: now_text(),
            body: Bytes::from_static(b"{}"),
        }
    }

    /// `sqlite::memory:` works as users expect (each store its own, empty at start) although
    /// the writer needs a file: one in a temporary folder, removed with the store.
    #[tokio::test]
    async fn an_in_memory_store_is_its_own_and_leaves_nothing_behind() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let folder = store.temporary.as_ref().unwrap().path().to_path_buf();
        assert_eq!(store.commit(vec![delivery("m")]).await.unwrap(), vec![1]);
        assert_eq!(store.delivery_ids().await.unwrap(), vec!["m".to_string()]);
        let other = Store::connect("sqlite::memory:").await.unwrap();
        assert!(other.delivery_ids().await.unwrap().is_empty());
        assert!(folder.join("guard.db").exists());
        drop(store);
        assert!(!folder.exists(), "{} is left behind", folder.display());
    }

    /// A unit whose write fails is left out whole; the units committed with it are not.
    #[tokio::test]
    async fn a_failing_unit_does_not_take_its_batch_down() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        // Break one table under the store's feet.
        on_pool!(store, pool => sqlx::query("DROP TABLE jobs").execute(pool).await.map(drop))
            .unwrap();
        let failing = vec![
            delivery("a"),
            Write::JobStatus {
                job_id: 1,
                project: None,
                resource: "gpu".into(),
                status: JobStatus::Queued,
                at: now_text(),
            },
        ];
        let (bad, good, dup) = tokio::join!(
            store.commit(failing),
            store.commit(vec![delivery("b")]),
            store.commit_if_new(vec![delivery("b"), delivery("c")]),
        );
        assert!(bad.is_err());
        assert_eq!(good.unwrap(), vec![1]);
        // `b` is stored by one of the two units; the other's rest is not applied.
        let ids = store.delivery_ids().await.unwrap();
        assert!(!ids.contains(&"a".to_string()), "{ids:?}");
        assert!(ids.contains(&"b".to_string()), "{ids:?}");
        match dup.unwrap() {
            Some(rows) => assert_eq!(rows, vec![1, 1]),
            None => assert!(!ids.contains(&"c".to_string()), "{ids:?}"),
        }
    }
}
