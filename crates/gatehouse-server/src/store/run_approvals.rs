//! Run approvals in the store ([`crate::run_approvals`]): the approvals themselves, the runs
//! that used each (claimed against its allowance, or re-run by the guard), and the guard's one
//! reply per pull request. The tables are in [`super::schema::SCHEMA`]; the writes go through
//! [`super::Write`] like every other change.

use serde::Serialize;

use super::write::Lock;
use super::{Param, Pool, Statement, Store};

/// One approval of a pull request's head commit, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunApprovalRecord {
    /// Where it came from: `comment:<id>` or `review:<id>` (a comment or review is recorded
    /// once, however often its delivery arrives).
    pub source: String,
    /// Lower-cased `owner/name`.
    pub repository: String,
    pub pull_number: i64,
    /// Lower-cased full SHA.
    pub head_sha: String,
    /// Lower-cased `owner/name` the commit comes from.
    pub head_repository: String,
    /// The resources approved, comma-separated; empty: every resource the project holds.
    pub resources: String,
    pub approver_login: String,
    pub approver_id: i64,
    pub approved_at: String,
    pub expires_at: String,
    /// Runs it admits besides those the guard re-runs.
    pub runs: i64,
}

/// An approval as read back, with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredRunApproval {
    pub id: i64,
    #[serde(flatten)]
    pub approval: RunApprovalRecord,
    /// Runs that used it against its allowance so far.
    pub runs_used: i64,
}

/// A run (one attempt) admitted under an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovedRun {
    /// A run that asks to use approval `approval_id`: recorded only while fewer than the
    /// approval's `runs` have (1 row), else nothing changes; an attempt recorded before
    /// changes nothing either (0 rows, and it is still admitted).
    Claim {
        approval_id: i64,
        run_id: i64,
        run_attempt: i64,
        at: String,
    },
    /// The guard re-ran this attempt for the approval with this `source`: not counted
    /// against the allowance.
    Rerun {
        source: String,
        run_id: i64,
        run_attempt: i64,
        at: String,
    },
    /// Job `job_id` was allowed on approval `approval_id` (written with its decision, by the
    /// same delivery; 0 rows when recorded before).
    Job {
        approval_id: i64,
        job_id: i64,
        run_id: i64,
        run_attempt: i64,
        delivery_id: String,
        at: String,
    },
}

/// A job that ran under an approval, as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApprovedJob {
    pub job_id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub decided_at: String,
    /// Its minutes, once it completed and was counted.
    pub minutes: Option<i64>,
}

pub(super) const INSERT_APPROVAL: &str = "INSERT INTO run_approvals (source, repository,
        pull_number, head_sha, head_repository, resources, approver_login, approver_id,
        approved_at, expires_at, runs)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (source) DO NOTHING";
const CLAIM: &str = "INSERT INTO run_approval_runs (approval_id, run_id, run_attempt, by_guard, at)
    SELECT $1, $2, $3, 0, $4
    WHERE (SELECT COUNT(*) FROM run_approval_runs WHERE approval_id = $1 AND by_guard = 0)
        < (SELECT runs FROM run_approvals WHERE id = $1)
    ON CONFLICT (approval_id, run_id, run_attempt) DO NOTHING";
const RERUN: &str = "INSERT INTO run_approval_runs (approval_id, run_id, run_attempt, by_guard, at)
    SELECT id, $2, $3, 1, $4 FROM run_approvals WHERE source = $1
    ON CONFLICT (approval_id, run_id, run_attempt) DO NOTHING";
const JOB: &str = "INSERT INTO run_approval_jobs (approval_id, job_id, run_id, run_attempt,
        delivery_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (approval_id, job_id) DO NOTHING";
pub(super) const UPSERT_REPLY: &str = "INSERT INTO run_approval_replies (repository, pull_number,
        comment_id) VALUES ($1, $2, $3)
    ON CONFLICT (repository, pull_number) DO UPDATE SET comment_id = excluded.comment_id";
