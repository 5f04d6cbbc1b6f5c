//! The alerts of sponsor credit pools, claimed in the database before any GitHub call: the
//! pool `cloud` gives 12.00 USD for `paid` (0.50 USD a minute) and alerts at 80% and 100% (the
//! defaults), in one issue of the access repository (`issues/create`, then `issues/update`).
//! Each job here only completes (it ran for some minutes), which charges the pool.

use super::*;

/// Where the alerts are said.
const ACCESS: &str = "octo-org/access";
/// `issues/create` for [`ACCESS`], as the fake logs it.
const CREATE: &str = "POST /repos/octo-org/access/issues";

/// The pool with the default alert thresholds (80% and 100%).
fn default_alerts(world: &World) {
    std::fs::write(
        world.dir.path().join("access/pools/cloud.yml"),
        "sponsor: Example Cloud\namount: 12\ncurrency: USD\nstart: 2026-01-01\n\
         end: 2099-12-31\nresources: [paid]\n",
    )
    .unwrap();
}

/// A guard that looks at the pools every 50 ms (`every` given: as often as that).
async fn alerting(world: &World, every: Duration) -> Guard {
    world.guard_with(|c| c.pool_alerts_every = every).await
}

impl Guard {
    /// Run `run` on `paid` completes after `minutes`: the pool pays 0.50 USD a minute.
    async fn spend(&self, run: i64, minutes: i64) {
        let job = TestJob::new(REPO, run, "paid");
        self.announce(&job).await;
        self.job_event_since(&job, "completed", jiff::SignedDuration::from_mins(minutes))
            .await;
    }
}

fn issues(world: &World) -> Vec<Value> {
    world.fake.issues_in(ACCESS)
}

