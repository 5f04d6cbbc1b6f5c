//! Run approvals (`/gatehouse run <sha>`) end to end: a fork's pull request denied, approved by
//! a maintainer's comment or review, its denied run re-run and allowed; what does not approve
//! (someone without the role, a commit that is not the head, an edited comment, a comment
//! naming no commit) refused and answered once; the allowance of further runs; a push after
//! the approval denied again; a delivery replayed counted once. Payloads are GitHub's examples
//! (`tests/fixtures/issue_comment.*.json`, `pull_request_review.submitted.json`), adapted.

use super::*;
use gatehouse_fake::FakePull;

/// The pull request's head commit, and a commit pushed after the approval.
const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const PUSHED: &str = "c0ffee5b57875f334f61aebed695e2e4193db5e0";
/// The outsider's fork the pull request comes from.
const FORK: &str = "drive-by/example-feedstock";
const PULL: u64 = 7;
/// The account a re-run started by the guard's App names as its triggering actor.
const APP: (&str, i64) = ("gatehouse[bot]", 41898283);

/// A guard with the outsider's open pull request from their fork (head [`HEAD`]) and a
/// maintainer (`write`) who may approve it.
async fn with_fork_pull(backend: Backend) -> Guard {
    let guard = Guard::start(backend).await;
    guard.set_role(MAINTAINER, Some("write")).await;
    {
        let mut s = guard.fake.state.lock().unwrap();
        s.accounts.insert(OUTSIDER.0.into(), OUTSIDER.1);
        s.pulls.insert(
            PULL,
            FakePull {
                head_repo: Some(FORK.into()),
                ..FakePull::new(OUTSIDER.0, HEAD, &[])
            },
        );
    }
    guard
}

/// Attempt `attempt` of a `pull_request` run of commit `sha` from the outsider's fork. For a
/// fork GitHub lists no pull request in `workflow_run.pull_requests`.
fn fork_run(run_id: i64, attempt: i64, sha: &str, triggering: (&str, i64)) -> Value {
    let mut v = run_by(run_id, attempt, OUTSIDER, triggering);
    v["workflow_run"]["event"] = json!("pull_request");
    v["workflow_run"]["head_sha"] = json!(sha);
    v["workflow_run"]["pull_requests"] = json!([]);
    v["workflow_run"]["head_repository"]["full_name"] = json!(FORK);
    v["workflow_run"]["head_repository"]["owner"]["login"] = json!(OUTSIDER.0);
    v["workflow_run"]["head_repository"]["owner"]["id"] = json!(OUTSIDER.1);
    v
}

/// `who` comments `body` on the pull request (`action`: `created` or `edited`).
fn comment(id: u64, action: &str, body: &str, who: (&str, i64)) -> Value {
    let mut v = fixture(&format!("issue_comment.{action}.json"));
    v["repository"]["full_name"] = json!(REPO);
    v["issue"]["number"] = json!(PULL);
    let api = format!("https://api.github.com/repos/{REPO}/pulls/{PULL}");
    let html = format!("https://github.com/{REPO}/pull/{PULL}");
    v["issue"]["pull_request"] = json!({
        "url": api, "html_url": html, "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"), "merged_at": null,
    });
    v["comment"]["id"] = json!(id);
    v["comment"]["body"] = json!(body);
    v["comment"]["user"]["login"] = json!(who.0);
    v["comment"]["user"]["id"] = json!(who.1);
    v
}

/// `who` reviews the pull request at `commit` (`state`: `approved`, `commented`, ...).
fn review(id: u64, state: &str, body: &str, commit: &str, who: (&str, i64)) -> Value {
    let mut v = fixture("pull_request_review.submitted.json");
    v["repository"]["full_name"] = json!(REPO);
    v["pull_request"]["number"] = json!(PULL);
    v["review"]["id"] = json!(id);
    v["review"]["state"] = json!(state);
    v["review"]["body"] = json!(body);
    v["review"]["commit_id"] = json!(commit);
    v["review"]["user"]["login"] = json!(who.0);
    v["review"]["user"]["id"] = json!(who.1);
    v
}

