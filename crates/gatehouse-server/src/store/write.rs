//! The write side of the store: every change is a [`Write`], turned into SQL statements here
//! and applied all or nothing by [`Store::commit`](super::Store::commit), on SQLite through the
//! writer thread ([`super::sqlite_writer`]), on PostgreSQL by [`apply_pg`].

use axum::body::Bytes;
use sqlx::Row;

use super::needs::{Applied, Need, unmet_beyond, unmet_change};
use super::totals::Totals;
use super::{
    ApprovedRun, CreditWrite, DecisionRecord, JobTimer, RunApprovalRecord, RunRecord,
    TeamFactsWrite,
};

/// One change to the store. [`Store::commit`](super::Store::commit) applies a list of them all or nothing and
/// answers, for each, how many rows it changed (0 for a duplicate).
#[derive(Clone, Debug)]
pub enum Write {
    /// A delivery as received; 0 rows when its id was stored before.
    Delivery {
        delivery_id: String,
        event: String,
        received_at: String,
        body: Bytes,
        /// When its effects are committed with it: when it was processed, and what processing
        /// said (its processed mark in the same row, rather than an update rewriting it).
        processed: Option<(String, String)>,
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
    /// Now, as [`time_text`](super::time_text) writes it.
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

const INSERT_DELIVERY: &str = "INSERT INTO deliveries (delivery_id, event, received_at, body,
        processed_at, outcome)
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id) DO NOTHING";
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
pub(super) const DISARM_TIMER: &str =
    "DELETE FROM job_timers WHERE job_id = $1 AND fired_at IS NULL";
