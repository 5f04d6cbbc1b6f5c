//! What `audit --db` says about run approvals (`/gatehouse run <sha>`, DESIGN.md section 10),
//! from rows the guard's store holds: an approver who approves many pull requests of one
//! outside account (a habit of approving without reading), and an approval under which a job
//! ran far longer than the project's jobs usually do (what an approved commit did with the
//! machine). Pure: the rows come in, findings go out; reading the store is the caller's.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::Diagnostic;
use crate::model::RunApprovalAudit;
use crate::span::Span;

/// One run approval, as the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: i64,
    /// `owner/name` of the project's repository.
    pub repository: String,
    pub pull_number: i64,
    pub head_sha: String,
    /// `owner/name` the approved commit comes from.
    pub head_repository: String,
    pub approver_login: String,
    pub approver_id: i64,
    pub approved_at: String,
}

/// A counted job: its project and minutes, and the approval its decision stood on, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: i64,
    /// Lower-cased project name.
    pub project: String,
    pub minutes: i64,
    pub approval_id: Option<i64>,
}

/// When a finding is made.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Pull requests of one outside account approved by one approver that make a finding.
    pub many_pulls: usize,
    /// How many times the project's median job an approved job must run to be reported.
    pub factor: f64,
    /// Shorter jobs are never reported, however short the median.
    pub min_minutes: i64,
    /// A project with fewer counted jobs has no median worth comparing with.
    pub min_jobs: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::from(&RunApprovalAudit::default())
    }
}

impl From<&RunApprovalAudit> for Thresholds {
    /// The thresholds `gatehouse.yml` sets (`run_approvals.audit`).
    fn from(a: &RunApprovalAudit) -> Self {
        Thresholds {
            many_pulls: a.many_pulls as usize,
            factor: f64::from(a.factor),
            min_minutes: i64::from(a.min_minutes),
            min_jobs: a.min_jobs as usize,
        }
    }
}

/// The outside account behind an approved commit: the owner of the fork it comes from (`None`
/// for a branch of the project's own repository, whose pushers hold a role on it already).
fn outside_account(a: &ApprovalRow) -> Option<&str> {
    if a.head_repository.eq_ignore_ascii_case(&a.repository) {
        return None;
    }
    a.head_repository
        .split_once('/')
        .map(|(owner, _)| owner)
        .filter(|o| !o.is_empty())
}