impl Guard {
    /// Delivers a run and one queued job of it; the job's answer.
    async fn run_job(&self, run: &Value, job_id: i64) -> String {
        let run_id = run["workflow_run"]["id"].as_i64().unwrap();
        let attempt = run["workflow_run"]["run_attempt"].as_i64().unwrap();
        self.deliver("workflow_run", &format!("run-{run_id}-{attempt}"), run)
            .await;
        let (_, m) = self
            .deliver(
                "workflow_job",
                &format!("job-{job_id}"),
                &queued_attempt(run_id, attempt, job_id),
            )
            .await;
        m
    }

    fn reruns(&self) -> Vec<i64> {
        let s = self.fake.state.lock().unwrap();
        s.reruns.iter().map(|(_, id)| *id).collect()
    }

    /// The guard's comments on the pull request.
    fn replies(&self) -> Vec<String> {
        self.fake
            .comments_on(REPO, PULL)
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

on_both!(
    a_fork_pull_request_is_denied_approved_rerun_and_allowed,
    run_approvals_that_do_not_count_are_refused_and_said_so,
    an_approving_review_of_the_head_commit_approves_it,
    a_bots_pull_request_runs_once_a_maintainer_approves_its_commit,
    a_resource_that_trusts_bots_runs_their_pushes_to_the_default_branch,
    an_approval_past_its_hours_admits_nothing_and_the_phrase_is_the_settings,
    an_approval_that_arrives_before_the_run_admits_it_without_a_rerun,
);

pub(super) async fn a_fork_pull_request_is_denied_approved_rerun_and_allowed(backend: Backend) {
    let guard = with_fork_pull(backend).await;
    // The outsider's pull request: denied, and told who can approve it and what to write.
    let m = guard
        .run_job(&fork_run(1100, 1, HEAD, OUTSIDER), 11000)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    let d = &guard.decisions("?outcome=deny").await[0];
    let told = d["message"].as_str().unwrap();
    assert!(
        told.contains(&format!("`/gatehouse run {}`", &HEAD[..12]))
            && told.contains("the admin, maintain, write role on `octo-org/example-feedstock`"),
        "{told}"
    );

    // A maintainer approves the head commit: recorded, the denied run goes again, and the
    // comment gets a 👍.
    let approve = comment(
        501,
        "created",
        &format!("Read it, fine.\n/gatehouse run {}", &HEAD[..12]),
        MAINTAINER,
    );
    let (status, m) = guard.deliver("issue_comment", "comment-1", &approve).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert!(
        m.contains("run approval by a-maintainer of 6dcb09b5b578")
            && m.contains("1 denied run(s) re-run"),
        "{m}"
    );
    assert_eq!(guard.reruns(), [1100]);
    // The 👍 follows the answer (it waits its turn among the guard's GitHub mutations).
    for _ in 0..100 {
        if !guard.fake.state.lock().unwrap().reactions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        guard.fake.state.lock().unwrap().reactions,
        [(501, "+1".to_string())]
    );
    assert!(guard.replies().is_empty(), "{:?}", guard.replies());
    // The re-run (its triggering actor is the guard's App) is allowed.
    let m = guard.run_job(&fork_run(1100, 2, HEAD, APP), 11001).await;
    assert_eq!(m, "allow");

    // The same comment again (another delivery of it) records nothing and re-runs nothing;
    // the same delivery again is a duplicate.
    let (_, m) = guard.deliver("issue_comment", "comment-1b", &approve).await;
    assert!(m.contains("recorded before"), "{m}");
    let (_, m) = guard.deliver("issue_comment", "comment-1", &approve).await;
    assert_eq!(m, "duplicate delivery");
    assert_eq!(guard.reruns(), [1100]);

    // Three further runs of the commit (closed and reopened, say), each with two jobs, run;
    // the fourth does not.
    for run_id in [1101, 1102, 1103] {
        let run = fork_run(run_id, 1, HEAD, OUTSIDER);
        assert_eq!(guard.run_job(&run, run_id * 10).await, "allow");
        let (_, m) = guard
            .deliver(
                "workflow_job",
                &format!("job-{}", run_id * 10 + 1),
                &queued_attempt(run_id, 1, run_id * 10 + 1),
            )
            .await;
        assert_eq!(m, "allow", "a second job of run {run_id}");
    }
    let m = guard
        .run_job(&fork_run(1104, 1, HEAD, OUTSIDER), 11040)
        .await;
    assert_eq!(
        m, "deny (user-not-allowed): run cancelled",
        "beyond the allowance"
    );

    // A push to the pull request: the new commit is not approved.
    let m = guard
        .run_job(&fork_run(1105, 1, PUSHED, OUTSIDER), 11050)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");

    // `pull_request_target` stays denied, approved commit or not.
    let mut target = fork_run(1106, 1, HEAD, OUTSIDER);
    target["workflow_run"]["event"] = json!("pull_request_target");
    let m = guard.run_job(&target, 11060).await;
    assert_eq!(m, "deny (event-not-allowed): run cancelled");
    let metrics = guard.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "gatehouse_run_approvals_total{outcome=\"admitted\"}"
        ),
        Some(7.0),
        "{metrics}"
    );
    // The JSON API says who approved what, and which runs ran under it.
    let (status, doc) = guard
        .get(&format!("/api/v1/run-approvals?repository={REPO}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let list = doc["run_approvals"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{doc}");
    let a = &list[0];
    assert_eq!(
        (
            a["approver_login"].as_str(),
            a["approver_id"].as_i64(),
            a["head_sha"].as_str(),
            a["head_repository"].as_str(),
            a["pull_number"].as_i64(),
            a["runs_used"].as_i64(),
        ),
        (
            Some(MAINTAINER.0),
            Some(MAINTAINER.1),
            Some(HEAD),
            Some(FORK),
            Some(PULL as i64),
            Some(3)
        ),
        "{a}"
    );
    let ran: Vec<(i64, i64, bool)> = a["runs_admitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run_id"].as_i64().unwrap(),
                r["run_attempt"].as_i64().unwrap(),
                r["by_guard"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            (1100, 2, true),
            (1101, 1, false),
            (1102, 1, false),
            (1103, 1, false)
        ]
    );
    // Each decision that stood on the approval recorded it: the jobs that ran under it, with
    // their minutes once counted.
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "done-11001",
            &completed_job(1100, 11001, 42),
        )
        .await;
    assert!(m.contains("42 minutes counted"), "{m}");
    let (_, doc) = guard
        .get(&format!("/api/v1/run-approvals?repository={REPO}"))
        .await;
    let jobs: Vec<(i64, i64, Option<i64>)> = doc["run_approvals"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["job_id"].as_i64().unwrap(),
                j["run_id"].as_i64().unwrap(),
                j["minutes"].as_i64(),
            )
        })
        .collect();
    let mut ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
    ids.sort();
    assert_eq!(
        ids,
        [11001, 11010, 11011, 11020, 11021, 11030, 11031],
        "the 7 jobs admitted, and not the denied ones: {doc}"
    );
    assert!(jobs.contains(&(11001, 1100, Some(42))), "{jobs:?}");
    assert!(jobs.contains(&(11010, 1101, None)), "{jobs:?}");
    // The project's page of the live dashboard shows the same.
    let page = guard
        .http
        .get(format!("{}/dashboard/projects/example", guard.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let table = page
        .split("<table id=\"run-approvals-table\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no run approvals on the project's page: {page}"));
    for part in [
        format!(">{}</a>", MAINTAINER.0),
        format!("/pull/{PULL}\">#{PULL}</a>"),
        format!("<code>{}</code>", &HEAD[..12]),
        format!("<td>{FORK}</td>"),
        "/actions/runs/1100/job/11001\">11001</a> (42 min)".to_string(),
    ] {
        assert!(table.contains(&part), "{part} in {table}");
    }
}