fn title(world: &World) -> String {
    issues(world)
        .first()
        .and_then(|i| i["title"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// (issues opened, issues edited) in the access repository, as GitHub was asked.
fn calls(world: &World) -> (usize, usize) {
    (
        world.fake.gate.count_exact(CREATE),
        world
            .fake
            .gate
            .count_exact("PATCH /repos/octo-org/access/issues/1"),
    )
}

/// Two replicas behind a load balancer share one PostgreSQL and both look at the pools often.
/// Spending crosses 80%: one issue is opened between them; it crosses 100%: that issue is
/// edited, no second one opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_open_a_pools_issue_once_and_edit_it() {
    let world = World::new(Backend::Postgres).await;
    default_alerts(&world);
    let one = alerting(&world, Duration::from_millis(20)).await;
    let two = alerting(&world, Duration::from_millis(20)).await;
    // 5.00 then 10.00 of 12.00 USD: 83%.
    one.spend(7201, 10).await;
    two.spend(7202, 10).await;
    until("the 80% alert opens an issue", || issues(&world).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&world), (1, 0), "{:?}", world.fake.gate.calls());
    assert!(title(&world).contains("80%"), "{}", title(&world));
    // 12.00 USD: 100%.
    one.spend(7203, 4).await;
    until("the 100% alert edits the issue", || {
        title(&world).contains("100%")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(issues(&world).len(), 1);
    assert_eq!(calls(&world), (1, 1), "{:?}", world.fake.gate.calls());
}

/// The 100% alert comes while the call that opens the pool's issue for 80% is still in flight
/// on the other replica (GitHub takes 2 s to answer it): the issue's number is not known yet,
/// so the second alert waits for the first to be done, then edits the issue it opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_waits_for_the_issue_another_alert_is_opening() {
    let world = World::new(Backend::Postgres).await;
    default_alerts(&world);
    world.fake.gate.delay(CREATE, Duration::from_secs(2));
    let one = alerting(&world, Duration::from_millis(20)).await;
    let two = alerting(&world, Duration::from_millis(20)).await;
    one.spend(7301, 20).await;
    until("a replica asks GitHub to open the issue", || {
        calls(&world).0 == 1
    })
    .await;
    // The replica that did waits for GitHub's answer; the other sees 100% now.
    two.spend(7302, 4).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !title(&world).contains("100%") {
        assert!(
            std::time::Instant::now() < deadline,
            "the 100% alert: {:?}",
            world.fake.gate.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(issues(&world).len(), 1, "{:#?}", issues(&world));
    assert_eq!(calls(&world), (1, 1), "{:?}", world.fake.gate.calls());
}

/// Spending crosses both thresholds at once: one issue, which says 100%; the 80% alert is never
/// said after it.
pub(super) async fn a_pool_that_crosses_both_thresholds_at_once_gets_one_issue(backend: Backend) {
    let world = World::new(backend).await;
    default_alerts(&world);
    let guard = alerting(&world, Duration::from_millis(20)).await;
    guard.spend(7401, 24).await;
    until("the 100% alert opens an issue", || {
        issues(&world).len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(title(&world).contains("100%"), "{}", title(&world));
    assert_eq!(calls(&world), (1, 0), "{:?}", world.fake.gate.calls());
}

/// GitHub fails the call that opens the issue (500): the alert is not lost, the next look opens
/// the issue, once; the next threshold edits it.
pub(super) async fn a_failed_issue_call_is_tried_again_once(backend: Backend) {
    let world = World::new(backend).await;
    default_alerts(&world);
    world.fake.gate.fail(CREATE, &[500]);
    let guard = alerting(&world, Duration::from_millis(20)).await;
    guard.spend(7501, 20).await;
    until("the issue is opened after GitHub failed once", || {
        issues(&world).len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&world), (2, 0), "{:?}", world.fake.gate.calls());
    assert_eq!(issues(&world).len(), 1);
    // One alert acted on: the failed try is not counted.
    let (_, metrics) = guard.page("/metrics").await;
    assert!(
        metrics.contains("gatehouse_pool_alerts_total 1\n"),
        "{metrics}"
    );
    guard.spend(7502, 4).await;
    until("the 100% alert edits the issue", || {
        title(&world).contains("100%")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&world), (2, 1), "{:?}", world.fake.gate.calls());
}

/// The alerts live in the database. A guard that never looks at the pools sees spending cross
/// 80%, and stops; a replica had claimed that alert and died before its call to GitHub. The
/// restarted guard acts on the alert once that claim's lease ends: one issue.
pub(super) async fn a_restarted_guard_resumes_the_alerts(backend: Backend) {
    let world = World::new(backend).await;
    default_alerts(&world);
    {
        let first = alerting(&world, Duration::from_secs(3600)).await;
        first.spend(7601, 20).await;
    }
    let store = Store::connect(&world.db.url).await.unwrap();
    let now = jiff::Timestamp::now();
    let text = gatehouse_server::store::time_text;
    let claimed = store
        .commit(vec![Write::Credit(
            gatehouse_server::store::CreditWrite::ClaimAlert {
                pool: "cloud".into(),
                threshold: 80,
                at: text(now),
                lease: text(now + jiff::SignedDuration::from_secs(3)),
            },
        )])
        .await
        .unwrap();
    assert_eq!(claimed, [1]);
    assert!(issues(&world).is_empty());
    let _second = alerting(&world, Duration::from_millis(20)).await;
    // Not while the dead replica's claim holds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&world), (0, 0), "{:?}", world.fake.gate.calls());
    until("the restarted guard opens the issue", || {
        issues(&world).len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&world), (1, 0), "{:?}", world.fake.gate.calls());
    assert!(title(&world).contains("80%"), "{}", title(&world));
}

/// A replica opened the pool's issue at 80% and stopped before it recorded the issue's number
/// (or GitHub's answer to it was lost): at 100% the guard finds the open issue under the pool's
/// title (`issues/list-for-repo`) and edits it, rather than opening a second one.
pub(super) async fn an_issue_opened_but_not_recorded_is_edited_not_opened_again(backend: Backend) {
    let world = World::new(backend).await;
    default_alerts(&world);
    // An unrelated open issue first, then the one the stopped replica opened.
    for title in [
        "Please grant GPUs to example",
        "gatehouse: sponsor pool `cloud` has used 80% of its credit",
    ] {
        let resp = reqwest::Client::new()
            .post(format!("{}/repos/octo-org/access/issues", world.github))
            .bearer_auth(GITHUB_TOKEN)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "gatehouse/test")
            .json(&json!({ "title": title, "body": "" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    {
        let first = alerting(&world, Duration::from_secs(3600)).await;
        first.spend(7701, 20).await;
    }
    // The 80% alert is acted on by the restarted guard: the issue is found, and edited.
    let guard = alerting(&world, Duration::from_millis(20)).await;
    until("the 80% alert edits the issue found", || {
        world
            .fake
            .gate
            .count_exact("PATCH /repos/octo-org/access/issues/2")
            == 1
    })
    .await;
    guard.spend(7702, 4).await;
    until("the 100% alert edits it again", || {
        issues(&world)[1]["title"]
            .as_str()
            .is_some_and(|t| t.contains("100%"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(issues(&world).len(), 2, "{:#?}", issues(&world));
    assert_eq!(
        world.fake.gate.count_exact(CREATE),
        2,
        "only the test's own"
    );
    assert_eq!(
        world
            .fake
            .gate
            .count_exact("PATCH /repos/octo-org/access/issues/2"),
        2
    );
    assert_eq!(issues(&world)[0]["title"], "Please grant GPUs to example");
}
