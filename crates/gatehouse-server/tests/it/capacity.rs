//! Capacity end to end, over loopback: concurrency caps and per-job time limits. The guard
//! runs on a SQLite file and on PostgreSQL, with signed webhook deliveries built from GitHub's
//! own example payloads (`@octokit/webhooks-examples`, in `fixtures/`), admissions as a
//! runner's gate asks them (`POST /api/v1/admission`), and `gatehouse-fake`'s loopback
//! stand-in for the GitHub REST endpoints the guard calls.
//!
//! What is checked for caps: no more jobs hold a machine than a cap allows (the resource's
//! `quota.concurrency`, a project's `quota.project_concurrency`, a provider's
//! `max_concurrency`), also with admissions arriving at once and on two replicas sharing one
//! PostgreSQL; a job over a cap waits, then is denied `concurrency-exhausted`; a finished job
//! frees its slot; on the webhook path, `on_exceed: cancel` cancels the run beyond a cap and
//! `on_exceed: record` only records it.
//!
//! For time limits (`max_job_minutes`): a job in progress past its limit has its run cancelled
//! once, with the reason recorded and left on the commit; a job that ended, or that GitHub
//! reports over, is not cancelled; a restarted guard resumes the timers; two replicas cancel
//! once between them; a failed cancellation is tried again.
//!
//! PostgreSQL is expected at 127.0.0.1:5432 (user `postgres`, database `test`), or wherever
//! `GATEHOUSE_TEST_POSTGRES` points; each test creates its own database and drops it after.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_fake::{FakeGitHub, serve_github};
use gatehouse_server::store::{Store, Write};
use gatehouse_server::{GateConfig, HoldsSweep, Secret, ServerConfig, TimeLimits, serve_on};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "a webhook secret for the caps tests";
/// Every pool's admission token is this with the pool's name after it.
const TOKEN: &str = "a pool token for the caps tests, long enough";
const REPO: &str = "octo-org/example-feedstock";
const OTHER: &str = "octo-org/other-feedstock";
/// Who starts every run: an admin of both repositories.
const ACTOR: (&str, i64) = ("Codertocat", 15669918);
/// The team the grant of `teamed` names; [`ACTOR`] is in it.
const TEAM: &str = "gpu-users";

use crate::db::{Backend, Db};
use crate::{recorder, schema};

mod alerts;
use alerts::{
    a_failed_issue_call_is_tried_again_once,
    a_pool_that_crosses_both_thresholds_at_once_gets_one_issue,
    a_restarted_guard_resumes_the_alerts,
    an_issue_opened_but_not_recorded_is_edited_not_opened_again,
};
mod needs;
use needs::a_delivery_whose_claim_is_refused_is_not_kept;
mod pools;
use pools::{
    a_job_that_starts_after_it_ended_holds_no_credit,
    a_pool_expects_the_median_job_of_a_resource_without_a_time_limit,
    a_pool_of_minutes_pays_for_jobs_until_it_is_used_up,
    a_sponsor_pool_pays_for_jobs_until_it_is_used_up,
    starts_and_ends_that_arrive_together_all_go_through,
    the_gate_reserves_credit_before_a_job_starts,
};

// ---------------------------------------------------------------------------------------------
// GitHub: `gatehouse-fake`'s stand-in (collaborators, cancels, check runs as GitHub's REST
// description gives them), where everyone's cancels are noted.

/// The token the guard calls the stand-in with.
const GITHUB_TOKEN: &str = "a token for the fake GitHub";

/// The runs whose cancellation GitHub was asked for, by id.
fn cancelled(fake: &FakeGitHub) -> Vec<i64> {
    fake.state.lock().unwrap().cancels.keys().copied().collect()
}

// ---------------------------------------------------------------------------------------------
// The access repository

const SETTINGS: &str = "org: octo-org
repo_suffix: \"-feedstock\"
reviewers: { teams: [core] }
guard: { mode: enforce, issues_repository: octo-org/access }
providers:
  cirun: { kind: cirun, access_repo: .cirun }
  shared: { kind: runner-group, group: shared, max_concurrency: 3 }
gate:
  pools:
    gpu-pool: { resource: gpu, concurrency_wait: 2s }
    proj-pool: { resource: proj, concurrency_wait: 2s }
    a-pool: { resource: a, concurrency_wait: 2s }
    b-pool: { resource: b, concurrency_wait: 2s }
    paid-pool: { resource: paid, concurrency_wait: 2s }
    teamed-pool: { resource: teamed }
";