const TIMER_FIRED: &str = "UPDATE job_timers SET fired_at = $2 WHERE job_id = $1";
/// An advisory lock a write takes on PostgreSQL (SQLite has one writer). A unit takes every
/// lock of its writes before its first write, in this order (the variants', then the keys'),
/// so that two units never wait for each other: each holds all it needs before it writes a row
/// another could wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lock<'a> {
    /// Claims on one provider's machines take turns (until their transaction ends), so that
    /// two replicas never both see the last free slot.
    Provider(&'a str),
    /// Claims on one run approval take turns, so that replicas never admit more runs than its
    /// allowance between them.
    Approval(i64),
    /// Reservations on one sponsor pool take turns, so that replicas never hold more than its
    /// credit between them.
    Pool(&'a str),
    /// The claims of one pool's alerts take turns, so that each sees the others (two inserted
    /// at once, each for its own threshold, would both be taken).
    PoolAlerts(&'a str),
    /// A job's completion and its claims on a machine or credit take turns: a claim written
    /// while the completion is not committed yet would see no completed job, and the
    /// completion would see no claim to end; each would commit, and the claim would outlive
    /// its job. Taking turns, whichever comes second sees the other.
    Job(i64),
}

impl<'a> Lock<'a> {
    /// The statement that takes it. (A job's is a one-key advisory lock: its key space is not
    /// the two-key locks'.)
    fn statement(self) -> Statement<'a> {
        use Param::{Int, Text};
        match self {
            Lock::Provider(p) => (
                "SELECT pg_advisory_xact_lock(7140532, hashtext($1))",
                vec![Text(Some(p))],
            ),
            Lock::Approval(id) => (
                "SELECT pg_advisory_xact_lock(7140533, CAST($1 % 2147483647 AS INTEGER))",
                vec![Int(Some(id))],
            ),
            Lock::Pool(p) => (
                "SELECT pg_advisory_xact_lock(7140534, hashtext($1))",
                vec![Text(Some(p))],
            ),
            Lock::PoolAlerts(p) => (
                "SELECT pg_advisory_xact_lock(7140535, hashtext($1))",
                vec![Text(Some(p))],
            ),
            Lock::Job(id) => ("SELECT pg_advisory_xact_lock($1)", vec![Int(Some(id))]),
        }
    }
}
const MARK_PROCESSED: &str =
    "UPDATE deliveries SET processed_at = $2, outcome = $3 WHERE delivery_id = $1";

/// A value bound to one placeholder of a write's statement: what both backends bind.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Blob(&'a [u8]),
    /// A day, bound as `YYYY-MM-DD` text.
    Date(jiff::civil::Date),
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
                processed,
            } => (
                INSERT_DELIVERY,
                vec![
                    t(delivery_id),
                    t(event),
                    t(received_at),
                    Blob(body),
                    Text(processed.as_ref().map(|(at, _)| at.as_str())),
                    Text(processed.as_ref().map(|(_, outcome)| outcome.as_str())),
                ],
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
                super::run_approvals::UPSERT_REPLY,
                vec![
                    t(repository),
                    Int(Some(*pull_number)),
                    Int(Some(*comment_id)),
                ],
            ),
        }
    }

    /// The locks PostgreSQL takes for this write ([`Lock`]).
    pub(crate) fn locks_pg(&self) -> Vec<Lock<'_>> {
        match self {
            Write::Started {
                hold:
                    h @ Hold {
                        job_id: Some(job_id),
                        ..
                    },
                ..
            } => vec![Lock::Provider(&h.provider), Lock::Job(*job_id)],
            Write::Admit(h) | Write::Started { hold: h, .. } => vec![Lock::Provider(&h.provider)],
            Write::JobStatus {
                job_id,
                status: JobStatus::Completed,
                ..
            } => vec![Lock::Job(*job_id)],
            Write::ApprovedRun(r) => r.locks_pg(),
            Write::Credit(c) => c.locks_pg(),
            _ => Vec::new(),
        }
    }

    /// What follows [`Write::statement`] when it changed a row: a job's cost added to its
    /// pool's totals. (A newly counted job's minutes go to the usage totals through
    /// [`Write::count`].)
    pub(crate) fn follow_ups(&self) -> Vec<Statement<'_>> {
        match self {
            Write::Credit(c) => c.follow_ups(),
            _ => Vec::new(),
        }
    }

    /// Adds to `totals` what this write counts once [`Write::statement`] changed a row: a
    /// newly counted job's minutes, to its month's, day's and week's totals.
    pub(super) fn count(&self, totals: &mut Totals) {
        if let Write::Minutes {
            project,
            resource,
            day,
            minutes,
            ..
        } = self
        {
            totals.add(project, resource, day, *minutes);
        }
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

/// A statement with its arguments bound, for PostgreSQL.
fn pg_query((sql, params): Statement<'_>) -> sqlx::Result<PgQuery<'_>> {
    Ok(sqlx::query_with(
        sql,
        pg_arguments(params).map_err(sqlx::Error::Encode)?,
    ))
}

/// The arguments of a statement, for PostgreSQL.
pub(super) fn pg_arguments(
    params: Vec<Param<'_>>,
) -> Result<sqlx::postgres::PgArguments, sqlx::error::BoxDynError> {
    use sqlx::Arguments;
    let mut arguments = sqlx::postgres::PgArguments::default();
    for p in params {
        match p {
            Param::Text(v) => arguments.add(v)?,
            Param::Int(v) => arguments.add(v)?,
            Param::Blob(v) => arguments.add(v)?,
            Param::Date(v) => arguments.add(v.to_string())?,
        }
    }
    Ok(arguments)
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Applies a unit's writes on PostgreSQL inside transaction `conn`, and checks its needs: the
/// rows each write changed, or the first need not met (the caller rolls back then).
pub(super) async fn apply_pg(
    conn: &mut sqlx::PgConnection,
    writes: &[Write],
    needs: &[Need],
) -> sqlx::Result<Applied> {
    let mut locks: Vec<Lock<'_>> = writes.iter().flat_map(Write::locks_pg).collect();
    locks.sort_unstable();
    locks.dedup();
    for lock in locks {
        pg_query(lock.statement())?.execute(&mut *conn).await?;
    }
    let mut rows = Vec::with_capacity(writes.len());
    for w in writes {
        rows.push(write_pg(&mut *conn, w).await?);
        if let Some(unmet) = unmet_change(needs, &rows) {
            return Ok(Err(unmet));
        }
    }
    if let Some(unmet) = unmet_beyond(needs, rows.len()) {
        return Ok(Err(unmet));
    }
    for (i, need) in needs.iter().enumerate() {
        if let Some((sql, params)) = need.query() {
            let met: i32 = pg_query((sql, params))?
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            if met != 1 {
                return Ok(Err(i));
            }
        }
    }
    Ok(Ok(rows))
}

/// Applies one write on PostgreSQL (its locks are taken); how many rows it changed (0 for a
/// duplicate).
async fn write_pg(conn: &mut sqlx::PgConnection, w: &Write) -> sqlx::Result<u64> {
    async fn run(conn: &mut sqlx::PgConnection, statement: Statement<'_>) -> sqlx::Result<u64> {
        Ok(pg_query(statement)?.execute(conn).await?.rows_affected())
    }
    let rows = run(&mut *conn, w.statement()).await?;
    if rows == 1 {
        for next in w.follow_ups() {
            run(&mut *conn, next).await?;
        }
        let mut totals = Totals::default();
        w.count(&mut totals);
        for next in totals.statements() {
            run(&mut *conn, next).await?;
        }
    }
    Ok(rows)
}