async fn run_approvals_that_do_not_count_are_refused_and_said_so(backend: Backend) {
    let guard = with_fork_pull(backend).await;
    let m = guard
        .run_job(&fork_run(1200, 1, HEAD, OUTSIDER), 12000)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    let approve = format!("/gatehouse run {}", &HEAD[..12]);

    // The author, without a role, approves their own pull request: refused, and told why.
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "c-1",
            &comment(601, "created", &approve, OUTSIDER),
        )
        .await;
    assert!(
        m.starts_with("run approval refused") && m.contains("has no role"),
        "{m}"
    );
    assert_eq!(guard.replies().len(), 1);
    assert!(guard.replies()[0].contains("@drive-by: your run approval was not recorded"));

    // A maintainer names a commit that is not the head (the pull request moved on).
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "c-2",
            &comment(
                602,
                "created",
                &format!("/gatehouse run {}", &PUSHED[..12]),
                MAINTAINER,
            ),
        )
        .await;
    assert!(
        m.contains("the pull request's head is `6dcb09b5b578` now"),
        "{m}"
    );
    // ... or none at all, or too few digits to be sure which.
    for (id, body) in [(603, "/gatehouse run"), (604, "/gatehouse run 6dcb09b5")] {
        let (_, m) = guard
            .deliver(
                "issue_comment",
                &format!("c-{id}"),
                &comment(id, "created", body, MAINTAINER),
            )
            .await;
        assert!(m.contains("name the commit you approve"), "{m}");
    }
    // An edited comment approves nothing, even with the right words.
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "c-5",
            &comment(605, "edited", &approve, MAINTAINER),
        )
        .await;
    assert!(m.contains("only a new comment or review approves"), "{m}");
    // A comment that does not start with the phrase is no approval.
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "c-6",
            &comment(606, "created", &format!("please {approve}"), MAINTAINER),
        )
        .await;
    assert_eq!(m, "not a run approval");

    // Nothing was re-run, and the guard answered in one comment, edited each time.
    assert!(guard.reruns().is_empty());
    let replies = guard.replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains("name the commit"), "{replies:?}");
    let m = guard
        .run_job(&fork_run(1201, 1, HEAD, OUTSIDER), 12010)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
}

