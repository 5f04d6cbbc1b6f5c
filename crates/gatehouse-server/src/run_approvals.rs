//! Run approvals: someone who may start a resource's jobs approves a pull request's head
//! commit for managed runners, and the guard admits that commit's jobs (DESIGN.md section 10).
//!
//! An approval is a new comment `/gatehouse run <sha> [resource ...]` on the pull request
//! (`issue_comment` `created`; at least 12 hex digits of the head commit; the phrase is
//! `run_approvals.phrase` in `gatehouse.yml`), or an approving review whose text contains the
//! phrase (`pull_request_review` `submitted`; the commit is the review's `commit_id`). Edited
//! comments, edited and dismissed reviews approve nothing. The guard then
//!
//! 1. judges the approver with its role facts (never with the event's `author_association`):
//!    they must be able to start the resource's jobs themselves (role, the grant's user list,
//!    terms of service, by account id: [`gatehouse_policy::Policy::may_approve_runs`]);
//! 2. reads the pull request through GitHub's API (`pulls/get`) and refuses a commit that is
//!    not its head now (a push made after the reviewer read the code never rides along);
//! 3. records the approval (repository, pull request, head SHA, head repository, resources,
//!    approver's login and id, time), once per comment or review however often its delivery
//!    arrives;
//! 4. re-runs the runs of that commit whose jobs the people rule denied
//!    (`actions/re-run-workflow-failed-jobs`), and answers: a 👍 on the comment, or the
//!    guard's one reply on the pull request (written once, edited after) saying why not.
//!
//! When a later job of a pull-request run of exactly that commit from exactly that head
//! repository is denied by the people rule, [`consider`] hands the approval to the decision as
//! a fact ([`gatehouse_policy::RunApproval`]); every other rule still applies. The runs the
//! guard re-ran are admitted, and at most `run_approvals.runs` further runs (default 3) within
//! `run_approvals.hours` (default 24) of the approval, so closing and reopening the pull
//! request does not buy runs without end.
//!
//! These are not the approvals of access requests (`gatehouse approvals`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::model::GuardMode;
use gatehouse_policy::{Actor, Decision, Policy, RunApproval};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::clock::today;
use crate::events::{Event, IssueCommentEvent, PullRequestReviewEvent, User};
use crate::guard::{GuardJob, Handling, Step, Wait};
use crate::state::AppState;
use crate::store::{ApprovedRun, RunApprovalRecord, Write, time_text};

/// The fewest hex digits of a commit an approving comment must name.
pub const MIN_SHA_DIGITS: usize = 12;

/// What an approving comment or review asks.
#[derive(Debug, PartialEq, Eq)]
struct Ask {
    repository: String,
    pull: u64,
    approver: User,
    /// The commit named: a prefix of at least [`MIN_SHA_DIGITS`] hex digits (a comment), or
    /// the full SHA (a review's `commit_id`); `None`: the comment names none.
    commit: Option<String>,
    resources: Vec<String>,
    /// `comment:<id>` or `review:<id>`.
    source: String,
    /// The comment to react to (a review has no reactions).
    comment_id: Option<u64>,
}

/// The words after `phrase` when `text` asks for a run approval: the phrase starts a line
/// (comments), or appears anywhere (`anywhere`, reviews), followed by a space or the end.
fn words_after<'t>(text: &'t str, phrase: &str, anywhere: bool) -> Option<Vec<&'t str>> {
    if phrase.trim().is_empty() {
        return None;
    }
    for line in text.lines() {
        let line = line.trim();
        let at = if anywhere {
            line.find(phrase)
        } else {
            line.starts_with(phrase).then_some(0)
        };
        let Some(at) = at else { continue };
        let rest = &line[at + phrase.len()..];
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            continue;
        }
        return Some(rest.split_whitespace().collect());
    }
    None
}

