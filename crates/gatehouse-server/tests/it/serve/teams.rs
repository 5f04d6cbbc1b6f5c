//! Grants that name GitHub teams (Cirun's `teams`), end to end: a member of the team who is
//! not listed by name runs, someone in no team is refused `not-listed` with a message naming
//! the team, a member removed from the team (GitHub's signed `membership` `removed` webhook)
//! is refused from then on, and a team whose members GitHub will not give refuses its members
//! `facts-unavailable` while people listed by name still run. The team's members come from the
//! fake GitHub's `teams/list-members-in-org`.

use super::*;

/// The team the grant names (written as the ledger spells it; GitHub's slug is lower-case).
const TEAM: &str = "gpu-users";
/// In the team, not listed by name, with a role that may use the resource.
const TEAMMATE: (&str, i64) = ("a-teammate", 7_000_003);
/// Listed by name, in no team.
const LISTED: (&str, i64) = ("listed-by-name", 7_000_004);
/// A role that may use the resource, listed nowhere, in no team.
const STRANGER: (&str, i64) = ("not-in-the-team", 7_000_005);

/// A guard whose grant lets in [`LISTED`] by name and the members of [`TEAM`], with
/// [`TEAMMATE`] in the team on GitHub; returns once the team's members are held.
async fn with_team_grant(backend: Backend, facts_deadline: Duration) -> Guard {
    let guard = Guard::with(
        backend,
        Options {
            facts_deadline,
            ..Options::default()
        },
    )
    .await;
    // Each may use the resource by role (GitHub says so as it does: a `member` webhook).
    for who in [TEAMMATE, LISTED, STRANGER] {
        guard.set_role(who, Some("write")).await;
    }
    {
        let mut s = guard.fake.state.lock().unwrap();
        for who in [TEAMMATE, LISTED, STRANGER] {
            s.accounts.insert(who.0.into(), who.1);
        }
        s.teams.insert(TEAM.into(), vec![TEAMMATE.0.into()]);
    }
    std::fs::write(
        guard.repo.path().join("grants/example.yml"),
        format!(
            "project: example
grants:
  - resource: gpu
    pull_request: true
    granted: 2026-01-01
    users: {{ users: [{{ github: {}, id: {} }}], teams: [GPU-Users] }}
",
            LISTED.0, LISTED.1
        ),
    )
    .unwrap();
    let (status, answer) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    health_until(&guard, |h| h["team_facts"]["fresh"] == 1).await;
    guard
}

/// A run started by `who` and its queued job; the delivery's answer.
async fn job_by(guard: &Guard, who: (&str, i64), run_id: i64, job_id: i64) -> (StatusCode, String) {
    guard
        .deliver(
            "workflow_run",
            &format!("run-{run_id}"),
            &run_by(run_id, 1, who, who),
        )
        .await;
    guard
        .deliver(
            "workflow_job",
            &format!("job-{job_id}"),
            &queued_attempt(run_id, 1, job_id),
        )
        .await
}