impl RunApprovalRecord {
    /// The resources approved, as a list (empty: every resource the project holds).
    pub fn resource_list(&self) -> Vec<String> {
        self.resources
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(super) fn statement(&self) -> Statement<'_> {
        use Param::{Int, Text};
        (
            INSERT_APPROVAL,
            vec![
                Text(Some(&self.source)),
                Text(Some(&self.repository)),
                Int(Some(self.pull_number)),
                Text(Some(&self.head_sha)),
                Text(Some(&self.head_repository)),
                Text(Some(&self.resources)),
                Text(Some(&self.approver_login)),
                Int(Some(self.approver_id)),
                Text(Some(&self.approved_at)),
                Text(Some(&self.expires_at)),
                Int(Some(self.runs)),
            ],
        )
    }
}

impl ApprovedRun {
    pub(super) fn statement(&self) -> Statement<'_> {
        use Param::{Int, Text};
        match self {
            ApprovedRun::Claim {
                approval_id,
                run_id,
                run_attempt,
                at,
            } => (
                CLAIM,
                vec![
                    Int(Some(*approval_id)),
                    Int(Some(*run_id)),
                    Int(Some(*run_attempt)),
                    Text(Some(at)),
                ],
            ),
            ApprovedRun::Rerun {
                source,
                run_id,
                run_attempt,
                at,
            } => (
                RERUN,
                vec![
                    Text(Some(source)),
                    Int(Some(*run_id)),
                    Int(Some(*run_attempt)),
                    Text(Some(at)),
                ],
            ),
            ApprovedRun::Job {
                approval_id,
                job_id,
                run_id,
                run_attempt,
                delivery_id,
                at,
            } => (
                JOB,
                vec![
                    Int(Some(*approval_id)),
                    Int(Some(*job_id)),
                    Int(Some(*run_id)),
                    Int(Some(*run_attempt)),
                    Text(Some(delivery_id)),
                    Text(Some(at)),
                ],
            ),
        }
    }

    pub(super) fn locks_pg(&self) -> Vec<Lock<'_>> {
        match self {
            ApprovedRun::Claim { approval_id, .. } => vec![Lock::Approval(*approval_id)],
            ApprovedRun::Rerun { .. } | ApprovedRun::Job { .. } => Vec::new(),
        }
    }
}

type ApprovalRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    i64,
);

const SELECT_APPROVALS: &str = "SELECT a.id, a.source, a.repository, a.pull_number, a.head_sha,
        a.head_repository, a.resources, a.approver_login, a.approver_id, a.approved_at,
        a.expires_at, a.runs,
        (SELECT COUNT(*) FROM run_approval_runs r WHERE r.approval_id = a.id AND r.by_guard = 0)
    FROM run_approvals a";

fn from_row(r: ApprovalRow) -> StoredRunApproval {
    StoredRunApproval {
        id: r.0,
        approval: RunApprovalRecord {
            source: r.1,
            repository: r.2,
            pull_number: r.3,
            head_sha: r.4,
            head_repository: r.5,
            resources: r.6,
            approver_login: r.7,
            approver_id: r.8,
            approved_at: r.9,
            expires_at: r.10,
            runs: r.11,
        },
        runs_used: r.12,
    }
}