pub(super) async fn an_approving_review_of_the_head_commit_approves_it(backend: Backend) {
    let guard = with_fork_pull(backend).await;
    let m = guard
        .run_job(&fork_run(1300, 1, HEAD, OUTSIDER), 13000)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    // A review that only comments approves nothing; one that approves another commit is
    // refused.
    let (_, m) = guard
        .deliver(
            "pull_request_review",
            "r-1",
            &review(701, "commented", "/gatehouse run", HEAD, MAINTAINER),
        )
        .await;
    assert_eq!(m, "not a run approval");
    let (_, m) = guard
        .deliver(
            "pull_request_review",
            "r-2",
            &review(702, "approved", "LGTM /gatehouse run", PUSHED, MAINTAINER),
        )
        .await;
    assert!(m.contains("run approval refused"), "{m}");
    let (_, m) = guard
        .deliver(
            "pull_request_review",
            "r-3",
            &review(
                703,
                "approved",
                "LGTM, /gatehouse run gpu",
                HEAD,
                MAINTAINER,
            ),
        )
        .await;
    assert!(m.contains("1 denied run(s) re-run"), "{m}");
    assert_eq!(guard.reruns(), [1300]);
    let m = guard.run_job(&fork_run(1300, 2, HEAD, APP), 13001).await;
    assert_eq!(m, "allow");
    // One reply, edited: the refusal, then the approval.
    let replies = guard.replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains("is recorded"), "{replies:?}");
}

/// The version-update bot: a collaborator with `write` on the feedstock, named in `bots`.
const BOT: (&str, i64) = ("regro-cf-autotick-bot", 36490558);