/// The recorded decision of job `job_id`, once there is one.
async fn decision_of(guard: &Guard, job_id: i64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = guard.decisions("").await;
        if let Some(d) = found.iter().find(|d| d["job_id"] == job_id) {
            return d.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job_id} never decided: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `membership` `removed` (GitHub's example payload, adapted): `who` left [`TEAM`].
fn left_the_team(who: (&str, i64)) -> Value {
    let mut e = fixture("membership.removed.json");
    e["member"]["login"] = json!(who.0);
    e["member"]["id"] = json!(who.1);
    e["team"]["slug"] = json!(TEAM);
    e["team"]["name"] = json!(TEAM);
    e["organization"]["login"] = json!("octo-org");
    e
}

on_both!(
    a_team_member_runs_until_removed_from_the_team,
    a_team_github_will_not_list_refuses_its_members,
    a_team_change_seen_by_one_replica_is_seen_by_all,
);

pub(super) async fn a_team_member_runs_until_removed_from_the_team(backend: Backend) {
    let guard = with_team_grant(backend, Duration::from_secs(60)).await;
    // In the team, not listed by name: let in, as Cirun lets team members in.
    let (_, m) = job_by(&guard, TEAMMATE, 900, 9000).await;
    assert_eq!(m, "allow");
    // Listed by name: let in, whatever the teams say.
    let (_, m) = job_by(&guard, LISTED, 901, 9010).await;
    assert_eq!(m, "allow");
    // In no team and not listed: refused, and told which teams would let them in.
    let (_, m) = job_by(&guard, STRANGER, 902, 9020).await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    let denied = decision_of(&guard, 9020).await;
    let message = denied["message"].as_str().unwrap();
    assert!(
        message.contains("is in none of the teams it names (`octo-org/GPU-Users`)"),
        "{message}"
    );
    // The team's members were read once, ahead of the jobs, not per person.
    assert_eq!(
        guard
            .fake
            .gate
            .count_containing(&format!("/orgs/octo-org/teams/{TEAM}/members")),
        1
    );

    // The teammate leaves the team; GitHub says so with a signed `membership` delivery.
    guard
        .fake
        .state
        .lock()
        .unwrap()
        .teams
        .insert(TEAM.into(), vec![]);
    let (status, m) = guard
        .deliver("membership", "membership-1", &left_the_team(TEAMMATE))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert!(
        m.contains(&format!("members of team {TEAM} made stale")),
        "{m}"
    );
    // Their next job is refused: the list is read again before anyone is judged on it.
    let (_, m) = job_by(&guard, TEAMMATE, 903, 9030).await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    let denied = decision_of(&guard, 9030).await;
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("is in none of the teams it names"),
        "{denied}"
    );
    assert_eq!(
        guard
            .fake
            .gate
            .count_containing(&format!("/orgs/octo-org/teams/{TEAM}/members")),
        2
    );
    assert!(
        guard
            .decisions("?outcome=allow")
            .await
            .iter()
            .all(|d| d["job_id"] != 9030)
    );
}

async fn a_team_github_will_not_list_refuses_its_members(backend: Backend) {
    let guard = with_team_grant(backend, Duration::from_secs(5)).await;
    // GitHub fails every request for the team's members from now on, and a webhook says the
    // members changed: the list held is stale and cannot be read again.
    guard.fake.gate.fail("GET /orgs/*/members*", &[500; 1000]);
    let (status, m) = guard
        .deliver("membership", "membership-1", &left_the_team(STRANGER))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    // Someone listed by name needs no team: let in at once.
    let (_, m) = job_by(&guard, LISTED, 910, 9100).await;
    assert_eq!(m, "allow");
    // The teammate waits for the team's members, then is refused, never let in.
    let started = std::time::Instant::now();
    let (status, m) = job_by(&guard, TEAMMATE, 911, 9110).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{m}");
    assert!(
        m.contains(&format!("waiting for the members of the teams {TEAM}")),
        "{m}"
    );
    let denied = decision_of(&guard, 9110).await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(denied["outcome"], "deny", "{denied}");
    assert_eq!(denied["rule"], "facts-unavailable", "{denied}");
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("team membership could not be checked"),
        "{denied}"
    );
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("POST /repos/{REPO}/actions/runs/911/cancel")),
        1
    );
    let health = health_until(&guard, |h| h["pending"]["count"] == 0).await;
    assert!(
        health["team_facts"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(TEAM)),
        "{health}"
    );
    let page = guard.metrics().await;
    assert_eq!(
        sample(&page, r#"gatehouse_facts_unavailable_total{fact="teams"}"#),
        Some(1.0),
        "{page}"
    );
}

async fn a_team_change_seen_by_one_replica_is_seen_by_all(backend: Backend) {
    let mut a = with_team_grant(backend, Duration::from_secs(60)).await;
    // Replica B: the same access repository, database and GitHub.
    let mut b = Guard::start(backend).await;
    b.halt().await;
    b.config = a.config.clone();
    b.fake = a.fake.clone();
    b.launch().await;
    health_until(&b, |h| h["team_facts"]["fresh"] == 1).await;
    let (_, m) = job_by(&b, TEAMMATE, 920, 9200).await;
    assert_eq!(m, "allow");
    // The teammate leaves the team; GitHub tells replica A only.
    a.fake
        .state
        .lock()
        .unwrap()
        .teams
        .insert(TEAM.into(), vec![]);
    let (status, m) = a
        .deliver("membership", "membership-1", &left_the_team(TEAMMATE))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    // Replica B reads what A stored within a second, and judges the next job by it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, m) = job_by(&b, TEAMMATE, 921, 9210).await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    a.halt().await;
    b.halt().await;
}