fn write_repo(dir: &Path) {
    let resource = |name: &str, provider: &str, quota: &str| {
        format!(
            "name: {name}\nprovider: {provider}\nlabels: [{name}-large]\nquota: {{ {quota} }}\n"
        )
    };
    let grant = |resource: &str| format!("  - resource: {resource}\n    granted: 2026-01-01\n");
    let files = [
        ("gatehouse.yml", SETTINGS.to_string()),
        // The issue's example: a pool of 4 machines.
        (
            "resources/gpu.yml",
            resource("gpu", "cirun", "concurrency: 4"),
        ),
        (
            "resources/proj.yml",
            resource("proj", "cirun", "concurrency: 4, project_concurrency: 2"),
        ),
        (
            "resources/a.yml",
            resource("a", "shared", "concurrency: 10"),
        ),
        (
            "resources/b.yml",
            resource("b", "shared", "concurrency: 10"),
        ),
        // No gate serves these: the webhook path acts on jobs beyond the cap.
        (
            "resources/cancel.yml",
            resource("cancel", "cirun", "concurrency: 1"),
        ),
        (
            "resources/record.yml",
            resource("record", "cirun", "concurrency: 1, on_exceed: record"),
        ),
        // Also without a gate, for jobs going in progress on two replicas at once.
        (
            "resources/spill.yml",
            resource("spill", "cirun", "concurrency: 3"),
        ),
        // Jobs may run for a minute.
        (
            "resources/timed.yml",
            "name: timed\nprovider: cirun\nlabels: [timed-large]\nmax_job_minutes: 1\n".to_string(),
        ),
        // 0.50 USD a minute, 10 minutes a job at most; a sponsor's 12.00 USD for it.
        (
            "resources/paid.yml",
            "name: paid\nprovider: cirun\nlabels: [paid-large]\nmax_job_minutes: 10\n\
             cost: { per_minute: 0.5, currency: USD }\nquota: { concurrency: 100 }\n"
                .to_string(),
        ),
        (
            "pools/cloud.yml",
            "sponsor: Example Cloud\namount: 12\ncurrency: USD\nstart: 2026-01-01\n\
             end: 2099-12-31\nresources: [paid]\nalerts: [50, 100]\n"
                .to_string(),
        ),
        // Granted to the members of a team (Cirun's `teams`), nobody by name.
        (
            "resources/teamed.yml",
            resource("teamed", "cirun", "concurrency: 10"),
        ),
        (
            "grants/example.yml",
            format!(
                "project: example\ngrants:\n{}  - resource: teamed\n    granted: 2026-01-01\n    users: {{ teams: [{TEAM}] }}\n",
                [
                    "gpu", "proj", "a", "b", "cancel", "record", "spill", "timed", "paid"
                ]
                .map(grant)
                .concat()
            ),
        ),
        (
            "grants/other.yml",
            format!("project: other\ngrants:\n{}", grant("proj")),
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// The roles a collaborator listing would have stored: fetched just now.
async fn store_roles(db: &str) {
    let store = Store::connect(db).await.unwrap();
    let now = jiff::Timestamp::now().to_string();
    let people = json!([{"login": ACTOR.0, "id": ACTOR.1, "role": "admin"}]);
    for repo in [REPO, OTHER] {
        store
            .commit(vec![Write::RoleFacts {
                repository: repo.to_lowercase(),
                people: people.to_string(),
                etag: None,
                fetched_at: now.clone(),
                changed_at: now.clone(),
            }])
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The guard

struct Guard {
    base: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A guard on `repo` and `db`, calling GitHub at `github`, its configuration changed by `tune`.
async fn start_guard(
    repo: &Path,
    db: &str,
    github: &str,
    tune: impl FnOnce(&mut ServerConfig),
) -> Guard {
    let mut config = ServerConfig::new(repo, db.to_string(), Secret::new(SECRET));
    config.github_token = Some(Secret::new(GITHUB_TOKEN));
    config.github_api = github.to_string();
    let pools = [
        "gpu-pool",
        "proj-pool",
        "a-pool",
        "b-pool",
        "paid-pool",
        "teamed-pool",
    ]
    .map(|p| (p.to_string(), Secret::new(format!("{TOKEN}-{p}"))));
    let mut gate = GateConfig::new(pools.to_vec(), None);
    gate.fact_wait = Duration::from_millis(300);
    config.gate = Some(gate);
    tune(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_on(listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Guard {
                base,
                http,
                _stop: stop,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the guard did not start");
}

/// One test's world: the access repository, the database, GitHub's stand-in.
struct World {
    dir: tempfile::TempDir,
    db: Db,
    fake: Arc<FakeGitHub>,
    github: String,
}

impl World {
    async fn new(backend: Backend) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        write_repo(&dir.path().join("access"));
        let db = Db::new(backend).await;
        // The schema first (replicas would race to create it), then the roles.
        store_roles(&db.url).await;
        let (github, fake) = serve_github(FakeGitHub::with_token(GITHUB_TOKEN));
        fake.role(ACTOR, "admin");
        {
            let mut s = fake.state.lock().unwrap();
            s.accounts.insert(ACTOR.0.to_ascii_lowercase(), ACTOR.1);
            s.teams.insert(TEAM.into(), vec![ACTOR.0.into()]);
        }
        World {
            dir,
            db,
            fake,
            github,
        }
    }

    async fn guard(&self) -> Guard {
        self.guard_with(|_| {}).await
    }

    /// A guard whose sweep of claims runs as `sweep` says.
    async fn guard_sweeping(&self, sweep: HoldsSweep) -> Guard {
        self.guard_with(|c| c.holds_sweep = sweep).await
    }

    /// A guard that looks for jobs over their time limit every `every`, and holds a due one
    /// for `lease`.
    async fn guard_timing(&self, every: Duration, lease: Duration) -> Guard {
        self.guard_with(|c| c.time_limits = TimeLimits { every, lease })
            .await
    }

    /// What GitHub's API answers about `job`'s status (`actions/get-job-for-workflow-run`).
    fn github_reports(&self, job: &TestJob, status: &str) {
        self.fake
            .state
            .lock()
            .unwrap()
            .jobs
            .insert(job.job_id(), status.into());
    }

    async fn guard_with(&self, tune: impl FnOnce(&mut ServerConfig)) -> Guard {
        let repo = self.dir.path().join("access");
        start_guard(&repo, &self.db.url, &self.github, tune).await
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A job of this test: its run (one job per run), its runner, where it runs.
#[derive(Clone, Debug)]
struct TestJob {
    repository: &'static str,
    run_id: i64,
    resource: &'static str,
}

impl TestJob {
    fn new(repository: &'static str, run_id: i64, resource: &'static str) -> TestJob {
        TestJob {
            repository,
            run_id,
            resource,
        }
    }

    fn job_id(&self) -> i64 {
        self.run_id * 10
    }

    fn runner(&self) -> String {
        format!("runner-{}", self.run_id)
    }
}

impl Guard {
    /// Delivers a signed webhook; returns what the guard says it did.
    async fn deliver(&self, event: &str, delivery: &str, body: &Value) -> String {
        let body = serde_json::to_vec(body).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let resp = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let answer: Value = resp.json().await.unwrap();
        answer["message"].as_str().unwrap_or_default().to_string()
    }

    /// The run's `workflow_run` event (GitHub's example, adapted): the guard then knows who
    /// started it.
    async fn announce(&self, job: &TestJob) {
        let mut v = fixture("workflow_run.requested.json");
        let w = &mut v["workflow_run"];
        w["id"] = json!(job.run_id);
        w["run_attempt"] = json!(1);
        w["event"] = json!("push");
        w["actor"]["login"] = json!(ACTOR.0);
        w["actor"]["id"] = json!(ACTOR.1);
        w["triggering_actor"]["login"] = json!(ACTOR.0);
        w["triggering_actor"]["id"] = json!(ACTOR.1);
        w["repository"]["full_name"] = json!(job.repository);
        w["head_repository"]["full_name"] = json!(job.repository);
        v["repository"]["full_name"] = json!(job.repository);
        self.deliver("workflow_run", &format!("run-{}", job.run_id), &v)
            .await;
    }

    /// `job`'s run announced and queued, and the job in progress for `ago` already.
    async fn running_since(&self, job: &TestJob, ago: jiff::SignedDuration) {
        self.announce(job).await;
        self.job_event(job, "queued").await;
        self.job_event_since(job, "in_progress", ago).await;
    }

    /// A `workflow_job` event (GitHub's example `completed` payload, adapted) about `job`.
    /// A job in progress has just started; a completed one ran for a minute.
    async fn job_event(&self, job: &TestJob, action: &str) -> String {
        let ran = if action == "completed" { 60 } else { 0 };
        self.job_event_since(job, action, jiff::SignedDuration::from_secs(ran))
            .await
    }

    /// A `workflow_job` event about `job`, which started `ago` before now when it is in
    /// progress (it ran for `ago` when it completed).
    async fn job_event_since(
        &self,
        job: &TestJob,
        action: &str,
        ago: jiff::SignedDuration,
    ) -> String {
        let mut v = fixture("workflow_job.completed.json");
        v["action"] = json!(action);
        v["repository"]["full_name"] = json!(job.repository);
        let w = &mut v["workflow_job"];
        w["id"] = json!(job.job_id());
        w["run_id"] = json!(job.run_id);
        w["run_attempt"] = json!(1);
        w["labels"] = json!([format!("{}-large", job.resource)]);
        w["status"] = json!(action);
        w["runner_group_name"] = Value::Null;
        w["runner_group_id"] = Value::Null;
        let now = jiff::Timestamp::now();
        if action == "queued" {
            w["runner_name"] = Value::Null;
            w["runner_id"] = Value::Null;
        } else {
            w["runner_name"] = json!(job.runner());
        }
        if action == "completed" {
            w["started_at"] = json!((now - ago).to_string());
            w["completed_at"] = json!(now.to_string());
        } else if action == "in_progress" {
            w["started_at"] = json!((now - ago).to_string());
            w["completed_at"] = Value::Null;
            w["conclusion"] = Value::Null;
        } else {
            w["started_at"] = Value::Null;
            w["completed_at"] = Value::Null;
            w["conclusion"] = Value::Null;
        }
        self.deliver("workflow_job", &format!("{action}-{}", job.run_id), &v)
            .await
    }

    /// The gate's question for `job`, having waited `waited` seconds: (outcome, the answer).
    async fn admit(&self, job: &TestJob, waited: u64) -> (String, Value) {
        let pool = format!("{}-pool", job.resource);
        let resp = self
            .http
            .post(format!("{}/api/v1/admission", self.base))
            .bearer_auth(format!("{TOKEN}-{pool}"))
            .json(&json!({
                "repository": job.repository,
                "run_id": job.run_id,
                "run_attempt": 1,
                "job": "build",
                "runner_name": job.runner(),
                "waited_secs": waited,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the admission of {job:?}");
        let answer: Value = resp.json().await.unwrap();
        (answer["outcome"].as_str().unwrap().to_string(), answer)
    }

    /// A page's status and text.
    async fn page(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// A JSON answer of the guard's API.
    async fn json(&self, path: &str) -> Value {
        let (status, text) = self.page(path).await;
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The decisions once `n` of them are under `rule` (the guard records a cancellation after
    /// GitHub took it), waiting 10 s at most; fails when more come, or fewer.
    async fn decisions_once(&self, rule: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let recorded = self.decisions().await;
            let found = recorded.iter().filter(|d| d["rule"] == rule).count();
            assert!(found <= n, "{found} decisions under {rule}: {recorded:#?}");
            if found == n {
                return recorded;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{found} decisions under {rule}, not {n}: {recorded:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn decisions(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/api/v1/decisions?limit=500", self.base))
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        v["decisions"].as_array().unwrap().clone()
    }
}

/// Asks for every job at once (alternating between `guards`); the outcomes, in job order.
async fn admit_all(guards: &[Arc<Guard>], jobs: &[TestJob], waited: u64) -> Vec<String> {
    let asks: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let guard = guards[i % guards.len()].clone();
            let job = job.clone();
            tokio::spawn(async move { guard.admit(&job, waited).await.0 })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(asks.len());
    for ask in asks {
        outcomes.push(ask.await.unwrap());
    }
    outcomes
}

/// Queues every job (alternating between `guards`; each must be allowed), then sends all their
/// `in_progress` events at once, alternating the same way; what each answered, in job order.
async fn start_all(guards: &[Arc<Guard>], jobs: &[TestJob]) -> Vec<String> {
    for (i, job) in jobs.iter().enumerate() {
        let guard = &guards[i % guards.len()];
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    let starts: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let guard = guards[i % guards.len()].clone();
            let job = job.clone();
            tokio::spawn(async move { guard.job_event(&job, "in_progress").await })
        })
        .collect();
    let mut said = Vec::with_capacity(starts.len());
    for start in starts {
        said.push(start.await.unwrap());
    }
    said
}

fn count(outcomes: &[String], what: &str) -> usize {
    outcomes.iter().filter(|o| *o == what).count()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// The issue's example: 14 jobs queued on a resource with `concurrency: 4`. They all go in
/// progress on the pool's runners and their gates ask at once: 4 are admitted, 10 wait. One
/// finishes: exactly one more is admitted. Past `concurrency_wait` a waiting job is denied
/// `concurrency-exhausted`, with a message that says how many run and that a re-run passes.
async fn fourteen_jobs_on_four_machines(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let jobs: Vec<TestJob> = (1..=14)
        .map(|i| TestJob::new(REPO, 1000 + i, "gpu"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    for job in &jobs {
        // On a gated resource a job counts once its gate admits it.
        let said = guard.job_event(job, "in_progress").await;
        assert_eq!(said, "job in progress", "{job:?}");
    }
    // Their gates ask at once.
    let guard = Arc::new(guard);
    let outcomes = admit_all(std::slice::from_ref(&guard), &jobs, 0).await;
    assert_eq!(count(&outcomes, "allow"), 4, "{outcomes:?}");
    assert_eq!(count(&outcomes, "wait"), 10, "{outcomes:?}");
    // Asking again changes nothing for anyone: the admitted stay admitted.
    let again = admit_all(std::slice::from_ref(&guard), &jobs, 1).await;
    assert_eq!(again, outcomes);

    // An admitted job finishes: its machine is free for exactly one of the waiting ones.
    let done = jobs[outcomes.iter().position(|o| o == "allow").unwrap()].clone();
    guard.job_event(&done, "completed").await;
    let waiting: Vec<TestJob> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| *o == "wait")
        .map(|(j, _)| j.clone())
        .collect();
    let next = admit_all(std::slice::from_ref(&guard), &waiting, 1).await;
    assert_eq!(count(&next, "allow"), 1, "{next:?}");
    assert_eq!(count(&next, "wait"), 9, "{next:?}");

    // A job still waiting past its pool's `concurrency_wait` (2s) fails alone.
    let late = waiting[next.iter().position(|o| o == "wait").unwrap()].clone();
    let (outcome, answer) = guard.admit(&late, 2).await;
    assert_eq!(outcome, "deny", "{answer}");
    assert_eq!(answer["rule"], "concurrency-exhausted");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("`gpu` runs 4 jobs at once at most, and 4 are running")
            && message.contains("re-run it and it will pass once one of them finishes"),
        "{message}"
    );
    let recorded = guard.decisions().await;
    assert!(
        recorded.iter().any(|d| d["rule"] == "concurrency-exhausted"
            && d["run_id"] == late.run_id
            && d["origin"] == "gate"),
        "{recorded:#?}"
    );
    // The webhook path never cancels a gated resource's runs for a cap: the gate did it per job.
    assert!(cancelled(&world.fake).is_empty());
}

/// `project_concurrency`: one project holds at most 2 of the pool's 4 machines; another project
/// still gets one.
async fn one_project_cannot_hold_the_whole_pool(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(world.guard().await);
    let mine: Vec<TestJob> = (1..=3)
        .map(|i| TestJob::new(REPO, 2000 + i, "proj"))
        .collect();
    let theirs = TestJob::new(OTHER, 2100, "proj");
    for job in mine.iter().chain([&theirs]) {
        guard.announce(job).await;
    }
    let outcomes = admit_all(std::slice::from_ref(&guard), &mine, 0).await;
    assert_eq!(count(&outcomes, "allow"), 2, "{outcomes:?}");
    let waiting = &mine[outcomes.iter().position(|o| o == "wait").unwrap()];
    let (_, answer) = guard.admit(waiting, 0).await;
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("2 jobs hold `proj` for `example` (the cap is 2)"),
        "{message}"
    );
    let (outcome, answer) = guard.admit(&theirs, 0).await;
    assert_eq!(outcome, "allow", "{answer}");
    let (outcome, answer) = guard.admit(waiting, 5).await;
    assert_eq!(outcome, "deny");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("`example` may run 2 jobs at once on `proj` at most, and 2 are running"),
        "{answer}"
    );
}

/// A provider's `max_concurrency` (3) caps its resources together, each with room of its own.
async fn a_providers_cap_holds_across_its_resources(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(world.guard().await);
    let on_a: Vec<TestJob> = (1..=2).map(|i| TestJob::new(REPO, 3000 + i, "a")).collect();
    let on_b: Vec<TestJob> = (1..=2).map(|i| TestJob::new(REPO, 3100 + i, "b")).collect();
    for job in on_a.iter().chain(&on_b) {
        guard.announce(job).await;
    }
    assert_eq!(
        admit_all(std::slice::from_ref(&guard), &on_a, 0).await,
        ["allow", "allow"]
    );
    let outcomes = admit_all(std::slice::from_ref(&guard), &on_b, 0).await;
    assert_eq!(count(&outcomes, "allow"), 1, "{outcomes:?}");
    let waiting = &on_b[outcomes.iter().position(|o| o == "wait").unwrap()];
    let (_, answer) = guard.admit(waiting, 0).await;
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("3 jobs hold `shared`'s resources (the cap is 3)"),
        "{answer}"
    );
    // One on `a` finishes: the job on `b` gets its machine.
    guard.job_event(&on_a[0], "completed").await;
    let (outcome, _) = guard.admit(waiting, 1).await;
    assert_eq!(outcome, "allow");
}

/// Without a gate, the webhook path sees jobs go in progress: beyond `concurrency: 1`, a job's
/// run is cancelled (`on_exceed: cancel`, the default) or only recorded (`record`). A finished
/// job frees its slot.
async fn beyond_a_cap_the_webhook_path_cancels_or_records(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let first = TestJob::new(REPO, 4001, "cancel");
    let second = TestJob::new(REPO, 4002, "cancel");
    let third = TestJob::new(REPO, 4003, "cancel");
    let kept = TestJob::new(REPO, 4101, "record");
    let extra = TestJob::new(REPO, 4102, "record");
    for job in [&first, &second, &third, &kept, &extra] {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    assert_eq!(
        guard.job_event(&first, "in_progress").await,
        "job in progress"
    );
    assert_eq!(
        guard.job_event(&second, "in_progress").await,
        "deny (concurrency-exhausted): run cancelled"
    );
    assert_eq!(cancelled(&world.fake), [second.run_id]);
    let recorded = guard.decisions().await;
    let denial = recorded
        .iter()
        .find(|d| d["rule"] == "concurrency-exhausted")
        .expect("the denial is recorded");
    assert_eq!(denial["run_id"], second.run_id);
    assert!(
        denial["message"]
            .as_str()
            .unwrap()
            .contains("`cancel` runs 1 job at once at most, and 1 is running"),
        "{denial}"
    );

    assert_eq!(
        guard.job_event(&kept, "in_progress").await,
        "job in progress"
    );
    assert_eq!(
        guard.job_event(&extra, "in_progress").await,
        "deny (concurrency-exhausted): recorded (on_exceed: record)"
    );
    assert_eq!(
        cancelled(&world.fake),
        [second.run_id],
        "`record` cancels nothing"
    );

    // Both jobs on `cancel` end (the cancelled one too): the next one runs.
    guard.job_event(&first, "completed").await;
    guard.job_event(&second, "completed").await;
    assert_eq!(
        guard.job_event(&third, "in_progress").await,
        "job in progress"
    );
    assert_eq!(cancelled(&world.fake), [second.run_id]);
}

/// A gate's claim whose job never goes in progress (a lost event, or an admission forged with a
/// pool's token for a runner that runs nothing) stops counting after 15 minutes; a job that
/// did start counts for GitHub's 5 days.
async fn a_claim_whose_job_never_starts_expires_first(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(world.guard().await);
    let jobs: Vec<TestJob> = (1..=8)
        .map(|i| TestJob::new(REPO, 6000 + i, "gpu"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
    }
    assert_eq!(
        admit_all(std::slice::from_ref(&guard), &jobs[..4], 0).await,
        ["allow"; 4]
    );
    guard.job_event(&jobs[0], "in_progress").await;
    assert_eq!(guard.admit(&jobs[4], 0).await.0, "wait");
    // The sweep, 16 minutes on: the three claims no job took are gone, the started job stays.
    let store = Store::connect(&world.db.url).await.unwrap();
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(16);
    let dropped = store
        .drop_expired_holds(&gatehouse_server::store::time_text(later))
        .await
        .unwrap();
    assert_eq!(dropped, 3);
    let next = admit_all(std::slice::from_ref(&guard), &jobs[4..], 0).await;
    assert_eq!(count(&next, "allow"), 3, "{next:?}");
    assert_eq!(count(&next, "wait"), 1, "{next:?}");
}

/// A job that never reports its completion (every delivery about it lost, GitHub's API not
/// asked) holds its machine and its pool's credit for GitHub's 5 days (`caps::HOLD_LIMIT`),
/// not longer: the clock moved a minute short of 5 days on, it still counts; 5 days and a
/// minute on, it no longer does, and the sweep drops it.
async fn a_job_that_never_reports_completion_stops_counting_after_five_days(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let lost = TestJob::new(REPO, 4201, "cancel");
    let next = TestJob::new(REPO, 4202, "cancel");
    let paid = TestJob::new(REPO, 4203, "paid");
    for job in [&lost, &next, &paid] {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    for job in [&lost, &paid] {
        assert_eq!(guard.job_event(job, "in_progress").await, "job in progress");
    }
    let store = Store::connect(&world.db.url).await.unwrap();
    let now = jiff::Timestamp::now();
    let on = |d: jiff::SignedDuration| gatehouse_server::store::time_text(now + d);
    let almost = on(jiff::SignedDuration::from_mins(5 * 24 * 60 - 1));
    let past = on(jiff::SignedDuration::from_mins(5 * 24 * 60 + 1));
    let held = |at: String| {
        let store = store.clone();
        async move {
            store
                .held("cancel", "cirun", Some("example"), &at, "")
                .await
                .unwrap()
                .resource
        }
    };
    let reserved = |at: String| {
        let store = store.clone();
        async move {
            let balances = store.pool_balances(&at).await.unwrap();
            balances.get("cloud").map_or(0, |b| b.reserved)
        }
    };
    assert_eq!(held(almost.clone()).await, 1);
    assert_eq!(reserved(almost.clone()).await, 5_000_000);
    assert_eq!(held(past.clone()).await, 0);
    assert_eq!(reserved(past.clone()).await, 0);
    assert_eq!(store.drop_expired_holds(&almost).await.unwrap(), 0);
    assert_eq!(store.drop_expired_holds(&past).await.unwrap(), 2);
    // The machine is free: the next job on `cancel` runs, no run is cancelled.
    assert_eq!(
        guard.job_event(&next, "in_progress").await,
        "job in progress"
    );
    assert!(cancelled(&world.fake).is_empty());
}

/// A job that never reports its end (a lost `completed` delivery) stops holding a machine once
/// the sweep asks GitHub about it (`actions/get-job-for-workflow-run`): a job GitHub reports
/// completed, or does not know, frees its slot; one still in progress keeps it.
async fn the_sweep_frees_slots_of_jobs_github_reports_finished(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(
        world
            .guard_sweeping(HoldsSweep {
                every: Duration::from_millis(100),
                after: Duration::ZERO,
            })
            .await,
    );
    let jobs: Vec<TestJob> = (1..=7)
        .map(|i| TestJob::new(REPO, 7000 + i, "gpu"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
    }
    // Four machines held by jobs that GitHub says are: over, running, unknown, running.
    world.github_reports(&jobs[0], "completed");
    world.github_reports(&jobs[1], "in_progress");
    world.github_reports(&jobs[3], "in_progress");
    assert_eq!(
        admit_all(std::slice::from_ref(&guard), &jobs[..4], 0).await,
        ["allow"; 4]
    );
    for job in &jobs[..4] {
        guard.job_event(job, "in_progress").await;
    }
    // No `completed` delivery comes; the sweep asks GitHub and frees two slots.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while world.fake.gate.count_containing("/actions/jobs/") < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep did not ask GitHub about the four jobs: {:?}",
            world.fake.gate.calls()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = admit_all(std::slice::from_ref(&guard), &jobs[4..], 0).await;
    assert_eq!(count(&next, "allow"), 2, "{next:?}");
    assert_eq!(count(&next, "wait"), 1, "{next:?}");
}

/// The queue page tells a maintainer why a job waits: of the pool of 4, 4 hold machines, 2
/// wait on their runners for a slot and 3 are still queued; `/api/v1/runs/{id}` (what
/// `gatehouse why` prints) gives a cancelled run's reason.
async fn the_queue_shows_jobs_against_their_caps(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(world.guard().await);
    let jobs: Vec<TestJob> = (1..=9)
        .map(|i| TestJob::new(REPO, 9000 + i, "gpu"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
        guard.job_event(job, "queued").await;
    }
    for job in &jobs[..6] {
        guard.job_event(job, "in_progress").await;
    }
    let outcomes = admit_all(std::slice::from_ref(&guard), &jobs[..6], 0).await;
    assert_eq!(count(&outcomes, "allow"), 4, "{outcomes:?}");
    // A run beyond `cancel`'s cap of 1, cancelled on the webhook path.
    let first = TestJob::new(REPO, 9101, "cancel");
    let second = TestJob::new(REPO, 9102, "cancel");
    for job in [&first, &second] {
        guard.announce(job).await;
        guard.job_event(job, "queued").await;
        guard.job_event(job, "in_progress").await;
    }

    let queue: Value = guard
        .http
        .get(format!("{}/queue.json", guard.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = |name: &str| {
        queue["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {queue:#}"))
            .clone()
    };
    let gpu = row("gpu");
    assert_eq!(
        (
            &gpu["holding"],
            &gpu["waiting"],
            &gpu["queued"],
            &gpu["running"],
            &gpu["concurrency"]
        ),
        (&json!(4), &json!(2), &json!(3), &json!(6), &json!(4)),
        "{gpu:#}"
    );
    assert!(gpu["oldest_wait_minutes"].is_u64(), "{gpu:#}");
    let cancel = row("cancel");
    assert_eq!(
        (&cancel["holding"], &cancel["concurrency"]),
        (&json!(2), &json!(1))
    );
    let recent = queue["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|j| j["rule"] == "concurrency-exhausted" && j["run_id"] == second.run_id),
        "{recent:#?}"
    );
    let html = guard
        .http
        .get(format!("{}/queue", guard.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<a href=\"/dashboard/resources/gpu\">gpu</a> <mark>full</mark>"),
        "{html}"
    );

    // One run, as `gatehouse why` asks for it.
    let why: Value = guard
        .http
        .get(format!(
            "{}/api/v1/runs/{}?repository={REPO}",
            guard.base, second.run_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decisions = why["decisions"].as_array().unwrap();
    let denial = decisions
        .iter()
        .find(|d| d["outcome"] == "deny")
        .unwrap_or_else(|| panic!("{why:#}"));
    assert_eq!(denial["rule"], "concurrency-exhausted");
    assert!(
        denial["message"].as_str().unwrap().contains("1 is running"),
        "{denial}"
    );
    assert_eq!(why["queue"][0]["resource"], "cancel");
    let unknown = guard
        .http
        .get(format!("{}/api/v1/runs/1?repository={REPO}", guard.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// The rows of the table `id` of a page, as the text between `<tr` and `</tr>`.
fn table_rows<'a>(html: &'a str, id: &str) -> Vec<&'a str> {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in {html}"));
    let table = &html[start..];
    let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    body.split("<tr").skip(1).collect()
}

/// A resource's own page shows its queue now, as `/queue` does: of the pool of 4, 4 hold
/// machines (5 in progress), 1 waits on its runner for a slot, 2 are still queued since the
/// oldest wait; the pool is marked full. Only its own line: not another resource's. The
/// project's page lists its 4 jobs holding a machine and the one waiting, and why it waits.
async fn a_resource_page_shows_its_queue(backend: Backend) {
    let world = World::new(backend).await;
    let guard = Arc::new(world.guard().await);
    let jobs: Vec<TestJob> = (1..=7)
        .map(|i| TestJob::new(REPO, 9200 + i, "gpu"))
        .collect();
    for job in &jobs {
        guard.announce(job).await;
        guard.job_event(job, "queued").await;
    }
    for job in &jobs[..5] {
        guard.job_event(job, "in_progress").await;
    }
    let outcomes = admit_all(std::slice::from_ref(&guard), &jobs[..5], 0).await;
    assert_eq!(count(&outcomes, "allow"), 4, "{outcomes:?}");
    assert_eq!(count(&outcomes, "wait"), 1, "{outcomes:?}");

    let (status, html) = guard.page("/dashboard/resources/gpu").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h2 id=\"queue\">Queue now</h2>"), "{html}");
    let rows = table_rows(&html, "queue-table");
    assert_eq!(rows.len(), 1, "its own line only: {rows:#?}");
    let row = rows[0];
    for part in [
        "<a href=\"/dashboard/resources/gpu\">gpu</a> <mark>full</mark>",
        // Queued, and since when the oldest has waited.
        "<td class=\"num\">2</td><td>0 min (since ",
        // Holding a machine (in progress) against the cap of 4, none per project.
        "<td class=\"num\">4 <span class=\"note\">(5 in progress)</span></td><td class=\"num\">4</td><td class=\"num\">none</td>",
        // Waiting for a slot.
        "<td class=\"num\">1</td></tr>",
    ] {
        assert!(row.contains(part), "{part} in {row}");
    }
    // The same figures as `/queue.json`'s line.
    let queue = guard.json("/queue.json").await;
    let gpu = queue["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "gpu")
        .unwrap()
        .clone();
    let since = gpu["oldest_queued_at"].as_str().unwrap();
    assert!(
        row.contains(&format!("(since {since})")),
        "{since} in {row}"
    );
    // The project's page says which of its jobs hold a machine and which wait, and why.
    let (status, html) = guard.page("/dashboard/projects/example").await;
    assert_eq!(status, 200, "{html}");
    let now = table_rows(&html, "project-now-table");
    assert_eq!(now.len(), 5, "{now:#?}");
    let holding = now.iter().filter(|r| r.contains("holds a machine")).count();
    let waiting: Vec<_> = now
        .iter()
        .filter(|r| r.contains("waiting for a slot: a cap of the resource is full"))
        .collect();
    assert_eq!((holding, waiting.len()), (4, 1), "{now:#?}");
    assert!(
        jobs[..5].iter().any(|j| waiting[0]
            .contains(&format!("/actions/runs/{}\">{}</a>", j.run_id, j.run_id))),
        "{}",
        waiting[0]
    );
    assert!(
        now.iter()
            .all(|r| r.contains("<a href=\"/dashboard/resources/gpu\">gpu</a>")),
        "{now:#?}"
    );
    // Another project holds nothing.
    let (_, html) = guard.page("/dashboard/projects/other").await;
    assert!(
        html.contains("No job of other holds or waits for a machine"),
        "{html}"
    );
    // A resource nobody asked for has its line too, empty.
    let (_, html) = guard.page("/dashboard/resources/proj").await;
    let rows = table_rows(&html, "queue-table");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        rows[0].contains(">proj</a></th><td class=\"num\">0</td><td>—</td>"),
        "{}",
        rows[0]
    );
}

/// A project's page lists its recent managed jobs with the guard's decision and why, newest
/// first: `example`'s allowed job, and its run cancelled beyond `cancel`'s cap of 1 with the
/// reason; not `other`'s job, which is on `other`'s page, denied `no-grant`. `/queue`'s
/// recent list links each project's page.
async fn a_projects_page_lists_its_jobs_and_why(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world.guard().await;
    let allowed = TestJob::new(REPO, 9301, "gpu");
    guard.announce(&allowed).await;
    assert_eq!(guard.job_event(&allowed, "queued").await, "allow");
    let first = TestJob::new(REPO, 9302, "cancel");
    let second = TestJob::new(REPO, 9303, "cancel");
    for job in [&first, &second] {
        guard.announce(job).await;
        guard.job_event(job, "queued").await;
        guard.job_event(job, "in_progress").await;
    }
    // `other` holds no grant of `gpu`.
    let stranger = TestJob::new(OTHER, 9304, "gpu");
    guard.announce(&stranger).await;
    guard.job_event(&stranger, "queued").await;
    guard.decisions_once("concurrency-exhausted", 1).await;
    guard.decisions_once("no-grant", 1).await;

    let (status, html) = guard.page("/dashboard/projects/example").await;
    assert_eq!(status, 200, "{html}");
    let rows = table_rows(&html, "recent-table");
    let run = |job: &TestJob| format!("/actions/runs/{}\">{}</a>", job.run_id, job.run_id);
    let of = |job: &TestJob| -> Vec<&str> {
        rows.iter()
            .copied()
            .filter(|r| r.contains(&run(job)))
            .collect()
    };
    assert!(
        of(&allowed)
            .iter()
            .any(|r| r.contains("</a></td><td>allow</td><td>webhook</td><td>—</td>")),
        "{rows:#?}"
    );
    let cancelled = of(&second);
    let denial = cancelled
        .iter()
        .find(|r| r.contains("<td>deny</td>"))
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(
        denial.contains("<td><code>concurrency-exhausted</code></td>")
            && denial.contains("1 is running"),
        "{denial}"
    );
    assert!(of(&stranger).is_empty(), "another project's job: {rows:#?}");
    assert!(
        rows.iter().all(|r| r.contains(REPO)),
        "only example's jobs: {rows:#?}"
    );
    // Newest first: the cancellation came after the allowed job.
    let position = |needle: &str| rows.iter().position(|r| r.contains(needle)).unwrap();
    assert!(position("concurrency-exhausted") < position(&run(&allowed)));

    let (_, html) = guard.page("/dashboard/projects/other").await;
    let rows = table_rows(&html, "recent-table");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        rows[0].contains(&run(&stranger))
            && rows[0].contains("<td>deny</td><td>webhook</td><td><code>no-grant</code></td>"),
        "{}",
        rows[0]
    );

    let (_, html) = guard.page("/queue").await;
    for (repository, project) in [(REPO, "example"), (OTHER, "other")] {
        let link = format!("<a href=\"/dashboard/projects/{project}\">{repository}</a>");
        assert!(html.contains(&link), "{link} in {html}");
    }
}

// ---------------------------------------------------------------------------------------------
// Time limits

/// Waits until `done` holds, for 10 seconds at most.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `timed` jobs may run a minute. One in progress for two minutes has its run cancelled, once,
/// with the reason recorded and left on its commit as a failed check run. A job that started
/// just now is not touched; neither is one whose completion came, nor one that GitHub reports
/// over (its `completed` delivery was lost).
async fn a_job_past_its_time_limit_has_its_run_cancelled(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world
        .guard_timing(Duration::from_millis(50), Duration::from_secs(60))
        .await;
    let long = TestJob::new(REPO, 8001, "timed");
    let fresh = TestJob::new(REPO, 8002, "timed");
    let ended = TestJob::new(REPO, 8003, "timed");
    let lost = TestJob::new(REPO, 8004, "timed");
    for job in [&long, &fresh, &ended] {
        world.github_reports(job, "in_progress");
    }
    world.github_reports(&lost, "completed");
    let two_minutes = jiff::SignedDuration::from_mins(2);
    for job in [&long, &fresh, &ended, &lost] {
        guard.announce(job).await;
        assert_eq!(guard.job_event(job, "queued").await, "allow");
    }
    // `ended` finishes before its deadline: its completion comes first.
    guard
        .job_event_since(&ended, "in_progress", jiff::SignedDuration::from_secs(30))
        .await;
    guard.job_event(&ended, "completed").await;
    let said = guard
        .job_event_since(&long, "in_progress", two_minutes)
        .await;
    assert_eq!(said, "job in progress");
    guard
        .job_event_since(&lost, "in_progress", two_minutes)
        .await;
    guard.job_event(&fresh, "in_progress").await;

    until("the run past its limit is cancelled", || {
        cancelled(&world.fake) == [long.run_id]
    })
    .await;
    until("the explanation is left on the commit", || {
        !world.fake.state.lock().unwrap().check_runs.is_empty()
    })
    .await;
    // Later looks cancel nothing more: not again, not the fresh job, not the one GitHub
    // reports over.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cancelled(&world.fake), [long.run_id]);
    assert_eq!(world.fake.gate.count_containing("/cancel"), 1);
    // The only timer left to run out is the fresh job's: the ended job's went with its
    // completion, the others fired.
    let store = Store::connect(&world.db.url).await.unwrap();
    let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(60);
    let left: Vec<i64> = store
        .due_timers(&gatehouse_server::store::time_text(in_an_hour), 100)
        .await
        .unwrap()
        .iter()
        .map(|t| t.job_id)
        .collect();
    assert_eq!(left, [fresh.job_id()]);

    let recorded = guard.decisions_once("time-limit", 1).await;
    let timed: Vec<&Value> = recorded
        .iter()
        .filter(|d| d["rule"] == "time-limit")
        .collect();
    assert_eq!(timed.len(), 1, "{recorded:#?}");
    assert_eq!(timed[0]["run_id"], long.run_id);
    assert_eq!(timed[0]["outcome"], "deny");
    let message = timed[0]["message"].as_str().unwrap();
    assert!(
        message.contains("ran for 2 minutes on `timed`, whose jobs may run for 1 minutes at most")
            && message.contains("`max_job_minutes` in resources/timed.yml")
            && message.contains("timeout-minutes: 1"),
        "{message}"
    );
    let check = world.fake.state.lock().unwrap().check_runs[0].clone();
    assert_eq!(check["conclusion"], "failure", "{check}");
    assert!(
        check["output"]["title"]
            .as_str()
            .unwrap()
            .contains("time-limit"),
        "{check}"
    );
}

/// The timers live in the database: a guard that stops before a job's limit passes leaves it
/// to the next one, which cancels the run.
async fn a_restarted_guard_resumes_the_timers(backend: Backend) {
    let world = World::new(backend).await;
    let job = TestJob::new(REPO, 8101, "timed");
    world.github_reports(&job, "in_progress");
    {
        // This guard never looks (its first look would be an hour on).
        let first = world
            .guard_timing(Duration::from_secs(3600), Duration::from_secs(60))
            .await;
        first
            .running_since(&job, jiff::SignedDuration::from_mins(2))
            .await;
        assert!(cancelled(&world.fake).is_empty());
    }
    let _second = world
        .guard_timing(Duration::from_millis(50), Duration::from_secs(60))
        .await;
    until("the restarted guard cancels the run", || {
        cancelled(&world.fake) == [job.run_id]
    })
    .await;
}

/// The limit is read again when a timer is due: removed since the job started, the timer
/// goes; raised, the deadline moves.
async fn a_changed_limit_moves_or_drops_the_timer(backend: Backend) {
    let world = World::new(backend).await;
    let resource = world.dir.path().join("access/resources/timed.yml");
    let limit = |minutes: Option<u32>| {
        let extra = minutes.map_or(String::new(), |m| format!("max_job_minutes: {m}\n"));
        std::fs::write(
            &resource,
            format!("name: timed\nprovider: cirun\nlabels: [timed-large]\n{extra}"),
        )
        .unwrap();
    };
    let store = Store::connect(&world.db.url).await.unwrap();
    let due_within = |mins: i64| {
        let store = store.clone();
        async move {
            let at = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(mins);
            store
                .due_timers(&gatehouse_server::store::time_text(at), 10)
                .await
                .unwrap()
                .iter()
                .map(|t| t.job_id)
                .collect::<Vec<i64>>()
        }
    };
    // Arms `job`'s timer (it started two minutes ago) with a guard that never looks.
    let arm = |job: TestJob| {
        let world = &world;
        async move {
            world.github_reports(&job, "in_progress");
            let guard = world
                .guard_timing(Duration::from_secs(3600), Duration::from_secs(60))
                .await;
            guard
                .running_since(&job, jiff::SignedDuration::from_mins(2))
                .await;
        }
    };
    let looking = || world.guard_timing(Duration::from_millis(20), Duration::from_secs(60));
    let settle = |what: &'static str, mins: i64, want: Vec<i64>| {
        let due_within = &due_within;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while due_within(mins).await != want {
                assert!(std::time::Instant::now() < deadline, "{what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // Removed: the due timer goes, nothing is cancelled.
    let dropped = TestJob::new(REPO, 8151, "timed");
    arm(dropped.clone()).await;
    assert_eq!(due_within(0).await, [dropped.job_id()]);
    limit(None);
    {
        let _guard = looking().await;
        settle("the timer of a limit removed goes", 24 * 60, vec![]).await;
    }
    // Raised from 1 to 10 minutes: the job that ran 2 may run 8 more.
    limit(Some(1));
    let moved = TestJob::new(REPO, 8152, "timed");
    arm(moved.clone()).await;
    limit(Some(10));
    {
        let _guard = looking().await;
        settle("the deadline moves 8 minutes on", 7, vec![]).await;
        assert_eq!(due_within(9).await, [moved.job_id()]);
    }
    assert!(cancelled(&world.fake).is_empty());
}

/// GitHub fails the first cancellation: the timer stays due, and once the replica's lease on
/// it ends the run is cancelled.
async fn a_failed_cancellation_is_tried_again(backend: Backend) {
    let world = World::new(backend).await;
    let job = TestJob::new(REPO, 8201, "timed");
    world.github_reports(&job, "in_progress");
    world.fake.gate.fail("POST */cancel", &[502]);
    let guard = world
        .guard_timing(Duration::from_millis(50), Duration::from_millis(300))
        .await;
    guard
        .running_since(&job, jiff::SignedDuration::from_mins(2))
        .await;
    until("the run is cancelled after GitHub failed once", || {
        cancelled(&world.fake) == [job.run_id]
    })
    .await;
    assert!(
        world.fake.gate.count_containing("/cancel") >= 2,
        "{:?}",
        world.fake.gate.calls()
    );
    // GitHub has the cancellation before the guard records it: wait for the record.
    guard.decisions_once("time-limit", 1).await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

on_both!(
    a_delivery_whose_claim_is_refused_is_not_kept,
    starts_and_ends_that_arrive_together_all_go_through,
    fourteen_jobs_on_four_machines,
    one_project_cannot_hold_the_whole_pool,
    a_providers_cap_holds_across_its_resources,
    beyond_a_cap_the_webhook_path_cancels_or_records,
    a_claim_whose_job_never_starts_expires_first,
    the_sweep_frees_slots_of_jobs_github_reports_finished,
    the_queue_shows_jobs_against_their_caps,
    a_resource_page_shows_its_queue,
    a_projects_page_lists_its_jobs_and_why,
    a_job_past_its_time_limit_has_its_run_cancelled,
    a_restarted_guard_resumes_the_timers,
    a_changed_limit_moves_or_drops_the_timer,
    a_failed_cancellation_is_tried_again,
    a_sponsor_pool_pays_for_jobs_until_it_is_used_up,
    the_gate_reserves_credit_before_a_job_starts,
    the_gate_reads_a_team_whose_members_changed_again,
    the_gate_reads_roles_and_teams_within_one_fact_wait,
    a_job_that_starts_after_it_ended_holds_no_credit,
    a_pool_that_crosses_both_thresholds_at_once_gets_one_issue,
    a_failed_issue_call_is_tried_again_once,
    a_restarted_guard_resumes_the_alerts,
    an_issue_opened_but_not_recorded_is_edited_not_opened_again,
    a_job_that_never_reports_completion_stops_counting_after_five_days,
    a_pool_expects_the_median_job_of_a_resource_without_a_time_limit,
    a_pool_of_minutes_pays_for_jobs_until_it_is_used_up,
);

/// A grant that names a team lets its members in at the gate too. When a member leaves, the
/// guard hears it (`membership` `removed`) while GitHub fails, so the list it holds is stale
/// and could not be read again; once GitHub answers, the gate's admission reads the team
/// itself and refuses the former member `not-listed` (not `facts-unavailable`, which is what
/// deciding on the stale list would give).
async fn the_gate_reads_a_team_whose_members_changed_again(backend: Backend) {
    let world = World::new(backend).await;
    let guard = world
        .guard_with(|c| c.facts_deadline = Duration::from_millis(300))
        .await;
    let first = TestJob::new(REPO, 9101, "teamed");
    guard.announce(&first).await;
    let (outcome, answer) = guard.admit(&first, 0).await;
    assert_eq!(outcome, "allow", "a member of the team: {answer}");

    world.fake.gate.fail_all(Some(502));
    world
        .fake
        .state
        .lock()
        .unwrap()
        .teams
        .insert(TEAM.into(), vec![]);
    let mut left = fixture("membership.removed.json");
    left["member"]["login"] = json!(ACTOR.0);
    left["member"]["id"] = json!(ACTOR.1);
    left["team"]["slug"] = json!(TEAM);
    left["team"]["name"] = json!(TEAM);
    left["organization"]["login"] = json!("octo-org");
    guard.deliver("membership", "left-the-team", &left).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    world.fake.gate.fail_all(None);

    let second = TestJob::new(REPO, 9102, "teamed");
    guard.announce(&second).await;
    let (outcome, answer) = guard.admit(&second, 0).await;
    assert_eq!(outcome, "deny", "{answer}");
    assert_eq!(answer["rule"], "user-not-allowed", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains(TEAM), "{message}");
}

/// The gate's admission waits for the facts it lacks `fact_wait` at most, all of them
/// together: the roles on the repository and the members of the grant's team are read again
/// at once, not one after the other (a gate stops waiting after 2 s and decides from its
/// snapshot, so an answer that comes later is lost).
async fn the_gate_reads_roles_and_teams_within_one_fact_wait(backend: Backend) {
    let world = World::new(backend).await;
    let fact_wait = Duration::from_secs(2);
    let guard = world
        .guard_with(|c| {
            c.facts_deadline = Duration::from_millis(300);
            if let Some(gate) = &mut c.gate {
                gate.fact_wait = fact_wait;
            }
        })
        .await;
    let first = TestJob::new(REPO, 9111, "teamed");
    guard.announce(&first).await;
    let (outcome, answer) = guard.admit(&first, 0).await;
    assert_eq!(outcome, "allow", "a member of the team: {answer}");

    // Someone joins the team while GitHub fails: the team's members, and the roles on every
    // repository (the team's own cannot be listed), are stale and cannot be read again.
    world.fake.gate.fail_all(Some(502));
    let mut joined = fixture("membership.added.json");
    joined["member"]["login"] = json!("a-newcomer");
    joined["member"]["id"] = json!(7_000_111);
    joined["team"]["slug"] = json!(TEAM);
    joined["team"]["name"] = json!(TEAM);
    joined["organization"]["login"] = json!("octo-org");
    guard
        .deliver("membership", "joined-the-team", &joined)
        .await;
    // The guard's own tries to read them again end first.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    world.fake.gate.fail_all(None);
    // GitHub answers again, each list after 1.2 s.
    let slow = Duration::from_millis(1200);
    world.fake.gate.delay("GET */collaborators", slow);
    world.fake.gate.delay("GET */members", slow);

    let second = TestJob::new(REPO, 9112, "teamed");
    guard.announce(&second).await;
    let asked = std::time::Instant::now();
    let (outcome, answer) = guard.admit(&second, 0).await;
    let took = asked.elapsed();
    assert_eq!(outcome, "allow", "{answer}");
    assert!(
        took < fact_wait,
        "the admission read both lists in {took:?}, beyond its fact wait of {fact_wait:?}"
    );
}

/// Two replicas share one PostgreSQL and both look for due timers often: a job past its limit
/// has its run cancelled once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_cancel_a_job_past_its_limit_once() {
    let world = World::new(Backend::Postgres).await;
    let jobs: Vec<TestJob> = (1..=6)
        .map(|i| TestJob::new(REPO, 8300 + i, "timed"))
        .collect();
    for job in &jobs {
        world.github_reports(job, "in_progress");
    }
    let one = world
        .guard_timing(Duration::from_millis(10), Duration::from_secs(60))
        .await;
    let two = world
        .guard_timing(Duration::from_millis(10), Duration::from_secs(60))
        .await;
    for (i, job) in jobs.iter().enumerate() {
        let g = if i % 2 == 0 { &one } else { &two };
        g.running_since(job, jiff::SignedDuration::from_mins(2))
            .await;
    }
    let runs: Vec<i64> = jobs.iter().map(|j| j.run_id).collect();
    until("every run past its limit is cancelled", || {
        cancelled(&world.fake) == runs
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(world.fake.gate.count_containing("/cancel"), jobs.len());
    one.decisions_once("time-limit", jobs.len()).await;
}

/// Two replicas behind a load balancer, one PostgreSQL: 40 admissions at once, alternating
/// between them, for a pool of 4. Together they admit exactly 4, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_admit_more_than_the_cap() {
    let world = World::new(Backend::Postgres).await;
    let one = Arc::new(world.guard().await);
    let two = Arc::new(world.guard().await);
    let mut next_run = 5000;
    for round in 0..3 {
        let jobs: Vec<TestJob> = (0..40)
            .map(|_| {
                next_run += 1;
                TestJob::new(REPO, next_run, "gpu")
            })
            .collect();
        for (i, job) in jobs.iter().enumerate() {
            let g = if i % 2 == 0 { &one } else { &two };
            g.announce(job).await;
        }
        let outcomes = admit_all(&[one.clone(), two.clone()], &jobs, 0).await;
        assert_eq!(count(&outcomes, "allow"), 4, "round {round}: {outcomes:?}");
        // The round's admitted jobs finish (on either replica) before the next round.
        for (i, (job, o)) in jobs.iter().zip(&outcomes).enumerate() {
            if o == "allow" {
                let g = if i % 2 == 0 { &two } else { &one };
                g.job_event(job, "in_progress").await;
                g.job_event(job, "completed").await;
            }
        }
    }
}

/// Two replicas behind a load balancer, one PostgreSQL, no gate: twelve jobs on `spill`
/// (`concurrency: 3`, `on_exceed: cancel` by default) go in progress at once, their deliveries
/// alternating between the replicas. Exactly 3 hold a machine; the other 9 have their runs
/// cancelled, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_cancel_the_runs_beyond_a_cap_on_the_webhook_path() {
    let world = World::new(Backend::Postgres).await;
    let one = Arc::new(world.guard().await);
    let two = Arc::new(world.guard().await);
    let store = Store::connect(&world.db.url).await.unwrap();
    let mut next_run = 5500;
    let mut all_cancelled = Vec::new();
    for round in 0..3 {
        let jobs: Vec<TestJob> = (0..12)
            .map(|_| {
                next_run += 1;
                TestJob::new(REPO, next_run, "spill")
            })
            .collect();
        let said = start_all(&[one.clone(), two.clone()], &jobs).await;
        let running: Vec<&TestJob> = jobs
            .iter()
            .zip(&said)
            .filter(|(_, s)| *s == "job in progress")
            .map(|(j, _)| j)
            .collect();
        let refused: Vec<i64> = jobs
            .iter()
            .zip(&said)
            .filter(|(_, s)| *s == "deny (concurrency-exhausted): run cancelled")
            .map(|(j, _)| j.run_id)
            .collect();
        assert_eq!(
            (running.len(), refused.len()),
            (3, 9),
            "round {round}: {said:?}"
        );
        all_cancelled.extend(refused);
        all_cancelled.sort_unstable();
        assert_eq!(cancelled(&world.fake), all_cancelled, "round {round}");
        // What the database counts as holding a machine: the three, and the nine only as over
        // the cap (their runs cancelled).
        let mut states = std::collections::BTreeMap::new();
        for job in &jobs {
            let holder = format!("{}:1:{}", job.run_id, job.runner());
            let state = store.hold_state(&holder).await.unwrap().unwrap_or_default();
            *states.entry(state).or_insert(0) += 1;
        }
        assert_eq!(
            states,
            [("admitted".to_string(), 3), ("over".to_string(), 9)].into(),
            "round {round}"
        );
        // Every job ends (the cancelled ones too), on either replica: the next round starts
        // with three free machines.
        for (i, job) in jobs.iter().enumerate() {
            let g = if i % 2 == 0 { &two } else { &one };
            g.job_event(job, "completed").await;
        }
    }
}