impl Store {
    /// The approvals of commit `head_sha` (lower-cased) of `repository` from `head_repository`
    /// (both lower-cased) in force at `now`, newest first.
    pub async fn run_approvals_of(
        &self,
        repository: &str,
        head_sha: &str,
        head_repository: &str,
        now: &str,
    ) -> anyhow::Result<Vec<StoredRunApproval>> {
        let sql = format!(
            "{SELECT_APPROVALS} WHERE a.head_sha = $1 AND a.repository = $2
                AND a.head_repository = $3 AND a.expires_at > $4 ORDER BY a.id DESC"
        );
        let rows: Vec<ApprovalRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(head_sha)
            .bind(repository)
            .bind(head_repository)
            .bind(now)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The `limit` most recent approvals (of `repository`, lower-cased, when given), newest
    /// first.
    pub async fn recent_run_approvals(
        &self,
        repository: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<StoredRunApproval>> {
        let sql = format!(
            "{SELECT_APPROVALS} WHERE CAST($1 AS TEXT) IS NULL OR a.repository = $1
                ORDER BY a.id DESC LIMIT $2"
        );
        let rows: Vec<ApprovalRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(repository)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Whether attempt `run_attempt` of run `run_id` is admitted under approval
    /// `approval_id` (claimed, or re-run by the guard).
    pub async fn run_approved(
        &self,
        approval_id: i64,
        run_id: i64,
        run_attempt: i64,
    ) -> anyhow::Result<bool> {
        const SQL: &str = "SELECT COUNT(*) FROM run_approval_runs
            WHERE approval_id = $1 AND run_id = $2 AND run_attempt = $3";
        let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(approval_id)
            .bind(run_id)
            .bind(run_attempt)
            .fetch_one(pool)
            .await)?;
        Ok(n > 0)
    }

    /// The runs of commit `head_sha` (lower-cased) of `repository` from `head_repository`
    /// whose jobs the people rule denied and that no approval admitted since, each with its
    /// latest attempt: what an approval re-runs.
    pub async fn denied_runs_of_commit(
        &self,
        repository: &str,
        head_sha: &str,
        head_repository: &str,
    ) -> anyhow::Result<Vec<(i64, i64)>> {
        const SQL: &str = "SELECT a.run_id, MAX(a.run_attempt) FROM run_attempts a
            WHERE a.head_sha = $1 AND LOWER(a.repository) = $2
              AND LOWER(a.head_repository) = $3
              AND EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = a.run_id
                  AND d.outcome = 'deny' AND d.rule = 'user-not-allowed')
            GROUP BY a.run_id ORDER BY a.run_id";
        let rows: Vec<(i64, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(head_sha)
            .bind(repository)
            .bind(head_repository)
            .fetch_all(pool)
            .await)?;
        let mut open = Vec::with_capacity(rows.len());
        for (run_id, attempt) in rows {
            const ADMITTED: &str =
                "SELECT COUNT(*) FROM run_approval_runs WHERE run_id = $1 AND run_attempt >= $2";
            let (n,): (i64,) = on_pool!(self, pool => sqlx::query_as(ADMITTED)
                .bind(run_id)
                .bind(attempt)
                .fetch_one(pool)
                .await)?;
            if n == 0 {
                open.push((run_id, attempt));
            }
        }
        Ok(open)
    }

    /// The runs admitted under approval `id`: (run id, attempt, re-run by the guard), oldest
    /// first.
    pub async fn runs_of_run_approval(&self, id: i64) -> anyhow::Result<Vec<(i64, i64, bool)>> {
        const SQL: &str = "SELECT run_id, run_attempt, by_guard FROM run_approval_runs
            WHERE approval_id = $1 ORDER BY at, run_id, run_attempt";
        let rows: Vec<(i64, i64, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(|(r, a, g)| (r, a, g != 0)).collect())
    }

    /// The jobs allowed under approval `id`, oldest first, each with its minutes once counted.
    pub async fn jobs_of_run_approval(&self, id: i64) -> anyhow::Result<Vec<ApprovedJob>> {
        const SQL: &str = "SELECT j.job_id, j.run_id, j.run_attempt, j.decided_at, m.minutes
            FROM run_approval_jobs j LEFT JOIN job_minutes m ON m.job_id = j.job_id
            WHERE j.approval_id = $1 ORDER BY j.decided_at, j.job_id";
        let rows: Vec<(i64, i64, i64, String, Option<i64>)> = on_pool!(self, pool =>
            sqlx::query_as(SQL).bind(id).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(
                |(job_id, run_id, run_attempt, decided_at, minutes)| ApprovedJob {
                    job_id,
                    run_id,
                    run_attempt,
                    decided_at,
                    minutes,
                },
            )
            .collect())
    }

    /// The comment the guard answers run approvals with on a pull request, if it wrote one.
    pub async fn run_approval_reply(
        &self,
        repository: &str,
        pull_number: i64,
    ) -> anyhow::Result<Option<i64>> {
        const SQL: &str = "SELECT comment_id FROM run_approval_replies
            WHERE repository = $1 AND pull_number = $2";
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(repository)
            .bind(pull_number)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| r.0))
    }
}