/// The median of `values` (sorted here); the lower middle of an even count.
fn median(values: &mut [i64]) -> Option<i64> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// The findings about `approvals` and the counted `jobs` (every job of the projects, those
/// under an approval marked). `bots`: the logins of gatehouse.yml's bots (their pull requests are said to be a bot's).
/// `file`: the file the findings are reported on (gatehouse.yml, or "" without one).
pub fn findings(
    approvals: &[ApprovalRow],
    jobs: &[JobRow],
    bots: &[String],
    file: &str,
    t: Thresholds,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();

    // 1. One approver, many pull requests of one outside account.
    // (approver id, outside account) -> (approver's login, the pull requests approved).
    type PullsOf = BTreeMap<(i64, String), (String, BTreeSet<(String, i64)>)>;
    let mut pulls: PullsOf = BTreeMap::new();
    for a in approvals {
        let Some(account) = outside_account(a) else {
            continue;
        };
        let entry = pulls
            .entry((a.approver_id, account.to_ascii_lowercase()))
            .or_insert_with(|| (a.approver_login.clone(), BTreeSet::new()));
        entry
            .1
            .insert((a.repository.to_ascii_lowercase(), a.pull_number));
    }
    for ((_, account), (approver, prs)) in &pulls {
        if prs.len() < t.many_pulls {
            continue;
        }
        let is_bot = bots.iter().any(|b| b.eq_ignore_ascii_case(account));
        let listed: Vec<String> = prs
            .iter()
            .take(10)
            .map(|(r, n)| format!("{r}#{n}"))
            .collect();
        let more = prs.len().saturating_sub(listed.len());
        out.push(
            Diagnostic::warning(
                "audit-run-approvals-of-one-account",
                file,
                Span::UNKNOWN,
                format!(
                    "`{approver}` approved {} pull requests of {}`{account}` for managed runners ({}{})",
                    prs.len(),
                    if is_bot { "the bot " } else { "" },
                    listed.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ),
            )
            .with_help(if is_bot {
                "a bot's commits sit on code someone else wrote: make sure each approval follows a look at the commit, or, for pushes to the default branch only, consider `bots: trusted` on the resource"
            } else {
                "an approval should follow a reading of the commit; someone who contributes this often could be given a role on the project (and accept the terms) instead"
            }),
        );
    }

    // 2. Jobs under an approval far longer than the project's median job.
    let mut by_project: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for j in jobs {
        by_project.entry(&j.project).or_default().push(j.minutes);
    }
    let medians: BTreeMap<&str, (i64, usize)> = by_project
        .into_iter()
        .filter(|(_, v)| v.len() >= t.min_jobs)
        .filter_map(|(p, mut v)| Some((p, (median(&mut v)?, v.len()))))
        .collect();
    let by_id: BTreeMap<i64, &ApprovalRow> = approvals.iter().map(|a| (a.id, a)).collect();
    // The longest job of each approval.
    let mut longest: BTreeMap<i64, &JobRow> = BTreeMap::new();
    for j in jobs {
        let Some(id) = j.approval_id else { continue };
        let slot = longest.entry(id).or_insert(j);
        if j.minutes > slot.minutes {
            *slot = j;
        }
    }
    for (id, job) in longest {
        let (Some(a), Some(&(median, count))) = (by_id.get(&id), medians.get(job.project.as_str()))
        else {
            continue;
        };
        if job.minutes < t.min_minutes || (job.minutes as f64) <= t.factor * median as f64 {
            continue;
        }
        out.push(
            Diagnostic::warning(
                "audit-run-approval-long-job",
                file,
                Span::UNKNOWN,
                format!(
                    "job {} ran {} minutes under `{}`'s run approval of commit {} ({}#{} from {}), more than {} times `{}`'s median job ({median} minutes over {count} jobs)",
                    job.job_id,
                    job.minutes,
                    a.approver_login,
                    a.head_sha.get(..12).unwrap_or(&a.head_sha),
                    a.repository,
                    a.pull_number,
                    a.head_repository,
                    t.factor,
                    job.project
                ),
            )
            .with_help("read what the approved commit ran (the job's log): a build far longer than usual can be mining or a loop; GET /api/v1/run-approvals lists every job an approval admitted"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(id: i64, pull: i64, head: &str, approver: (&str, i64)) -> ApprovalRow {
        ApprovalRow {
            id,
            repository: "cf/numpy-feedstock".into(),
            pull_number: pull,
            head_sha: "6dcb09b5b57875f334f61aebed695e2e4193db5e".into(),
            head_repository: head.into(),
            approver_login: approver.0.into(),
            approver_id: approver.1,
            approved_at: "2026-11-20T10:00:00Z".into(),
        }
    }

    fn job(job_id: i64, minutes: i64, approval_id: Option<i64>) -> JobRow {
        JobRow {
            job_id,
            project: "numpy".into(),
            minutes,
            approval_id,
        }
    }

    const ANN: (&str, i64) = ("ann", 1);
    const BOB: (&str, i64) = ("bob", 2);

    #[test]
    fn an_approver_of_many_pull_requests_of_one_outside_account_is_reported() {
        // Ann approves five pull requests of drive-by's fork (one of them twice: one pull
        // request), Bob two; Ann's approvals of branches of the project's own repository
        // are not of an outside account.
        let mut rows: Vec<ApprovalRow> = (1..=5)
            .map(|n| approval(n, n, "Drive-By/numpy-feedstock", ANN))
            .collect();
        rows.push(approval(6, 5, "drive-by/numpy-feedstock", ANN));
        rows.push(approval(7, 1, "drive-by/numpy-feedstock", BOB));
        rows.push(approval(8, 2, "drive-by/numpy-feedstock", BOB));
        for n in 10..20 {
            rows.push(approval(n, n, "cf/numpy-feedstock", ANN));
        }
        let found = findings(&rows, &[], &[], "gatehouse.yml", Thresholds::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.code, "audit-run-approvals-of-one-account");
        assert!(
            f.message.starts_with(
                "`ann` approved 5 pull requests of `drive-by` for managed runners (cf/numpy-feedstock#1, "
            ),
            "{}",
            f.message
        );
        // Four are not many.
        let found = findings(&rows[1..], &[], &[], "", Thresholds::default());
        assert!(found.is_empty(), "{found:?}");
        // A bot's pull requests are said to be a bot's.
        let bot: Vec<ApprovalRow> = (1..=5)
            .map(|n| approval(n, n, "regro-cf-autotick-bot/numpy-feedstock", ANN))
            .collect();
        let found = findings(
            &bot,
            &[],
            &["regro-cf-autotick-bot".into()],
            "",
            Thresholds::default(),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .message
                .contains("of the bot `regro-cf-autotick-bot`")
        );
    }

    #[test]
    fn an_approval_whose_job_ran_far_longer_than_the_projects_median_is_reported() {
        let rows = vec![approval(1, 7, "drive-by/numpy-feedstock", ANN)];
        // The project's jobs: a median of 20 minutes; under the approval, one of 61 and one
        // of 20.
        let mut jobs: Vec<JobRow> = [10, 15, 20, 20, 25, 30]
            .iter()
            .enumerate()
            .map(|(i, m)| job(i as i64, *m, None))
            .collect();
        jobs.push(job(100, 20, Some(1)));
        jobs.push(job(101, 61, Some(1)));
        let found = findings(&rows, &jobs, &[], "", Thresholds::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, "audit-run-approval-long-job");
        assert!(
            found[0].message.starts_with("job 101 ran 61 minutes under `ann`'s run approval of commit 6dcb09b5b578 (cf/numpy-feedstock#7 from drive-by/numpy-feedstock), more than 3 times `numpy`'s median job (20 minutes over 8 jobs)"),
            "{}",
            found[0].message
        );
        // 60 minutes is 3 times the median, not more.
        jobs.pop();
        jobs.push(job(101, 60, Some(1)));
        assert!(findings(&rows, &jobs, &[], "", Thresholds::default()).is_empty());
        // Short jobs are never reported, and a project with few jobs has no median to judge by.
        let short = vec![
            job(1, 1, None),
            job(2, 1, None),
            job(3, 1, None),
            job(4, 1, None),
            job(5, 29, Some(1)),
        ];
        assert!(findings(&rows, &short, &[], "", Thresholds::default()).is_empty());
        let few = vec![job(1, 20, None), job(2, 200, Some(1))];
        assert!(findings(&rows, &few, &[], "", Thresholds::default()).is_empty());
    }
}
