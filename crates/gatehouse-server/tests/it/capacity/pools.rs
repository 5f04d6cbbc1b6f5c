//! Sponsor credit pools end to end: `paid` costs 0.50 USD a minute and its jobs may run 10
//! minutes, so each job reserves 5.00 USD when it starts; the pool `cloud` gives 12.00 USD for
//! it (alerts at 50% and 100%).

use super::*;

/// Jobs reserve their expected cost when they start and pay their real cost when they end. A
/// queued job that the pool cannot cover any more is refused before it takes a machine; of two
/// jobs allowed while there was room for one, the second to start has its run cancelled. The
/// pool's pages and API show what was spent, by whom, and what running jobs hold; at 50% the
/// guard opens one issue in the access repository, at 100% it edits the same one. Every call
/// the guard makes for it follows GitHub's published description.
pub(super) async fn a_sponsor_pool_pays_for_jobs_until_it_is_used_up(backend: Backend) {
    let world = World::new(backend).await;
    let proxy = recorder::Recorder::start(&world.github);
    let guard = world
        .guard_with(|c| {
            c.github_api = proxy.base.clone();
            c.pool_alerts_every = Duration::from_millis(100);
        })
        .await;
    let job = |run| TestJob::new(REPO, run, "paid");
    let (first, second) = (job(7001), job(7002));
    for j in [&first, &second] {
        guard.announce(j).await;
        assert_eq!(guard.job_event(j, "queued").await, "allow");
        assert_eq!(guard.job_event(j, "in_progress").await, "job in progress");
    }
    // 10.00 USD held: a third job cannot be covered and is refused while queued.
    let third = job(7003);
    guard.announce(&third).await;
    assert_eq!(
        guard.job_event(&third, "queued").await,
        "deny (budget-exhausted): run cancelled"
    );
    // The first ends after 2 minutes: it pays 1.00 USD and gives back what it held.
    guard
        .job_event_since(&first, "completed", jiff::SignedDuration::from_mins(2))
        .await;
    // 1.00 spent and 5.00 held leave room for one job: both queued ones are allowed, the
    // second to start has its run cancelled.
    let (fourth, fifth) = (job(7004), job(7005));
    for j in [&fourth, &fifth] {
        guard.announce(j).await;
        assert_eq!(guard.job_event(j, "queued").await, "allow");
    }
    assert_eq!(
        guard.job_event(&fourth, "in_progress").await,
        "job in progress"
    );
    assert_eq!(
        guard.job_event(&fifth, "in_progress").await,
        "deny (budget-exhausted): run cancelled"
    );
    assert_eq!(cancelled(&world.fake), [third.run_id, fifth.run_id]);
    let recorded = guard.decisions().await;
    let denials: Vec<&Value> = recorded
        .iter()
        .filter(|d| d["rule"] == "budget-exhausted")
        .collect();
    assert_eq!(denials.len(), 2, "{recorded:?}");
    for d in &denials {
        let m = d["message"].as_str().unwrap();
        assert!(
            m.contains("`paid` is paid for here by pool `cloud` (Example Cloud: "),
            "{m}"
        );
        assert!(
            m.contains("of 12.00 USD spent or held by running jobs"),
            "{m}"
        );
    }

    let pools = guard.json("/api/v1/pools").await;
    let cloud = &pools["pools"][0];
    assert_eq!(cloud["name"], "cloud");
    assert_eq!(cloud["spent"], "1.00 USD");
    assert_eq!(cloud["reserved"], "10.00 USD");
    assert_eq!(cloud["left"], "1.00 USD");
    assert_eq!(cloud["spent_units"], 1_000_000);
    assert_eq!(cloud["by_project"][0]["project"], "example");
    assert_eq!(cloud["status"], "active");
    assert!(world.fake.issues_in("octo-org/access").is_empty());

    // The second ends after 10 minutes: 6.00 of 12.00 spent, 50%: one issue.
    guard
        .job_event_since(&second, "completed", jiff::SignedDuration::from_mins(10))
        .await;
    until("the 50% alert is raised", || {
        world.fake.issues_in("octo-org/access").len() == 1
    })
    .await;
    // The fourth runs over what it reserved (12 minutes): 12.00 spent, 100%: the same issue.
    guard
        .job_event_since(&fourth, "completed", jiff::SignedDuration::from_mins(12))
        .await;
    until("the 100% alert edits the issue", || {
        world.fake.issues_in("octo-org/access")[0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("100%"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let issues = world.fake.issues_in("octo-org/access");
    assert_eq!(issues.len(), 1, "one issue per pool: {issues:?}");
    let body = issues[0]["body"].as_str().unwrap();
    assert!(body.contains("given by Example Cloud"), "{body}");
    assert!(body.contains("12.00 USD of its 12.00 USD"), "{body}");
    assert!(body.contains("now refused (`budget-exhausted`)"), "{body}");
    assert_eq!(
        world
            .fake
            .gate
            .count_exact("POST /repos/octo-org/access/issues"),
        1
    );

    // Used up: nothing more runs on it.
    let sixth = job(7006);
    guard.announce(&sixth).await;
    assert_eq!(
        guard.job_event(&sixth, "queued").await,
        "deny (budget-exhausted): run cancelled"
    );
    let (status, html) = guard.page("/pools").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Example Cloud") && html.contains("<mark>used up</mark>"),
        "{html}"
    );
    let (status, html) = guard.page("/pools/cloud").await;
    assert_eq!(status, 200);
    assert!(html.contains("<svg class=\"chart burn-down\""), "{html}");
    assert!(html.contains("12.00 USD"), "{html}");
    assert_eq!(guard.page("/pools/nothing").await.0, 404);
    let (_, metrics) = guard.page("/metrics").await;
    assert!(
        metrics.contains("gatehouse_pool_alerts_total 2"),
        "{metrics}"
    );

    schema::assert_follows_rest(
        &proxy.exchanges(),
        &[
            "issues/list-for-repo",
            "issues/create",
            "issues/update",
            "actions/cancel-workflow-run",
        ],
    );
}

/// On a gated resource the gate's admission reserves a job's expected cost before its first
/// step: two admitted jobs hold 10.00 of the 12.00 USD, so a third fails alone on its runner
/// (`budget-exhausted`) without anyone's run being cancelled. When an admitted job then goes in
/// progress, the webhook path finds its reservation and takes no second one; once it has paid
/// its real cost, the next admission has room again.
pub(super) async fn the_gate_reserves_credit_before_a_job_starts(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let job = |run| TestJob::new(REPO, run, "paid");
    let (first, second, third) = (job(7101), job(7102), job(7103));
    for j in [&first, &second, &third] {
        guard.announce(j).await;
    }
    for j in [&first, &second] {
        let (outcome, answer) = guard.admit(j, 0).await;
        assert_eq!(outcome, "allow", "{answer}");
    }
    let held = |v: &Value| v["pools"][0]["reserved"].clone();
    assert_eq!(held(&guard.json("/api/v1/pools").await), "10.00 USD");

    let (outcome, answer) = guard.admit(&third, 0).await;
    assert_eq!(outcome, "deny", "{answer}");
    assert_eq!(answer["rule"], "budget-exhausted");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("`paid` is paid for here by pool `cloud` (Example Cloud: 10.00 USD of 12.00 USD spent or held by running jobs)"),
        "{message}"
    );
    assert!(
        guard
            .decisions()
            .await
            .iter()
            .any(|d| d["rule"] == "budget-exhausted"
                && d["run_id"] == third.run_id
                && d["origin"] == "gate"),
        "the gate's denial is recorded"
    );

    // The admitted job starts: the webhook path finds what its gate reserved.
    assert_eq!(
        guard.job_event(&first, "in_progress").await,
        "job in progress"
    );
    assert_eq!(held(&guard.json("/api/v1/pools").await), "10.00 USD");
    // It ends after 2 minutes: 1.00 USD paid, 5.00 held by the second; room for one more.
    guard
        .job_event_since(&first, "completed", jiff::SignedDuration::from_mins(2))
        .await;
    let pools = guard.json("/api/v1/pools").await;
    assert_eq!(pools["pools"][0]["spent"], "1.00 USD");
    assert_eq!(held(&pools), "5.00 USD");
    let (outcome, answer) = guard.admit(&third, 1).await;
    assert_eq!(outcome, "allow", "{answer}");
    assert!(
        cancelled(&world.fake).is_empty(),
        "the gate refuses per job"
    );
}

/// GitHub does not promise the order of its deliveries: a job's `in_progress` event that comes
/// after its completion (redelivered, or the two sent together) reserves nothing, since
/// nothing would end the reservation and the pool would look spent for five days.
pub(super) async fn a_job_that_starts_after_it_ended_holds_no_credit(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let job = TestJob::new(REPO, 7101, "paid");
    guard.announce(&job).await;
    assert_eq!(guard.job_event(&job, "queued").await, "allow");
    guard
        .job_event_since(&job, "completed", jiff::SignedDuration::from_mins(2))
        .await;
    assert_eq!(
        guard.job_event(&job, "in_progress").await,
        "job in progress"
    );
    let pools = guard.json("/api/v1/pools").await;
    let cloud = &pools["pools"][0];
    assert_eq!(cloud["spent_units"], 1_000_000, "{cloud}");
    assert_eq!(cloud["reserved_units"], 0, "{cloud}");
    // So two more jobs fit in what is left (11.00 USD, 5.00 each).
    for run in [7102, 7103] {
        let next = TestJob::new(REPO, run, "paid");
        guard.announce(&next).await;
        assert_eq!(guard.job_event(&next, "queued").await, "allow");
        assert_eq!(
            guard.job_event(&next, "in_progress").await,
            "job in progress"
        );
    }
}

/// Adds `resource` (its file's `text`) to the access repository, granted to `example`, and the
/// pool `pool` (its file's `text`).
fn add_funded(world: &World, resource: &str, text: &str, pool: &str, terms: &str) {
    let access = world.dir.path().join("access");
    std::fs::write(access.join(format!("resources/{resource}.yml")), text).unwrap();
    std::fs::write(access.join(format!("pools/{pool}.yml")), terms).unwrap();
    let grants = access.join("grants/example.yml");
    let mut all = std::fs::read_to_string(&grants).unwrap();
    all.push_str(&format!(
        "  - resource: {resource}\n    granted: 2026-01-01\n"
    ));
    std::fs::write(grants, all).unwrap();
}

/// The pool `name` as `/api/v1/pools` shows it.
async fn pool_row(guard: &Guard, name: &str) -> Value {
    let pools = guard.json("/api/v1/pools").await;
    pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no pool {name}: {pools:#}"))
        .clone()
}

/// `plain` states no `max_job_minutes`: a job of it is expected to run as long as the median
/// of its completed jobs (1, 2 and 6 minutes: 2), at 1.00 USD a minute. Of the pool's 20.00
/// USD, 9.00 were spent: five running jobs hold 2.00 each, the sixth has its run cancelled.
pub(super) async fn a_pool_expects_the_median_job_of_a_resource_without_a_time_limit(
    backend: Backend,
) {
    let world = World::new(backend).await;
    add_funded(
        &world,
        "plain",
        "name: plain\nprovider: cirun\nlabels: [plain-large]\n\
         cost: { per_minute: 1, currency: USD }\nquota: { concurrency: 100 }\n",
        "lab",
        "sponsor: Median Lab\namount: 20\ncurrency: USD\nstart: 2026-01-01\n\
         end: 2099-12-31\nresources: [plain]\n",
    );
    let guard = world.guard().await;
    for (run, minutes) in [(7801, 1), (7802, 6), (7803, 2)] {
        let job = TestJob::new(REPO, run, "plain");
        guard.announce(&job).await;
        guard
            .job_event_since(&job, "completed", jiff::SignedDuration::from_mins(minutes))
            .await;
    }
    assert_eq!(pool_row(&guard, "lab").await["spent"], "9.00 USD");
    let jobs: Vec<TestJob> = (7811..=7816)
        .map(|run| TestJob::new(REPO, run, "plain"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    for job in &jobs[..5] {
        assert_eq!(guard.job_event(job, "in_progress").await, "job in progress");
    }
    assert_eq!(
        guard.job_event(&jobs[5], "in_progress").await,
        "deny (budget-exhausted): run cancelled"
    );
    assert_eq!(cancelled(&world.fake), [jobs[5].run_id]);
    let lab = pool_row(&guard, "lab").await;
    assert_eq!(
        (&lab["spent"], &lab["reserved"]),
        (&json!("9.00 USD"), &json!("10.00 USD")),
        "{lab}"
    );
}

/// A pool may give minutes rather than money: `lab` gives 25 minutes of `bench`, whose jobs
/// may run 10 minutes (so each holds 10 while it runs); `bench` states no price. Two jobs run,
/// a third has its run cancelled with the pool's minutes in the message; one ends after 3
/// minutes, which it pays, and the next job fits.
pub(super) async fn a_pool_of_minutes_pays_for_jobs_until_it_is_used_up(backend: Backend) {
    let world = World::new(backend).await;
    add_funded(
        &world,
        "bench",
        "name: bench\nprovider: cirun\nlabels: [bench-large]\nmax_job_minutes: 10\n\
         quota: { concurrency: 100 }\n",
        "lab",
        "sponsor: Lab\nminutes: 25\nstart: 2026-01-01\nend: 2099-12-31\nresources: [bench]\n",
    );
    let guard = world.guard().await;
    let jobs: Vec<TestJob> = (7901..=7904)
        .map(|run| TestJob::new(REPO, run, "bench"))
        .collect();
    for job in &jobs[..3] {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    for job in &jobs[..2] {
        assert_eq!(guard.job_event(job, "in_progress").await, "job in progress");
    }
    assert_eq!(
        guard.job_event(&jobs[2], "in_progress").await,
        "deny (budget-exhausted): run cancelled"
    );
    let recorded = guard.decisions().await;
    let denial = recorded
        .iter()
        .find(|d| d["rule"] == "budget-exhausted")
        .expect("the denial is recorded");
    let message = denial["message"].as_str().unwrap();
    assert!(
        message
            .contains("pool `lab` (Lab: 20 minutes of 25 minutes spent or held by running jobs)"),
        "{message}"
    );
    let lab = pool_row(&guard, "lab").await;
    assert_eq!(
        (&lab["reserved"], &lab["left"]),
        (&json!("20 minutes"), &json!("5 minutes")),
        "{lab}"
    );

    guard
        .job_event_since(&jobs[0], "completed", jiff::SignedDuration::from_mins(3))
        .await;
    let lab = pool_row(&guard, "lab").await;
    assert_eq!(
        (&lab["spent"], &lab["reserved"]),
        (&json!("3 minutes"), &json!("10 minutes")),
        "{lab}"
    );
    guard.announce(&jobs[3]).await;
    assert_eq!(guard.job_event(&jobs[3], "queued").await, "allow");
    assert_eq!(
        guard.job_event(&jobs[3], "in_progress").await,
        "job in progress"
    );
    assert_eq!(cancelled(&world.fake), [jobs[2].run_id]);
}

/// Two replicas behind a load balancer, one PostgreSQL: ten jobs the pool allowed while queued
/// go in progress at once, alternating between the replicas. The pool covers two (12.00 USD,
/// 5.00 each): exactly two hold a reservation, the other eight have their runs cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_reserve_more_than_a_pool_holds() {
    let world = World::new(Backend::Postgres).await;
    let one = Arc::new(world.guard().await);
    let two = Arc::new(world.guard().await);
    let jobs: Vec<TestJob> = (7101..7111)
        .map(|run| TestJob::new(REPO, run, "paid"))
        .collect();
    let said = start_all(&[one.clone(), two.clone()], &jobs).await;
    let running = said.iter().filter(|s| *s == "job in progress").count();
    let refused = said
        .iter()
        .filter(|s| *s == "deny (budget-exhausted): run cancelled")
        .count();
    assert_eq!((running, refused), (2, 8), "{said:?}");
    assert_eq!(cancelled(&world.fake).len(), 8);
    let pools = one.json("/api/v1/pools").await;
    assert_eq!(pools["pools"][0]["reserved"], "10.00 USD", "{pools}");
}

/// A job's start and its end often arrive together (GitHub sends them on separate
/// connections). On a capped resource that a pool funds, each start claims a machine and credit
/// and each end frees them, in the commit that stores the delivery. Two dozen such pairs at
/// once are all answered (on PostgreSQL a commit takes all its locks before it writes a row, so
/// a start and an end of the same job never wait for each other), and afterwards nothing is
/// held and every job paid its minute once.
pub(super) async fn starts_and_ends_that_arrive_together_all_go_through(backend: Backend) {
    let world = World::new(backend).await;
    add_funded(
        &world,
        "busy",
        "name: busy\nprovider: cirun\nlabels: [busy-large]\nmax_job_minutes: 10\n\
         cost: { per_minute: 1, currency: USD }\nquota: { concurrency: 100 }\n",
        "big",
        "sponsor: Big Lab\namount: 100000\ncurrency: USD\nstart: 2026-01-01\n\
         end: 2099-12-31\nresources: [busy]\n",
    );
    let guard = Arc::new(world.guard().await);
    let jobs: Vec<TestJob> = (7901..7925)
        .map(|run| TestJob::new(REPO, run, "busy"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    let events: Vec<_> = jobs
        .iter()
        .flat_map(|job| {
            ["in_progress", "completed"].map(|action| {
                let (guard, job) = (guard.clone(), job.clone());
                tokio::spawn(async move { guard.job_event(&job, action).await })
            })
        })
        .collect();
    for event in events {
        // Each answered 200 (`deliver` asserts it).
        event.await.unwrap();
    }
    let big = pool_row(&guard, "big").await;
    assert_eq!(big["reserved_units"], 0, "{big}");
    assert_eq!(big["spent"], "24.00 USD", "{big}");
    let queue = guard.json("/queue.json").await;
    let busy = queue["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "busy")
        .cloned()
        .unwrap_or_default();
    assert_eq!(busy["running"].as_i64().unwrap_or(0), 0, "{queue:#}");
}
