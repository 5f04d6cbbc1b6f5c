//! The guard's run approvals (`/gatehouse run <sha>`) read from its store (`--db`, read-only)
//! for `audit` and `history`. The rules about them are `gatehouse_core::audit::run_approvals`
//! (audit) and `gatehouse_history::run_approvals` (history); this file only reads rows.

use gatehouse_core::audit::run_approvals::{ApprovalRow, JobRow, Thresholds, findings};
use gatehouse_core::{Diagnostic, Repo};
use gatehouse_history::run_approvals::RunApprovalEntry;
use jiff::civil::Date;

use crate::audit::read_only_rows;

type Row = (i64, String, i64, String, String, String, i64, String);

/// The run approvals of the store at `url` since day `since` (of `repository`, lower-cased
/// `owner/name`, when given), oldest first.
pub fn approvals(
    url: &str,
    since: Date,
    repository: Option<&str>,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<ApprovalRow>> {
    // The day is ours (YYYY-MM-DD), never input: written into the statement. The reader binds
    // no parameters, so a repository is compared here instead.
    let sql = format!(
        "SELECT id, repository, pull_number, head_sha, head_repository, approver_login, \
         approver_id, approved_at FROM run_approvals WHERE approved_at >= '{since}' ORDER BY id"
    );
    let rows: Vec<Row> = read_only_rows(url, &sql, "the guard's run approvals", rt)?;
    Ok(rows
        .into_iter()
        .map(|r| ApprovalRow {
            id: r.0,
            repository: r.1,
            pull_number: r.2,
            head_sha: r.3,
            head_repository: r.4,
            approver_login: r.5,
            approver_id: r.6,
            approved_at: r.7,
        })
        .filter(|a| repository.is_none_or(|r| a.repository.eq_ignore_ascii_case(r)))
        .collect())
}

/// Every job counted since day `since`, with the run approval its decision stood on.
pub fn jobs(url: &str, since: Date, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<JobRow>> {
    let sql = format!(
        "SELECT m.job_id, m.project, m.minutes, \
         (SELECT MIN(j.approval_id) FROM run_approval_jobs j WHERE j.job_id = m.job_id) \
         FROM job_minutes m WHERE m.day >= '{since}'"
    );
    let rows: Vec<(i64, String, i64, Option<i64>)> =
        read_only_rows(url, &sql, "the guard's minutes", rt)?;
    Ok(rows
        .into_iter()
        .map(|(job_id, project, minutes, approval_id)| JobRow {
            job_id,
            project: project.to_ascii_lowercase(),
            minutes,
            approval_id,
        })
        .collect())
}

/// `audit --db`'s findings about run approvals, by `gatehouse.yml`'s `run_approvals.audit`
/// (the last 90 days by default).
pub fn audit(
    url: &str,
    repo: &Repo,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Diagnostic>> {
    let settings = repo
        .settings
        .as_ref()
        .map(|s| s.value.run_approvals.audit.clone())
        .unwrap_or_default();
    let since = today
        .checked_sub(jiff::Span::new().days(i64::from(settings.days)))
        .unwrap_or(today);
    let approvals = approvals(url, since, None, rt)?;
    let jobs = jobs(url, since, rt)?;
    let bots: Vec<String> = repo
        .settings
        .iter()
        .flat_map(|s| s.value.bots.iter())
        .map(|b| b.value.login().to_string())
        .collect();
    let file = if repo.settings.is_some() {
        "gatehouse.yml"
    } else {
        ""
    };
    Ok(findings(
        &approvals,
        &jobs,
        &bots,
        file,
        Thresholds::from(&settings),
    ))
}

/// The run approvals of `repository` (lower-cased `owner/name`) for `gatehouse history`, with
/// how many jobs ran under each and their counted minutes, oldest first.
pub fn history(
    url: &str,
    repository: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<RunApprovalEntry>> {
    const SQL: &str = "SELECT a.repository, a.approved_at, a.approver_login, a.pull_number, \
        a.head_sha, a.head_repository, a.resources, \
        (SELECT COUNT(*) FROM run_approval_jobs j WHERE j.approval_id = a.id), \
        (SELECT CAST(COALESCE(SUM(m.minutes), 0) AS BIGINT) FROM run_approval_jobs j \
            JOIN job_minutes m ON m.job_id = j.job_id WHERE j.approval_id = a.id) \
        FROM run_approvals a ORDER BY a.id";
    type HistoryRow = (
        String,
        String,
        String,
        i64,
        String,
        String,
        String,
        i64,
        i64,
    );
    let rows: Vec<HistoryRow> = read_only_rows(url, SQL, "the guard's run approvals", rt)?;
    Ok(rows
        .into_iter()
        .filter(|r| r.0.eq_ignore_ascii_case(repository))
        .map(|r| RunApprovalEntry {
            approved_at: r.1,
            approver_login: r.2,
            pull_number: r.3,
            head_sha: r.4,
            head_repository: r.5,
            resources: r
                .6
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
            jobs: r.7,
            minutes: r.8,
        })
        .collect())
}