fn is_commit(word: &str) -> bool {
    (MIN_SHA_DIGITS..=64).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The approval a comment asks for, if it asks for one (a new comment on a pull request whose
/// first words are the phrase).
fn comment_ask(e: &IssueCommentEvent, phrase: &str) -> Option<Ask> {
    e.issue.pull_request.as_ref()?;
    let words = words_after(e.comment.body.as_deref()?, phrase, false)?;
    let approver = e.comment.user.clone()?;
    // A first word of 7 or more hex digits is meant as the commit (too short to be sure
    // which when under 12): never read as a resource name.
    let (commit, resources) = match words.split_first() {
        Some((first, rest)) if first.len() >= 7 && first.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (is_commit(first).then(|| first.to_ascii_lowercase()), rest)
        }
        _ => (None, &words[..]),
    };
    Some(Ask {
        repository: e.repository.full_name.clone(),
        pull: e.issue.number,
        approver,
        commit,
        resources: resources.iter().map(|r| r.to_string()).collect(),
        source: format!("comment:{}", e.comment.id),
        comment_id: Some(e.comment.id),
    })
}

/// The approval a review asks for, if it asks for one (an approving review whose text holds
/// the phrase; the commit is the one it was given on).
fn review_ask(e: &PullRequestReviewEvent, phrase: &str) -> Option<Ask> {
    if !e.review.state.eq_ignore_ascii_case("approved") {
        return None;
    }
    let words = words_after(e.review.body.as_deref()?, phrase, true)?;
    Some(Ask {
        repository: e.repository.full_name.clone(),
        pull: e.pull_request.number,
        approver: e.review.user.clone()?,
        commit: e.review.commit_id.as_ref().map(|c| c.to_ascii_lowercase()),
        resources: words
            .iter()
            .filter(|w| !is_commit(w))
            .map(|r| r.to_string())
            .collect(),
        source: format!("review:{}", e.review.id),
        comment_id: None,
    })
}

/// Whether the event asks for a run approval the guard acts on (a `created` comment or a
/// `submitted` review that asks for one): then it calls GitHub. Anything else is only stored.
pub(crate) fn acts(state: &AppState, event: &crate::guard::Parsed) -> bool {
    let phrase = &state.source.load().run_approvals.phrase;
    match event {
        Ok(Event::IssueComment(e)) => e.action == "created" && comment_ask(e, phrase).is_some(),
        Ok(Event::PullRequestReview(e)) => {
            e.action == "submitted" && review_ask(e, phrase).is_some()
        }
        _ => false,
    }
}

/// Handles an `issue_comment` or `pull_request_review` delivery.
pub(crate) async fn on_event(
    state: &AppState,
    job: &Handling<'_>,
    event: &Event,
    writes: &mut Vec<Write>,
) -> anyhow::Result<Step> {
    let phrase = state.source.load().run_approvals.phrase.clone();
    let (action, wanted, ask) = match event {
        Event::IssueComment(e) => (e.action.as_str(), "created", comment_ask(e, &phrase)),
        Event::PullRequestReview(e) => (e.action.as_str(), "submitted", review_ask(e, &phrase)),
        _ => return Ok(Step::Did("not a run approval".into())),
    };
    let Some(ask) = ask else {
        return Ok(Step::Did("not a run approval".into()));
    };
    if action != wanted {
        // An edit could change what a reviewer read; only new comments and reviews count.
        return Ok(Step::Did(format!(
            "`{action}`: only a new comment or review approves a run; nothing done"
        )));
    }
    approve(state, job, ask, writes).await
}

/// Why an approval was refused, as the guard answers it.
fn refused(ask: &Ask, why: String) -> String {
    format!(
        "@{}: your run approval was not recorded: {why}.",
        ask.approver.login
    )
}

async fn approve(
    state: &AppState,
    job: &Handling<'_>,
    ask: Ask,
    writes: &mut Vec<Write>,
) -> anyhow::Result<Step> {
    let policy = state.policy.load();
    let settings = state.source.load().run_approvals.clone();
    let repository = ask.repository.clone();
    let today = today();
    let granted = policy.granted_resources(&repository, today);
    if granted.is_empty() {
        return Ok(Step::Did(format!(
            "run approval on {repository}, which holds no grant: nothing to approve"
        )));
    }
    let Some(github) = state.github.clone() else {
        return Ok(Step::Did(
            "run approval not recorded: without a GitHub token the guard cannot read the pull request"
                .into(),
        ));
    };
    // 1. The approver, judged on the role facts.
    let Some(roles) = state
        .facts
        .fresh(&repository, Timestamp::now(), state.config.facts_ttl)
    else {
        if Timestamp::now() < job.deadline {
            return Ok(Step::Wait(Wait::Roles { repository }));
        }
        let why = "gatehouse could not read the roles on the repository in time; comment again in a few minutes".to_string();
        return answer(state, &ask, Err(why), writes).await;
    };
    let approver = Actor {
        login: ask.approver.login.clone(),
        id: ask.approver.id,
        permission: None,
    };
    let role = roles.role_of(approver.id);
    // Quoted back only as a resource name's characters.
    let unknown: Vec<String> = ask
        .resources
        .iter()
        .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
        .map(|r| quotable(r))
        .collect();
    if !unknown.is_empty() {
        let why = format!(
            "this project holds no grant of {}; it holds {}",
            ticked(unknown.iter().map(String::as_str)),
            ticked(granted.iter().map(String::as_str))
        );
        return answer(state, &ask, Err(why), writes).await;
    }
    let resources: Vec<String> = if ask.resources.is_empty() {
        granted.clone()
    } else {
        granted
            .iter()
            .filter(|g| ask.resources.iter().any(|r| r.eq_ignore_ascii_case(g)))
            .cloned()
            .collect()
    };
    for resource in &resources {
        if let Err(why) = policy.may_approve_runs(&repository, resource, &approver, role, today) {
            let why = match why {
                Some(why) => format!(
                    "only someone who may start jobs on `{resource}` themselves can approve them, and `{}` {}",
                    approver.login,
                    why.describe()
                ),
                None => format!("`{resource}` is not granted to this project"),
            };
            return answer(state, &ask, Err(why), writes).await;
        }
    }
    // 2. The commit, which must be the pull request's head now.
    let Some(pull) = github.pull_request(&repository, ask.pull).await? else {
        return Ok(Step::Did(format!(
            "run approval on pull request {} of {repository}, which GitHub does not know",
            ask.pull
        )));
    };
    let head = pull.head.sha.to_ascii_lowercase();
    let why = match (&ask.commit, &pull.head.repo) {
        _ if pull.state != "open" => Some("the pull request is closed".to_string()),
        (None, _) => Some(format!(
            "name the commit you approve: `{} {}` (at least {MIN_SHA_DIGITS} hex digits of the pull request's head commit)",
            settings.phrase,
            short(&head)
        )),
        (Some(named), _) if !head.starts_with(named.as_str()) => Some(format!(
            "it names commit `{named}`, and the pull request's head is `{}` now; read the new commits, then approve the head",
            short(&head)
        )),
        (_, None) => Some("the pull request's head repository is gone".to_string()),
        _ => None,
    };
    if let Some(why) = why {
        return answer(state, &ask, Err(why), writes).await;
    }
    let head_repository = pull
        .head
        .repo
        .as_ref()
        .map(|r| r.full_name.to_ascii_lowercase())
        .unwrap_or_default();
    // 3. Recorded, now: the jobs re-run next must find it.
    let now = Timestamp::now();
    let record = RunApprovalRecord {
        source: ask.source.clone(),
        repository: repository.to_ascii_lowercase(),
        pull_number: ask.pull as i64,
        head_sha: head.clone(),
        head_repository: head_repository.clone(),
        resources: if ask.resources.is_empty() {
            String::new()
        } else {
            resources.join(",")
        },
        approver_login: approver.login.clone(),
        approver_id: approver.id,
        approved_at: time_text(now),
        expires_at: time_text(now + SignedDuration::from_hours(i64::from(settings.hours))),
        runs: i64::from(settings.runs),
    };
    let rows = state
        .store
        .commit(vec![Write::RunApproval(record.clone())])
        .await?;
    if rows.first() != Some(&1) {
        return Ok(Step::Did(format!(
            "run approval {} recorded before: nothing more done",
            ask.source
        )));
    }
    state.metrics.run_approval("recorded");
    // 4. The denied runs of the commit go again (the re-run is noted first, so that its
    // jobs, which may be queued at once, find it).
    let mut rerun = Vec::new();
    if state.mode() == GuardMode::Enforce {
        let denied = state
            .store
            .denied_runs_of_commit(&repository.to_ascii_lowercase(), &head, &head_repository)
            .await?;
        for (run_id, attempt) in denied {
            state
                .store
                .commit(vec![Write::ApprovedRun(ApprovedRun::Rerun {
                    source: ask.source.clone(),
                    run_id,
                    run_attempt: attempt + 1,
                    at: time_text(Timestamp::now()),
                })])
                .await?;
            match github.rerun_failed_jobs(&repository, run_id).await {
                Ok(()) => rerun.push(run_id),
                Err(e) => tracing::warn!(
                    repository,
                    run_id,
                    error = %e,
                    "approved, but the denied run could not be re-run"
                ),
            }
        }
    }
    let what = format!(
        "run approval by {} of {} from {head_repository} recorded{}",
        approver.login,
        short(&head),
        match rerun.len() {
            0 => String::new(),
            n => format!("; {n} denied run(s) re-run"),
        }
    );
    answer(state, &ask, Ok(what), writes).await
}

/// The first [`MIN_SHA_DIGITS`] characters of a commit's SHA (all of it when shorter).
fn short(sha: &str) -> &str {
    sha.get(..MIN_SHA_DIGITS).unwrap_or(sha)
}

/// A word of a comment as the guard may quote it back: a resource name's characters only, at
/// most 100 (a comment cannot make the guard's reply mention anyone or link anywhere).
fn quotable(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*'))
        .take(100)
        .collect()
}

/// `a`, `b` and `c`, each in backticks.
fn ticked<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.map(|i| format!("`{i}`")).collect();
    match items.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Answers the approval on GitHub: a 👍 on an accepted comment (sent in the background);
/// otherwise the guard's one
/// reply on the pull request (edited when it wrote one before). What it said is the
/// delivery's outcome.
async fn answer(
    state: &AppState,
    ask: &Ask,
    result: Result<String, String>,
    writes: &mut Vec<Write>,
) -> anyhow::Result<Step> {
    let Some(github) = &state.github else {
        return Ok(Step::Did(result.unwrap_or_else(|e| e)));
    };
    let (text, outcome) = match (&result, ask.comment_id) {
        (Ok(what), Some(comment)) => {
            // The approval is recorded; the 👍 only says so. It waits its turn among the
            // guard's spaced GitHub mutations, which can take longer than GitHub waits for a
            // webhook's answer (10 s), so it is sent after the delivery is answered.
            let (github, repository) = (github.clone(), ask.repository.clone());
            tokio::spawn(async move {
                if let Err(e) = github.react_to_comment(&repository, comment, "+1").await {
                    tracing::warn!(error = %e, "cannot react to the approving comment");
                }
            });
            return Ok(Step::Did(what.clone()));
        }
        (Ok(what), None) => (
            format!(
                "@{}'s approval of this pull request's head commit for managed runners is recorded; its denied runs go again.",
                ask.approver.login
            ),
            what.clone(),
        ),
        (Err(why), _) => {
            state.metrics.run_approval("refused");
            (
                refused(ask, why.clone()),
                format!("run approval refused: {why}"),
            )
        }
    };
    let repository = ask.repository.to_ascii_lowercase();
    let existing = state
        .store
        .run_approval_reply(&repository, ask.pull as i64)
        .await?;
    match github
        .reply_on_pull(
            &ask.repository,
            ask.pull,
            existing.and_then(|id| u64::try_from(id).ok()),
            &text,
        )
        .await
    {
        Ok(id) => writes.push(Write::RunApprovalReply {
            repository,
            pull_number: ask.pull as i64,
            comment_id: id as i64,
        }),
        Err(e) => tracing::warn!(error = %e, "cannot answer the run approval on the pull request"),
    }
    Ok(Step::Did(outcome))
}

/// A job of `run_id`'s attempt `run_attempt` that the people rule denied: decided again with
/// each approval of its commit in force (newest first); the first that lets it run, and whose
/// allowance still has room for this run (claimed now), gives the decision, with the id of
/// the approval it stands on when it allows (the decision records it: [`job_used`]). `None`:
/// no approval helps; the denial stands.
pub(crate) async fn consider(
    state: &AppState,
    policy: &Policy,
    view: &mut GuardJob<'_>,
    run_id: i64,
    run_attempt: i64,
) -> anyhow::Result<Option<(Decision, Option<i64>)>> {
    let Some((head_sha, head_repository)) = view.head() else {
        return Ok(None);
    };
    let repository = view.repository_name().to_ascii_lowercase();
    let now = time_text(Timestamp::now());
    let approvals = state
        .store
        .run_approvals_of(
            &repository,
            &head_sha.to_ascii_lowercase(),
            &head_repository.to_ascii_lowercase(),
            &now,
        )
        .await?;
    for stored in approvals {
        let a = &stored.approval;
        view.approval = Some(RunApproval {
            approver: Actor {
                login: a.approver_login.clone(),
                id: a.approver_id,
                permission: None,
            },
            head_sha: a.head_sha.clone(),
            head_repository: a.head_repository.clone(),
            resources: a.resource_list(),
        });
        let decision = policy.decide(&*view);
        match decision {
            Decision::Allow { .. } => {
                state
                    .store
                    .commit(vec![Write::ApprovedRun(ApprovedRun::Claim {
                        approval_id: stored.id,
                        run_id,
                        run_attempt,
                        at: now.clone(),
                    })])
                    .await?;
                if state
                    .store
                    .run_approved(stored.id, run_id, run_attempt)
                    .await?
                {
                    state.metrics.run_approval("admitted");
                    return Ok(Some((decision, Some(stored.id))));
                }
                state.metrics.run_approval("allowance-used");
            }
            Decision::Undecided { .. } => return Ok(Some((decision, None))),
            Decision::Deny(_) | Decision::NotManaged => {}
        }
    }
    view.approval = None;
    Ok(None)
}

/// What records that job `job_id` of attempt `run_attempt` of run `run_id` was allowed on
/// approval `approval_id`: written with the decision, in the same unit.
pub(crate) fn job_used(
    approval_id: i64,
    job_id: i64,
    run_id: i64,
    run_attempt: i64,
    delivery_id: &str,
) -> Write {
    Write::ApprovedRun(ApprovedRun::Job {
        approval_id,
        job_id,
        run_id,
        run_attempt,
        delivery_id: delivery_id.to_string(),
        at: time_text(Timestamp::now()),
    })
}

/// How many run approvals a project's page shows.
const SHOWN: i64 = 50;

/// The recent run approvals of `repository` (`owner/name`) as its project's page shows them,
/// newest first, each with the jobs that ran under it.
pub(crate) async fn shown(
    state: &AppState,
    repository: &str,
) -> anyhow::Result<Vec<gatehouse_site::RunApprovalShown>> {
    let store = state.store();
    let mut out = Vec::new();
    for a in store
        .recent_run_approvals(Some(&repository.to_ascii_lowercase()), SHOWN)
        .await?
    {
        let jobs = store.jobs_of_run_approval(a.id).await?;
        let resources = a.approval.resource_list();
        let r = a.approval;
        out.push(gatehouse_site::RunApprovalShown {
            repository: r.repository,
            pull_number: r.pull_number,
            head_sha: r.head_sha,
            head_repository: r.head_repository,
            resources,
            approver_login: r.approver_login,
            approver_id: r.approver_id,
            approved_at: r.approved_at,
            expires_at: r.expires_at,
            jobs: jobs
                .into_iter()
                .map(|j| gatehouse_site::ApprovedJobShown {
                    job_id: j.job_id,
                    run_id: j.run_id,
                    run_attempt: j.run_attempt,
                    minutes: j.minutes,
                })
                .collect(),
        });
    }
    Ok(out)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `owner/name`: only this repository's approvals.
    repository: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/run-approvals`: the most recent run approvals, newest first: who approved which
/// commit of which pull request for which resources, when, until when, and the runs admitted
/// under each (`by_guard`: re-run by the guard after the approval; the others count against
/// `runs`) and the jobs whose decision stood on it (`jobs`: job, run, attempt, when, and its
/// minutes once counted).
pub(crate) async fn list_api(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let repository = q.repository.map(|r| r.to_ascii_lowercase());
    let read = async {
        let mut out = Vec::new();
        for a in state
            .store
            .recent_run_approvals(repository.as_deref(), limit)
            .await?
        {
            let runs: Vec<serde_json::Value> = state
                .store
                .runs_of_run_approval(a.id)
                .await?
                .into_iter()
                .map(|(run_id, attempt, by_guard)| {
                    json!({ "run_id": run_id, "run_attempt": attempt, "by_guard": by_guard })
                })
                .collect();
            let jobs = state.store.jobs_of_run_approval(a.id).await?;
            let mut v = serde_json::to_value(&a)?;
            v["resources"] = json!(a.approval.resource_list());
            v["runs_admitted"] = json!(runs);
            v["jobs"] = json!(jobs);
            out.push(v);
        }
        anyhow::Ok(out)
    };
    match read.await {
        Ok(list) => Json(json!({ "run_approvals": list, "limit": limit })).into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot read run approvals");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "message": "cannot read run approvals" })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phrase_starts_a_comment_line_and_names_a_commit() {
        let p = "/gatehouse run";
        assert_eq!(
            words_after("/gatehouse run 0123456789ab gpu", p, false),
            Some(vec!["0123456789ab", "gpu"])
        );
        assert_eq!(
            words_after("looks good\n  /gatehouse run abc", p, false),
            Some(vec!["abc"])
        );
        assert_eq!(words_after("/gatehouse running", p, false), None);
        assert_eq!(words_after("please /gatehouse run", p, false), None);
        assert_eq!(
            words_after("LGTM, /gatehouse run", p, true),
            Some(Vec::new())
        );
        assert_eq!(quotable("@octo-org/core](https://x)"), "octo-orgcorehttpsx");
        assert_eq!(short("6dcb09b5b57875f3"), "6dcb09b5b578");
        assert_eq!(short("é"), "é");
        assert!(is_commit("0123456789ab"));
        assert!(!is_commit("0123456789a"));
        assert!(!is_commit("0123456789ag"));
    }
}