async fn a_bots_pull_request_runs_once_a_maintainer_approves_its_commit(backend: Backend) {
    let guard = with_fork_pull(backend).await;
    std::fs::write(
        guard.repo.path().join("gatehouse.yml"),
        format!(
            "{SETTINGS}bots:\n  - {{ github: {}, id: {} }}\n",
            BOT.0, BOT.1
        ),
    )
    .unwrap();
    let (status, doc) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    guard.set_role(BOT, Some("write")).await;
    // The bot's pull request from its fork: whatever its role, a bot is no maintainer.
    let bot_fork = "regro-cf-autotick-bot/example-feedstock";
    {
        let mut s = guard.fake.state.lock().unwrap();
        s.accounts.insert(BOT.0.into(), BOT.1);
        s.pulls.insert(
            8,
            FakePull {
                head_repo: Some(bot_fork.into()),
                ..FakePull::new(BOT.0, HEAD, &[])
            },
        );
    }
    let bot_run = |run_id: i64, attempt: i64, triggering: (&str, i64)| {
        let mut v = fork_run(run_id, attempt, HEAD, triggering);
        for who in ["actor", "triggering_actor"] {
            if v["workflow_run"][who]["id"] == json!(OUTSIDER.1) {
                v["workflow_run"][who]["login"] = json!(BOT.0);
                v["workflow_run"][who]["id"] = json!(BOT.1);
            }
        }
        v["workflow_run"]["head_repository"]["full_name"] = json!(bot_fork);
        v["workflow_run"]["head_repository"]["owner"]["login"] = json!(BOT.0);
        v["workflow_run"]["head_repository"]["owner"]["id"] = json!(BOT.1);
        v
    };
    let m = guard.run_job(&bot_run(1400, 1, BOT), 14000).await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    let d = &guard.decisions("?outcome=deny").await[0];
    let told = d["message"].as_str().unwrap();
    assert!(
        told.contains("is a bot") && told.contains("/gatehouse run 6dcb09b5b578"),
        "{told}"
    );
    // The bot approving its own pull request (a bot command, say) counts for nothing.
    let on_bot_pull = |id: u64, who: (&str, i64)| {
        let mut v = comment(
            id,
            "created",
            &format!("/gatehouse run {}", &HEAD[..12]),
            who,
        );
        v["issue"]["number"] = json!(8);
        v
    };
    let (_, m) = guard
        .deliver("issue_comment", "b-1", &on_bot_pull(801, BOT))
        .await;
    assert!(
        m.contains("run approval refused") && m.contains("is a bot"),
        "{m}"
    );
    assert!(guard.reruns().is_empty());
    // A maintainer's one comment lets it run.
    let (_, m) = guard
        .deliver("issue_comment", "b-2", &on_bot_pull(802, MAINTAINER))
        .await;
    assert!(m.contains("1 denied run(s) re-run"), "{m}");
    assert_eq!(guard.run_job(&bot_run(1400, 2, APP), 14001).await, "allow");
}

async fn a_resource_that_trusts_bots_runs_their_pushes_to_the_default_branch(backend: Backend) {
    let guard = Guard::start(backend).await;
    std::fs::write(
        guard.repo.path().join("gatehouse.yml"),
        format!(
            "{SETTINGS}bots:\n  - {{ github: {}, id: {} }}\n",
            BOT.0, BOT.1
        ),
    )
    .unwrap();
    std::fs::write(
        guard.repo.path().join("resources/gpu.yml"),
        format!("{GPU}bots: trusted\n"),
    )
    .unwrap();
    let (status, doc) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    guard.set_role(BOT, Some("write")).await;
    // The re-render bot pushes to the repository's default branch (`master` in GitHub's
    // example payload, whose `repository.default_branch` says so): it runs.
    let push = |run_id: i64, branch: &str| {
        let mut v = run_by(run_id, 1, BOT, BOT);
        v["workflow_run"]["head_branch"] = json!(branch);
        v
    };
    assert_eq!(guard.run_job(&push(1500, "master"), 15000).await, "allow");
    // To another branch: a bot is no maintainer.
    assert_eq!(
        guard.run_job(&push(1501, "rerender"), 15010).await,
        "deny (user-not-allowed): run cancelled"
    );
    // A run the guard fetched from GitHub (its event missed) knows the default branch too.
    {
        let mut s = guard.fake.state.lock().unwrap();
        let mut run = push(1502, "master")["workflow_run"].clone();
        run["repository"]["default_branch"] = json!("master");
        s.runs.insert((1502, 1), run);
    }
    let (_, m) = guard
        .deliver("workflow_job", "job-15020", &queued_attempt(1502, 1, 15020))
        .await;
    assert_eq!(m, "allow");
}

async fn an_approval_past_its_hours_admits_nothing_and_the_phrase_is_the_settings(
    backend: Backend,
) {
    let guard = with_fork_pull(backend).await;
    // An approval of the head commit given two days ago, in force for a day.
    let store = Store::connect(&guard.db.url).await.unwrap();
    let now = jiff::Timestamp::now();
    let at = |hours: i64| {
        (now - jiff::SignedDuration::from_hours(hours))
            .strftime("%Y-%m-%dT%H:%M:%S%.9fZ")
            .to_string()
    };
    store
        .commit(vec![Write::RunApproval(
            gatehouse_server::store::RunApprovalRecord {
                source: "comment:1".into(),
                repository: REPO.into(),
                pull_number: PULL as i64,
                head_sha: HEAD.into(),
                head_repository: FORK.into(),
                resources: String::new(),
                approver_login: MAINTAINER.0.into(),
                approver_id: MAINTAINER.1,
                approved_at: at(48),
                expires_at: at(24),
                runs: 3,
            },
        )])
        .await
        .unwrap();
    let m = guard
        .run_job(&fork_run(1600, 1, HEAD, OUTSIDER), 16000)
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled", "expired");

    // The phrase is gatehouse.yml's: the default one no longer approves anything.
    std::fs::write(
        guard.repo.path().join("gatehouse.yml"),
        format!("{SETTINGS}run_approvals: {{ phrase: \"@gatehouse ok\", runs: 1, hours: 2 }}\n"),
    )
    .unwrap();
    let (status, doc) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "p-1",
            &comment(
                901,
                "created",
                &format!("/gatehouse run {}", &HEAD[..12]),
                MAINTAINER,
            ),
        )
        .await;
    assert_eq!(m, "not a run approval");
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "p-2",
            &comment(
                902,
                "created",
                &format!("@gatehouse ok {}", &HEAD[..12]),
                MAINTAINER,
            ),
        )
        .await;
    assert!(m.contains("1 denied run(s) re-run"), "{m}");
    assert_eq!(
        guard.run_job(&fork_run(1600, 2, HEAD, APP), 16001).await,
        "allow"
    );
    // `runs: 1`: one further run, not two.
    assert_eq!(
        guard
            .run_job(&fork_run(1601, 1, HEAD, OUTSIDER), 16010)
            .await,
        "allow"
    );
    assert_eq!(
        guard
            .run_job(&fork_run(1602, 1, HEAD, OUTSIDER), 16020)
            .await,
        "deny (user-not-allowed): run cancelled"
    );
    let (_, doc) = guard.get("/api/v1/run-approvals").await;
    let expires = doc["run_approvals"][0]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = doc["run_approvals"][0]["approved_at"]
        .as_str()
        .unwrap()
        .to_string();
    let hours = expires
        .parse::<jiff::Timestamp>()
        .unwrap()
        .duration_since(approved.parse::<jiff::Timestamp>().unwrap());
    assert_eq!(hours.as_secs(), 2 * 3600);
}

/// Out of order: the maintainer approves the head commit before any run of it was decided.
async fn an_approval_that_arrives_before_the_run_admits_it_without_a_rerun(backend: Backend) {
    let guard = with_fork_pull(backend).await;
    let (_, m) = guard
        .deliver(
            "issue_comment",
            "early",
            &comment(
                1001,
                "created",
                &format!("/gatehouse run {}", &HEAD[..12]),
                MAINTAINER,
            ),
        )
        .await;
    assert!(
        m.contains("recorded") && !m.contains("re-run"),
        "nothing to re-run yet: {m}"
    );
    assert_eq!(
        guard
            .run_job(&fork_run(1700, 1, HEAD, OUTSIDER), 17000)
            .await,
        "allow"
    );
    assert!(guard.reruns().is_empty());
}
