//! `gatehouse serve` end to end, over real sockets: signed deliveries built from GitHub's own
//! example payloads (`@octokit/webhooks-examples`, in `fixtures/`), a loopback fake of the
//! GitHub REST endpoints the guard calls, and every scenario on both SQLite and PostgreSQL.
//!
//! PostgreSQL is expected at 127.0.0.1:5432 (user `postgres`, database `test`), or wherever
//! `GATEHOUSE_TEST_POSTGRES` points; each test creates its own database and drops it after.
//!
//! The guard's calls to GitHub and the fake's answers are checked against GitHub's published
//! REST description (`the_guard_s_calls_and_the_fake_s_answers_follow_github_s_description`,
//! through the recording proxy of `tests/contract/recorder.rs`), and every payload a test
//! delivers against GitHub's webhook description (in [`Guard::deliver`]).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use gatehouse_fake::{Delivery, FakeGitHub, serve_github};
use gatehouse_server::store::{Store, Write};
use gatehouse_server::{CatchUp, GuardMode, Limits, Secret, ServerConfig, serve_on};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "a webhook secret for tests";
const ADMIN: &str = "an admin token for tests";
const REPO: &str = "octo-org/example-feedstock";
/// The actor of the example `workflow_run` payload.
const ACTOR: (&str, i64) = ("Codertocat", 15669918);

use crate::db::{Backend, Db};
use crate::{recorder, schema};

// ---------------------------------------------------------------------------------------------
// The fake GitHub: `gatehouse-fake`'s, which accepts this token.

const GITHUB_TOKEN: &str = "ghp_test_token";

// ---------------------------------------------------------------------------------------------
// The access repository

const SETTINGS: &str = "org: octo-org
repo_suffix: \"-feedstock\"
reviewers: { teams: [core] }
guard: { mode: enforce }
providers:
  cirun: { kind: cirun, access_repo: .cirun }
";
const GPU: &str = "name: gpu
provider: cirun
labels: [gpu-large]
users: { roles: [admin, maintain, write] }
quota: { project_minutes_per_month: 10 }
";
const GRANT: &str = "project: example
grants:
  - resource: gpu
    pull_request: true
    granted: 2026-01-01
";

fn write_repo(dir: &Path) {
    for (path, text) in [
        ("gatehouse.yml", SETTINGS),
        ("resources/gpu.yml", GPU),
        ("grants/example.yml", GRANT),
    ] {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The guard under test

struct Guard {
    base: String,
    http: reqwest::Client,
    fake: Arc<FakeGitHub>,
    repo: tempfile::TempDir,
    secret: String,
    /// Completes the shutdown future given to `serve_on`.
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    config: ServerConfig,
    db: Db,
}

struct Options {
    mode: Option<GuardMode>,
    secret: &'static str,
    watch_interval: Option<Duration>,
    limits: Limits,
    catch_up: Option<CatchUp>,
    /// How long a job waits for a missing fact.
    facts_deadline: Duration,
    /// Without: the guard calls GitHub not at all.
    token: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: None,
            secret: SECRET,
            watch_interval: None,
            limits: Limits::default(),
            catch_up: None,
            facts_deadline: Duration::from_secs(60),
            token: true,
        }
    }
}

tokio::task_local! {
    /// Set by the contract test: every guard started in its scope calls its fake GitHub through
    /// a recording proxy, kept here.
    static CONTRACT: Arc<Mutex<Vec<recorder::Recorder>>>;
}

/// Fails unless `body` follows GitHub's webhook description for `event` and its action, when
/// the guard reads the event's payload: the payloads the tests build stay ones GitHub could
/// send. (The bodies of other events are stored, not read; tests send small ones.)
fn assert_github_could_send(event: &str, body: &Value) {
    let read = [
        "workflow_run",
        "workflow_job",
        "issue_comment",
        "pull_request_review",
    ]
    .contains(&event)
        || gatehouse_server::events::ROLE_EVENTS.contains(&event);
    if !read {
        return;
    }
    let problems = schema::Description::webhooks().check_webhook(event, body);
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.is_empty(),
        "a test payload GitHub's webhook description does not allow:\n{}",
        listed.join("\n")
    );
}

impl Guard {
    async fn start(backend: Backend) -> Guard {
        Guard::with(backend, Options::default()).await
    }

    async fn with(backend: Backend, options: Options) -> Guard {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = Db::new(backend).await;
        let repo = tempfile::tempdir().unwrap();
        write_repo(repo.path());
        let (mut github_api, fake) = serve_github(FakeGitHub::with_token(GITHUB_TOKEN));
        if let Ok(recorders) = CONTRACT.try_with(Clone::clone) {
            let proxy = recorder::Recorder::start(&github_api);
            github_api = proxy.base.clone();
            recorders.lock().unwrap().push(proxy);
        }
        fake.role(ACTOR, "maintain");
        let mut config =
            ServerConfig::new(repo.path(), db.url.clone(), Secret::new(options.secret));
        config.github_api = github_api;
        config.github_token = options.token.then(|| Secret::new(GITHUB_TOKEN));
        config.facts_deadline = options.facts_deadline;
        // Explanations (check runs) are not spaced a second apart in tests.
        config.mutation_spacing = Duration::ZERO;
        config.admin_token = Some(Secret::new(ADMIN));
        config.mode = options.mode;
        config.watch_interval = options.watch_interval;
        config.limits = options.limits;
        config.catch_up = options.catch_up;
        let mut guard = Guard {
            base: String::new(),
            http: reqwest::Client::new(),
            fake,
            repo,
            secret: options.secret.to_string(),
            stop: Mutex::new(None),
            server: None,
            config,
            db,
        };
        guard.launch().await;
        guard
    }

    /// Starts a server on the guard's configuration (its store as it is) on a new port.
    async fn launch(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.server = Some(tokio::spawn(serve_on(
            listener,
            self.config.clone(),
            async {
                let _ = stopped.await;
            },
        )));
        *self.stop.lock().unwrap() = Some(stop);
        self.base = format!("http://{addr}");
        // Connections queue on the bound socket while the guard opens its store and policy.
        let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
        assert!(
            ready.is_ok_and(|r| r.status() == 200),
            "the guard did not start"
        );
    }

    /// Stops the server and waits until it has.
    async fn halt(&mut self) {
        self.stop();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the guard stops")
                .unwrap()
                .unwrap();
        }
    }

    fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
    }

    fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Delivers a signed event; returns the status and the answer's message.
    async fn deliver(&self, event: &str, delivery: &str, body: &Value) -> (StatusCode, String) {
        assert_github_could_send(event, body);
        self.deliver_as_is(event, delivery, body).await
    }

    /// [`Guard::deliver`] of a payload GitHub's description does not allow: for the guard's
    /// handling of what GitHub should never send.
    async fn deliver_as_is(
        &self,
        event: &str,
        delivery: &str,
        body: &Value,
    ) -> (StatusCode, String) {
        let body = serde_json::to_vec(body).unwrap();
        let resp = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", self.sign(&body))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let answer: Value = resp.json().await.unwrap();
        (
            status,
            answer["message"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Changes a person's role on GitHub, and tells the guard as GitHub does: a signed `member`
    /// `edited` delivery (GitHub's example payload, adapted).
    async fn set_role(&self, who: (&str, i64), role: Option<&'static str>) {
        match role {
            Some(role) => self.fake.role(who, role),
            None => self.fake.no_role(who),
        }
        let mut event = fixture("member.edited.json");
        event["repository"]["full_name"] = json!(REPO);
        event["member"]["login"] = json!(who.0);
        event["member"]["id"] = json!(who.1);
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!("member-{}", N.fetch_add(1, Ordering::Relaxed));
        let (status, message) = self.deliver("member", &id, &event).await;
        assert_eq!(status, StatusCode::OK, "{message}");
    }

    /// Sends a signed delivery from a task of its own: delivered in the order of the calls,
    /// answered whenever.
    fn deliver_detached(
        &self,
        event: &'static str,
        delivery: &str,
        body: &Value,
    ) -> tokio::task::JoinHandle<(StatusCode, String)> {
        assert_github_could_send(event, body);
        let body = serde_json::to_vec(body).unwrap();
        let request = self
            .http
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", self.sign(&body))
            .body(body);
        tokio::spawn(async move {
            let resp = request.send().await.unwrap();
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let answer: Value = resp.json().await.unwrap();
            (
                status,
                answer["message"].as_str().unwrap_or_default().to_string(),
            )
        })
    }

    /// The decisions, once there are `n` (polls: a waiting delivery is decided in the
    /// background).
    async fn decisions_until(&self, query: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.decisions(query).await;
            if found.len() >= n || std::time::Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap())
    }

    async fn decisions(&self, query: &str) -> Vec<Value> {
        let (status, doc) = self.get(&format!("/api/v1/decisions{query}")).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        doc["decisions"].as_array().unwrap().clone()
    }

    async fn catch_up(&self) -> (StatusCode, Value) {
        self.catch_up_with(ADMIN).await
    }

    async fn catch_up_with(&self, token: &str) -> (StatusCode, Value) {
        self.admin_post("/admin/catch-up", token).await
    }

    async fn reload(&self, token: &str) -> (StatusCode, Value) {
        self.admin_post("/admin/reload", token).await
    }

    async fn admin_post(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads: GitHub's examples, adapted

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn workflow_run(run_id: i64, event: &str, head: &str) -> Value {
    let mut v = fixture("workflow_run.requested.json");
    v["repository"]["full_name"] = json!(REPO);
    v["workflow_run"]["id"] = json!(run_id);
    v["workflow_run"]["event"] = json!(event);
    v["workflow_run"]["repository"]["full_name"] = json!(REPO);
    v["workflow_run"]["head_repository"]["full_name"] = json!(head);
    v
}

fn queued_job(run_id: i64, job_id: i64, labels: &[&str]) -> Value {
    let mut v = fixture("workflow_job.queued.json");
    v["repository"]["full_name"] = json!(REPO);
    v["workflow_job"]["id"] = json!(job_id);
    v["workflow_job"]["run_id"] = json!(run_id);
    v["workflow_job"]["labels"] = json!(labels);
    v
}

fn job_event(action: &str, run_id: i64, job_id: i64) -> Value {
    let mut v = queued_job(run_id, job_id, &["gpu-large"]);
    v["action"] = json!(action);
    v
}

fn completed_job(run_id: i64, job_id: i64, minutes: i64) -> Value {
    let mut v = fixture("workflow_job.completed.json");
    let now = jiff::Timestamp::now();
    let start = now - jiff::SignedDuration::from_mins(minutes);
    v["repository"]["full_name"] = json!(REPO);
    v["workflow_job"]["id"] = json!(job_id);
    v["workflow_job"]["run_id"] = json!(run_id);
    v["workflow_job"]["labels"] = json!(["gpu-large--8075232475-linux_64"]);
    v["workflow_job"]["started_at"] = json!(start.to_string());
    v["workflow_job"]["completed_at"] = json!(now.to_string());
    v
}

/// Runs a scenario once on each backend, as two tests named after it.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

// After `on_both!`, which it uses.
mod run_approvals;
mod teams;

on_both!(
    githubs_test_vector_is_accepted,
    bad_requests_are_refused,
    a_replayed_delivery_is_processed_once,
    an_allowed_job_is_recorded,
    a_denied_job_is_cancelled_and_explained,
    dry_run_records_without_cancelling,
    a_missed_workflow_run_is_fetched,
    a_completed_job_is_counted_once,
    an_exhausted_quota_denies_the_next_job,
    a_broken_reload_keeps_the_old_policy,
    shutdown_drains_requests_in_flight,
    metrics_count_deliveries_decisions_and_minutes,
    concurrency_per_resource_is_tracked,
    a_changed_repository_is_reloaded_and_a_broken_one_refused,
    a_delivery_stored_but_not_processed_is_processed_at_start,
    a_timed_out_delivery_is_still_processed,
    two_replicas_never_process_a_delivery_twice,
    a_store_from_before_is_migrated_without_reprocessing,
    weekly_usage_is_told_per_project,
    the_heaviest_users_of_a_month_are_read_from_its_totals,
    concurrent_units_with_duplicates_apply_as_if_one_after_the_other,
    missed_deliveries_are_asked_for_again,
    periodic_catch_up_looks_back_to_the_previous_pass,
);

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn githubs_test_vector_is_accepted(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            secret: "It's a Secret to Everybody",
            ..Options::default()
        },
    )
    .await;
    let resp = guard
        .http
        .post(format!("{}/webhook", guard.base))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .header("x-github-delivery", "vector-1")
        .header(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )
        .body("Hello, World!")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn bad_requests_are_refused(backend: Backend) {
    let guard = Guard::start(backend).await;
    let url = format!("{}/webhook", guard.base);
    let body = serde_json::to_vec(&json!({"zen": "Keep it logically awesome."})).unwrap();
    let send = |ct: &'static str, sig: Option<String>, body: Vec<u8>| {
        let mut req = guard
            .http
            .post(&url)
            .header("content-type", ct)
            .header("x-github-event", "ping")
            .header("x-github-delivery", "bad-1")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send()
    };
    let unsigned = send("application/json", None, body.clone()).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let wrong = send(
        "application/json",
        Some(guard.sign(b"another body")),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let form = send(
        "application/x-www-form-urlencoded",
        Some(guard.sign(&body)),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(form.status(), 415);
    let huge = vec![b' '; gatehouse_server::MAX_BODY_BYTES + 1];
    let sig = guard.sign(&huge);
    match send("application/json", Some(sig), huge).await {
        Ok(resp) => assert_eq!(resp.status(), 413),
        // The server may answer 413 and close before the whole body is sent.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // None of them was stored: the same delivery id, signed, is new.
    let (status, message) = guard.deliver("ping", "bad-1", &json!({"zen": "hi"})).await;
    assert_eq!((status, message.as_str()), (StatusCode::OK, "pong"));
    // Catching up needs the admin token, and a webhook to catch up on.
    let (status, _) = guard.catch_up_with("not the token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = guard.catch_up_with(ADMIN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("--catch-up-hook"),
        "{answer}"
    );
}

async fn a_replayed_delivery_is_processed_once(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver("workflow_run", "run-1", &workflow_run(11, "push", REPO))
        .await;
    let job = queued_job(11, 101, &["gpu-large--123-linux_64", "linux"]);
    let first = guard.deliver("workflow_job", "job-1", &job).await;
    assert_eq!(first, (StatusCode::OK, "allow".to_string()));
    let again = guard.deliver("workflow_job", "job-1", &job).await;
    assert_eq!(again, (StatusCode::OK, "duplicate delivery".to_string()));
    assert_eq!(guard.decisions("").await.len(), 1);
    // An event the guard does not use is stored, acknowledged and ignored.
    let other = guard
        .deliver("issues", "issue-1", &json!({"action": "opened"}))
        .await;
    assert_eq!(
        other,
        (StatusCode::OK, "stored; event not used".to_string())
    );
}

async fn an_allowed_job_is_recorded(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver(
            "workflow_run",
            "run-1",
            &workflow_run(12, "pull_request", REPO),
        )
        .await;
    let (status, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(12, 102, &["GPU-Large--8075232475-linux_64", "self-hosted"]),
        )
        .await;
    assert_eq!((status, message.as_str()), (StatusCode::OK, "allow"));
    let decisions = guard.decisions("?project=example&outcome=allow").await;
    assert_eq!(decisions.len(), 1);
    let d = &decisions[0];
    assert_eq!(
        (
            &d["job_id"],
            &d["run_id"],
            &d["repository"],
            &d["project"],
            &d["resource"],
            &d["rule"]
        ),
        (
            &json!(102),
            &json!(12),
            &json!(REPO),
            &json!("example"),
            &json!("gpu"),
            &Value::Null
        )
    );
    assert_eq!(guard.fake.gate.count_containing("/cancel"), 0);
    // A job on GitHub's own runners is none of the guard's business: no lookups, no record.
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(12, 103, &["ubuntu-latest"]),
        )
        .await;
    assert_eq!(message, "not managed");
    assert_eq!(guard.decisions("").await.len(), 1);
    let (status, ready) = guard.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
}

async fn a_denied_job_is_cancelled_and_explained(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard.set_role(ACTOR, Some("read")).await;
    guard
        .deliver("workflow_run", "run-1", &workflow_run(13, "push", REPO))
        .await;
    let (status, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(13, 104, &["gpu-large"]),
        )
        .await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::OK, "deny (user-not-allowed): run cancelled")
    );
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("POST /repos/{REPO}/actions/runs/13/cancel")),
        1
    );
    // The explanation follows the cancellation, off the answer.
    let mut check_runs = Vec::new();
    for _ in 0..100 {
        check_runs = guard.fake.state.lock().unwrap().check_runs.clone();
        if !check_runs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(check_runs.len(), 1);
    let decision = &guard.decisions("?outcome=deny").await[0];
    assert_eq!(decision["rule"], "user-not-allowed");
    let check = &check_runs[0];
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(
        check["head_sha"],
        "3484a3fb816e0859fd6e1cea078d76385ff50625"
    );
    assert!(
        check["output"]["title"]
            .as_str()
            .unwrap()
            .contains("user-not-allowed"),
        "{check}"
    );
    assert_eq!(check["output"]["summary"], decision["message"]);
    assert!(
        decision["message"].as_str().unwrap().contains("Codertocat"),
        "{decision}"
    );
}

async fn dry_run_records_without_cancelling(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            mode: Some(GuardMode::DryRun),
            ..Options::default()
        },
    )
    .await;
    // A pull_request_target run never gets a managed resource.
    guard
        .deliver(
            "workflow_run",
            "run-1",
            &workflow_run(14, "pull_request_target", REPO),
        )
        .await;
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(14, 105, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "deny (event-not-allowed): dry run: not cancelled");
    assert_eq!(
        guard.fake.gate.count_containing("/cancel")
            + guard.fake.gate.count_containing("/check-runs"),
        0
    );
    assert_eq!(
        guard.decisions("?outcome=deny").await[0]["rule"],
        "event-not-allowed"
    );
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["mode"], "dry-run");
}

async fn a_missed_workflow_run_is_fetched(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            facts_deadline: Duration::from_secs(4),
            ..Options::default()
        },
    )
    .await;
    // GitHub's REST answer for a run's attempt has the shape of the event's `workflow_run`.
    let run = workflow_run(15, "push", REPO)["workflow_run"].clone();
    guard.fake.state.lock().unwrap().runs.insert((15, 1), run);
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(15, 106, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "allow");
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(15, 107, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "allow");
    // Fetched once, then remembered; the roles were read once, ahead of any job.
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("GET /repos/{REPO}/actions/runs/15/attempts/1")),
        1
    );
    assert_eq!(guard.fake.gate.count_containing("/collaborators"), 1);
    // A run GitHub does not know cannot be decided: stored and waiting, then, past its
    // deadline, denied `facts-unavailable` and cancelled. Never let through.
    let (status, message) = guard
        .deliver(
            "workflow_job",
            "job-3",
            &queued_job(16, 108, &["gpu-large"]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    assert!(
        message.contains("waiting for attempt 1 of run 16"),
        "{message}"
    );
    let denied = guard.decisions_until("?outcome=deny", 1).await;
    assert_eq!(denied.len(), 1, "never decided");
    assert_eq!(denied[0]["rule"], "facts-unavailable");
    assert!(
        denied[0]["message"].as_str().unwrap().contains("Re-run"),
        "{}",
        denied[0]
    );
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("POST /repos/{REPO}/actions/runs/16/cancel")),
        1
    );
}

async fn a_completed_job_is_counted_once(backend: Backend) {
    let guard = Guard::start(backend).await;
    let job = completed_job(17, 109, 3);
    let (_, message) = guard.deliver("workflow_job", "done-1", &job).await;
    assert_eq!(message, "3 minutes counted for example on gpu");
    // GitHub redelivers with a new delivery id: the job id still counts once.
    let (_, message) = guard.deliver("workflow_job", "done-2", &job).await;
    assert_eq!(message, "job counted before");
    let (status, usage) = guard.get("/api/v1/usage").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        usage["usage"],
        json!([{"project": "example", "resource": "gpu", "minutes": 3}])
    );
}

async fn an_exhausted_quota_denies_the_next_job(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver("workflow_run", "run-1", &workflow_run(18, "push", REPO))
        .await;
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(18, 110, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "allow");
    // The quota is 10 minutes a month; this job used 12.
    guard
        .deliver("workflow_job", "done-1", &completed_job(18, 110, 12))
        .await;
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(18, 111, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "deny (quota-exhausted): run cancelled");
    let denied = &guard.decisions("?outcome=deny").await[0];
    assert_eq!(denied["rule"], "quota-exhausted");
    let text = denied["message"].as_str().unwrap();
    assert!(
        text.contains("used 12 of its 10 minutes") && text.contains("resets on"),
        "{text}"
    );
}

async fn a_broken_reload_keeps_the_old_policy(backend: Backend) {
    let guard = Guard::start(backend).await;
    assert_eq!(
        guard.reload("not the token").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A grant of a resource that does not exist fails `check`.
    let broken = "project: example\ngrants:\n  - resource: tpu\n    granted: 2026-01-01\n";
    std::fs::write(guard.repo.path().join("grants/example.yml"), broken).unwrap();
    let (status, answer) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["status"], "degraded");
    let why = health["last_reload_error"].as_str().unwrap();
    assert!(
        why.contains("grants/example.yml") && why.contains("tpu"),
        "{why}"
    );
    // The old policy still decides.
    guard
        .deliver("workflow_run", "run-1", &workflow_run(19, "push", REPO))
        .await;
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(19, 112, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "allow");
    // A good repository (the grant removed) is taken, and the next job is judged by it.
    std::fs::remove_file(guard.repo.path().join("grants/example.yml")).unwrap();
    let (status, answer) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(
        (&health["status"], &health["last_reload_error"]),
        (&json!("ok"), &Value::Null)
    );
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(19, 113, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "deny (no-grant): run cancelled");
}

async fn shutdown_drains_requests_in_flight(backend: Backend) {
    let mut guard = Guard::start(backend).await;
    guard
        .deliver("workflow_run", "run-1", &workflow_run(20, "push", REPO))
        .await;
    // The roles changed: the next job waits for them, and GitHub is slow to give them.
    guard
        .fake
        .gate
        .delay("GET */collaborators", Duration::from_millis(500));
    guard.set_role(ACTOR, Some("maintain")).await;
    let job = queued_job(20, 114, &["gpu-large"]);
    let (answer, ()) = tokio::join!(guard.deliver("workflow_job", "job-1", &job), async {
        // Stop while the delivery waits for GitHub.
        tokio::time::sleep(Duration::from_millis(150)).await;
        guard.stop();
    });
    assert_eq!(answer, (StatusCode::OK, "allow".to_string()));
    let server = guard.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the guard stops once the request in flight is answered")
        .unwrap()
        .expect("the guard stops cleanly");
    assert!(
        guard
            .http
            .get(format!("{}/healthz", guard.base))
            .send()
            .await
            .is_err()
    );
}

/// The value of the sample `name` (with its labels, as printed) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn metrics_count_deliveries_decisions_and_minutes(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver("workflow_run", "run-1", &workflow_run(30, "push", REPO))
        .await;
    let job = queued_job(30, 300, &["gpu-large"]);
    assert_eq!(
        guard.deliver("workflow_job", "job-1", &job).await.1,
        "allow"
    );
    guard.deliver("workflow_job", "job-1", &job).await;
    // Someone who only reads the repository starts the next run.
    let mut run = workflow_run(31, "push", REPO);
    for who in ["actor", "triggering_actor"] {
        run["workflow_run"][who]["login"] = json!("a-reader");
        run["workflow_run"][who]["id"] = json!(4242);
    }
    guard.deliver("workflow_run", "run-2", &run).await;
    let (_, denied) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(31, 301, &["gpu-large"]),
        )
        .await;
    assert!(denied.starts_with("deny (user-not-allowed)"), "{denied}");
    guard
        .deliver("workflow_job", "done-1", &completed_job(30, 300, 4))
        .await;
    let page = guard.metrics().await;
    let want = [
        (
            r#"gatehouse_deliveries_total{event="workflow_run",outcome="processed"}"#,
            2.0,
        ),
        (
            r#"gatehouse_deliveries_total{event="workflow_job",outcome="processed"}"#,
            3.0,
        ),
        (
            r#"gatehouse_deliveries_total{event="workflow_job",outcome="duplicate"}"#,
            1.0,
        ),
        (r#"gatehouse_decisions_total{outcome="allow",rule=""}"#, 1.0),
        (
            r#"gatehouse_decisions_total{outcome="deny",rule="user-not-allowed"}"#,
            1.0,
        ),
        (r#"gatehouse_counted_minutes_total{resource="gpu"}"#, 4.0),
        (r#"gatehouse_month_minutes{resource="gpu"}"#, 4.0),
        ("gatehouse_webhook_duration_seconds_count", 6.0),
        ("gatehouse_decide_duration_seconds_count", 2.0),
        // Job 301 was denied and is queued until GitHub says it completed.
        (r#"gatehouse_jobs{resource="gpu",status="queued"}"#, 1.0),
    ];
    for (name, value) in want {
        assert_eq!(sample(&page, name), Some(value), "{name} in\n{page}");
    }
    // Deciding is a small part of answering.
    let decide = sample(&page, "gatehouse_decide_duration_seconds_sum").unwrap();
    let webhook = sample(&page, "gatehouse_webhook_duration_seconds_sum").unwrap();
    assert!(decide > 0.0 && decide < webhook, "{decide} vs {webhook}");
    // A refused delivery is counted too.
    let resp = guard
        .http
        .post(format!("{}/webhook", guard.base))
        .header("content-type", "application/json")
        .header("x-github-event", "ping")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let page = guard.metrics().await;
    assert_eq!(
        sample(
            &page,
            r#"gatehouse_deliveries_total{event="unverified",outcome="rejected"}"#
        ),
        Some(1.0),
        "{page}"
    );
}

async fn concurrency_per_resource_is_tracked(backend: Backend) {
    let guard = Guard::start(backend).await;
    let concurrency = || async {
        let (status, usage) = guard.get("/api/v1/usage").await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        usage["concurrency"].clone()
    };
    guard
        .deliver("workflow_run", "run-1", &workflow_run(40, "push", REPO))
        .await;
    for job in [400, 401] {
        let (_, m) = guard
            .deliver(
                "workflow_job",
                &format!("q-{job}"),
                &queued_job(40, job, &["gpu-large"]),
            )
            .await;
        assert_eq!(m, "allow");
    }
    assert_eq!(
        concurrency().await,
        json!([{"resource": "gpu", "queued": 2, "in_progress": 0}])
    );
    let (_, m) = guard
        .deliver("workflow_job", "p-400", &job_event("in_progress", 40, 400))
        .await;
    assert_eq!(m, "job in progress");
    assert_eq!(
        concurrency().await,
        json!([{"resource": "gpu", "queued": 1, "in_progress": 1}])
    );
    guard
        .deliver("workflow_job", "c-400", &completed_job(40, 400, 2))
        .await;
    // A late `in_progress` (GitHub does not promise order) does not bring job 400 back.
    guard
        .deliver(
            "workflow_job",
            "p-400-late",
            &job_event("in_progress", 40, 400),
        )
        .await;
    assert_eq!(
        concurrency().await,
        json!([{"resource": "gpu", "queued": 1, "in_progress": 0}])
    );
    let page = guard.metrics().await;
    assert_eq!(
        sample(&page, r#"gatehouse_jobs{resource="gpu",status="queued"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            r#"gatehouse_jobs{resource="gpu",status="in_progress"}"#
        ),
        Some(0.0),
        "{page}"
    );
    // A job on GitHub's runners is not tracked.
    guard
        .deliver(
            "workflow_job",
            "q-gh",
            &queued_job(40, 402, &["ubuntu-latest"]),
        )
        .await;
    assert_eq!(
        concurrency().await,
        json!([{"resource": "gpu", "queued": 1, "in_progress": 0}])
    );
}

/// Polls `/healthz` until `done` holds (at most 10 s).
async fn health_until(guard: &Guard, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = guard.get("/healthz").await;
        if done(&health) {
            return health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz never got there: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_changed_repository_is_reloaded_and_a_broken_one_refused(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            watch_interval: Some(Duration::from_millis(100)),
            ..Options::default()
        },
    )
    .await;
    let (_, health) = guard.get("/healthz").await;
    let first_load = health["policy"]["loaded_at"].clone();
    // A broken grant on disk: refused, the reason shown, the old policy kept.
    let broken = "project: example\ngrants:\n  - resource: tpu\n    granted: 2026-01-01\n";
    std::fs::write(guard.repo.path().join("grants/example.yml"), broken).unwrap();
    let health = health_until(&guard, |h| h["status"] == "degraded").await;
    let why = health["last_reload_error"].as_str().unwrap();
    assert!(
        why.contains("grants/example.yml") && why.contains("tpu"),
        "{why}"
    );
    assert_eq!(health["policy"]["loaded_at"], first_load);
    guard
        .deliver("workflow_run", "run-1", &workflow_run(50, "push", REPO))
        .await;
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(50, 500, &["gpu-large"]),
        )
        .await;
    assert_eq!(m, "allow");
    // The grant removed: taken without anyone asking, and the next job is judged by it.
    std::fs::remove_file(guard.repo.path().join("grants/example.yml")).unwrap();
    let health = health_until(&guard, |h| h["status"] == "ok").await;
    assert_ne!(health["policy"]["loaded_at"], first_load);
    assert_eq!(health["policy"]["grants"], 0);
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "job-2",
            &queued_job(50, 501, &["gpu-large"]),
        )
        .await;
    assert_eq!(m, "deny (no-grant): run cancelled");
}

async fn a_delivery_stored_but_not_processed_is_processed_at_start(backend: Backend) {
    let mut guard = Guard::start(backend).await;
    guard.halt().await;
    // What a process killed between storing and processing leaves behind.
    let store = Store::connect(&guard.db.url).await.unwrap();
    let mut at = 0;
    let mut stored = |id: &str, event: &str, body: &Value| {
        at += 1;
        Write::Delivery {
            delivery_id: id.into(),
            event: event.into(),
            received_at: format!("2026-01-01T00:00:0{at}.000000000Z"),
            body: serde_json::to_vec(body).unwrap().into(),
            processed: None,
        }
    };
    let writes = vec![
        // Oldest first: the run must be known before its job is decided.
        stored("run-1", "workflow_run", &workflow_run(60, "push", REPO)),
        stored(
            "job-1",
            "workflow_job",
            &queued_job(60, 600, &["gpu-large"]),
        ),
        stored("done-1", "workflow_job", &completed_job(60, 600, 5)),
    ];
    assert_eq!(store.commit(writes).await.unwrap(), vec![1, 1, 1]);
    drop(store);
    guard.launch().await;
    // Decided in the background once the roles are read.
    let decisions = guard.decisions_until("", 1).await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(
        (&decisions[0]["delivery_id"], &decisions[0]["outcome"]),
        (&json!("job-1"), &json!("allow"))
    );
    let (_, usage) = guard.get("/api/v1/usage?month=2026-01").await;
    // `completed_job` finishes now, so its minutes are in this month.
    let (_, now) = guard.get("/api/v1/usage").await;
    assert_eq!(usage["usage"], json!([]), "{usage}");
    assert_eq!(
        now["usage"],
        json!([{"project": "example", "resource": "gpu", "minutes": 5}])
    );
    // Processed once: a restart does not process them again, a redelivery is a duplicate.
    guard.halt().await;
    guard.launch().await;
    assert_eq!(guard.decisions("").await.len(), 1);
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(60, 600, &["gpu-large"]),
        )
        .await;
    assert_eq!(m, "duplicate delivery");
}

async fn a_timed_out_delivery_is_still_processed(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            limits: Limits {
                request_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            ..Options::default()
        },
    )
    .await;
    guard
        .deliver(
            "workflow_run",
            "run-1",
            &workflow_run(70, "pull_request_target", REPO),
        )
        .await;
    // A denial whose cancellation GitHub is slow to take.
    guard
        .fake
        .gate
        .delay("POST */cancel", Duration::from_millis(600));
    let body = serde_json::to_vec(&queued_job(70, 700, &["gpu-large"])).unwrap();
    let resp = guard
        .http
        .post(format!("{}/webhook", guard.base))
        .header("content-type", "application/json")
        .header("x-github-event", "workflow_job")
        .header("x-github-delivery", "slow-1")
        .header("x-hub-signature-256", guard.sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // Stored before the timeout, so processing went on in the background.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let decisions = guard.decisions("").await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["delivery_id"], "slow-1");
}

async fn two_replicas_never_process_a_delivery_twice(backend: Backend) {
    let mut a = Guard::start(backend).await;
    // The second replica: the same store and repository, its own port.
    let mut b = Guard::start(backend).await;
    b.halt().await;
    b.config = a.config.clone();
    b.fake = a.fake.clone();
    b.launch().await;
    a.deliver("workflow_run", "run-1", &workflow_run(80, "push", REPO))
        .await;
    // Every delivery goes to both replicas at once, as a retrying load balancer might.
    let mut processed = 0;
    let mut duplicates = 0;
    for i in 0..40 {
        let (id, event, body) = if i % 2 == 0 {
            (
                format!("q-{i}"),
                "workflow_job",
                queued_job(80, 800 + i, &["gpu-large"]),
            )
        } else {
            (
                format!("c-{i}"),
                "workflow_job",
                completed_job(80, 800 + i - 1, 1),
            )
        };
        let (ra, rb) = tokio::join!(a.deliver(event, &id, &body), b.deliver(event, &id, &body));
        for (status, message) in [ra, rb] {
            assert_eq!(status, StatusCode::OK, "{message}");
            if message == "duplicate delivery" {
                duplicates += 1;
            } else {
                processed += 1;
            }
        }
    }
    assert_eq!((processed, duplicates), (40, 40));
    assert_eq!(a.decisions("?limit=1000").await.len(), 20);
    let (_, usage) = b.get("/api/v1/usage").await;
    assert_eq!(
        usage["usage"],
        json!([{"project": "example", "resource": "gpu", "minutes": 20}])
    );
    a.halt().await;
    b.halt().await;
}

/// A database written by the first schema (no processed marks, no monthly totals, no
/// contexts): opening it adds them without processing its deliveries again or losing minutes.
async fn a_store_from_before_is_migrated_without_reprocessing(backend: Backend) {
    let db = Db::new(backend).await;
    let bytes = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    let old = [
        format!(
            "CREATE TABLE deliveries (delivery_id TEXT PRIMARY KEY, event TEXT NOT NULL,
             received_at TEXT NOT NULL, body {bytes} NOT NULL)"
        ),
        "CREATE TABLE decisions (id BIGINT, delivery_id TEXT NOT NULL, job_id BIGINT NOT NULL,
         run_id BIGINT NOT NULL, repository TEXT NOT NULL, project TEXT, resource TEXT,
         outcome TEXT NOT NULL, rule TEXT, message TEXT, decided_at TEXT NOT NULL)"
            .into(),
        "CREATE TABLE job_minutes (job_id BIGINT PRIMARY KEY, project TEXT NOT NULL,
         resource TEXT NOT NULL, day TEXT NOT NULL, minutes BIGINT NOT NULL)"
            .into(),
        "INSERT INTO deliveries VALUES ('old-1', 'ping', '2026-01-01T00:00:00Z', 'x')".into(),
        "INSERT INTO job_minutes VALUES (1, 'example', 'gpu', '2026-01-15', 7)".into(),
    ];
    let url = if db.url.starts_with("sqlite") {
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    {
        use sqlx::Connection;
        match backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                for stmt in &old {
                    sqlx::query(stmt).execute(&mut c).await.unwrap();
                }
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                for stmt in &old {
                    sqlx::query(stmt).execute(&mut c).await.unwrap();
                }
            }
        }
    }
    let store = Store::connect(&db.url).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.deliveries,
            counts.unprocessed,
            counts.job_minutes,
            counts.month_minutes,
            counts.day_minutes,
            counts.week_minutes,
        ),
        (1, 0, 7, 7, 7, 7)
    );
    // The weekly totals (this week's outliers) know the old job's week: 2026-01-15 was a
    // Thursday.
    assert_eq!(
        store
            .project_week_minutes("2026-01-12", "2026-01-13")
            .await
            .unwrap(),
        vec![("example".to_string(), "2026-01-12".to_string(), 7)]
    );
    assert_eq!(
        store.monthly_usage("2026-01").await.unwrap(),
        vec![("gpu".to_string(), "2026-01".to_string(), 7)]
    );
    assert_eq!(
        store.usage_of_month("2026-01").await.unwrap(),
        vec![gatehouse_server::store::UsageRow {
            project: "example".into(),
            resource: "gpu".into(),
            minutes: 7
        }]
    );
    // Opening it again changes nothing.
    drop(store);
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), counts);
}

fn minutes(job_id: i64, project: &str, resource: &str, day: &str, minutes: i64) -> Write {
    Write::Minutes {
        job_id,
        project: project.into(),
        resource: resource.into(),
        day: day.into(),
        minutes,
    }
}

async fn weekly_usage_is_told_per_project(backend: Backend) {
    use gatehouse_server::store::WeekUsage;
    let db = Db::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    store
        .commit(vec![
            minutes(1, "a", "gpu", "2026-11-02", 5),
            minutes(2, "a", "gpu", "2026-11-08", 7),
            minutes(3, "b", "gpu", "2026-11-04", 11),
            minutes(4, "a", "cpu", "2026-11-10", 2),
            // Outside [from, until).
            minutes(5, "a", "gpu", "2026-11-16", 13),
        ])
        .await
        .unwrap();
    let week = |week: &str, resource: &str, minutes| WeekUsage {
        week: week.into(),
        resource: resource.into(),
        minutes,
    };
    assert_eq!(
        store
            .weekly_usage_of_project("a", "2026-11-01", "2026-11-16")
            .await
            .unwrap(),
        vec![week("2026-11-02", "gpu", 12), week("2026-11-09", "cpu", 2)]
    );
    assert_eq!(
        store
            .weekly_usage_of_project("b", "2026-11-01", "2026-11-16")
            .await
            .unwrap(),
        vec![week("2026-11-02", "gpu", 11)]
    );
    assert!(
        store
            .weekly_usage_of_project("nobody", "2026-11-01", "2026-11-16")
            .await
            .unwrap()
            .is_empty()
    );
    // Every project together, as before.
    assert_eq!(
        store
            .weekly_usage("2026-11-01", "2026-11-16")
            .await
            .unwrap(),
        vec![week("2026-11-02", "gpu", 23), week("2026-11-09", "cpu", 2)]
    );
    // Each project's weeks, as this week's outliers read them: weeks starting in [from,
    // until), so job 5 (the Monday 2026-11-16) is not among them.
    let mut weeks = store
        .project_week_minutes("2026-11-02", "2026-11-16")
        .await
        .unwrap();
    weeks.sort();
    let row = |p: &str, w: &str, m| (p.to_string(), w.to_string(), m);
    assert_eq!(
        weeks,
        vec![
            row("a", "2026-11-02", 12),
            row("a", "2026-11-09", 2),
            row("b", "2026-11-02", 11)
        ]
    );
    assert!(store.counts().await.unwrap().totals_agree());
}

/// A dashboard's heaviest users of a resource in a month: the most minutes first, ties by
/// name, no more than asked for, and every project when fewer used it.
async fn the_heaviest_users_of_a_month_are_read_from_its_totals(backend: Backend) {
    let db = Db::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    store
        .commit(vec![
            minutes(1, "c", "gpu", "2026-11-02", 30),
            minutes(2, "a", "gpu", "2026-11-03", 10),
            minutes(3, "b", "gpu", "2026-11-04", 10),
            minutes(4, "d", "gpu", "2026-11-05", 10),
            minutes(5, "a", "gpu", "2026-11-20", 15),
            // Another month, another resource.
            minutes(6, "e", "gpu", "2026-10-31", 500),
            minutes(7, "f", "cpu", "2026-11-02", 600),
        ])
        .await
        .unwrap();
    let top = |n| {
        let store = &store;
        async move {
            store
                .top_projects_of_month("2026-11", "gpu", n)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.project, r.minutes))
                .collect::<Vec<_>>()
        }
    };
    let p = |name: &str, m| (name.to_string(), m);
    assert_eq!(top(2).await, vec![p("c", 30), p("a", 25)]);
    // b and d tie for third place: the name decides.
    assert_eq!(top(3).await, vec![p("c", 30), p("a", 25), p("b", 10)]);
    assert_eq!(
        top(10).await,
        vec![p("c", 30), p("a", 25), p("b", 10), p("d", 10)]
    );
    assert_eq!(
        store
            .month_minutes_by_resource("2026-11")
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Many units at once, as the SQLite writer groups them into one batch: a delivery sent twice
/// is stored and counted once, whichever copy wins; a job's status only moves forward even
/// when its updates share a batch.
async fn concurrent_units_with_duplicates_apply_as_if_one_after_the_other(backend: Backend) {
    use gatehouse_server::store::JobStatus;
    let db = Db::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let at = gatehouse_server::store::now_text();
    let unit = |k: i64| {
        let id = format!("d{}", k % 100);
        vec![
            Write::Delivery {
                delivery_id: id.clone(),
                event: "workflow_job".into(),
                received_at: at.clone(),
                body: axum::body::Bytes::from_static(b"{}"),
                processed: None,
            },
            minutes(k % 100, "p", "gpu", "2026-11-02", 1 + k % 100),
            Write::JobStatus {
                job_id: k % 100,
                project: Some("p".into()),
                resource: "gpu".into(),
                status: if k < 100 {
                    JobStatus::Completed
                } else {
                    JobStatus::Queued
                },
                at: at.clone(),
            },
            Write::Processed {
                delivery_id: id,
                at: at.clone(),
                outcome: "counted".into(),
            },
        ]
    };
    let answers = futures_join_all((0..200).map(|k| {
        let store = store.clone();
        let writes = unit(k);
        async move { store.commit_if_new(writes).await.unwrap() }
    }))
    .await;
    let applied: Vec<_> = answers.iter().flatten().collect();
    assert_eq!(applied.len(), 100, "{answers:?}");
    for rows in &applied {
        assert_eq!(rows[..2], [1, 1], "{rows:?}");
        assert_eq!(rows[3], 1, "{rows:?}");
    }
    let counts = store.counts().await.unwrap();
    let total: i64 = (1..=100).sum();
    assert_eq!(
        (counts.deliveries, counts.unprocessed, counts.job_minutes,),
        (100, 0, total)
    );
    assert!(counts.totals_agree(), "{counts:?}");
    // Units named a job once each (a duplicate's unit was left out whole), so which status a
    // job has depends on which copy came first; nothing else is left half done.
    let active = store.active_jobs().await.unwrap();
    let queued: i64 = active.iter().map(|a| a.queued).sum();
    assert!((0..=100).contains(&queued), "{active:?}");
    // A job queued after it completed stays completed.
    store
        .commit(vec![
            Write::JobStatus {
                job_id: 1000,
                project: None,
                resource: "gpu".into(),
                status: JobStatus::Completed,
                at: at.clone(),
            },
            Write::JobStatus {
                job_id: 1000,
                project: None,
                resource: "gpu".into(),
                status: JobStatus::Queued,
                at: at.clone(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.active_jobs().await.unwrap(), active);
}

// ---------------------------------------------------------------------------------------------
// Connection limits, over raw sockets (nothing here depends on the store: SQLite only)

fn limited(limits: Limits) -> Options {
    Options {
        limits,
        ..Options::default()
    }
}

fn addr_of(guard: &Guard) -> String {
    guard.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn a_client_sending_headers_slowly_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let guard = Guard::with(
        Backend::Sqlite,
        limited(Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        }),
    )
    .await;
    let stream = tokio::net::TcpStream::connect(addr_of(&guard))
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        write
            .write_all(b"POST /webhook HTTP/1.1\r\nHost: localhost\r\n")
            .await?;
        // One header every 100 ms, never the blank line that ends them.
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            write
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .await?;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(4), read.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    assert!(
        closed.is_ok(),
        "the slow client still held its connection after 4 s"
    );
    assert!(took < Duration::from_secs(2), "cut off only after {took:?}");
    trickle.abort();
    // The server goes on serving others.
    let (status, _) = guard.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let guard = Guard::with(
        Backend::Sqlite,
        limited(Limits {
            max_header_bytes: 16 * 1024,
            ..Limits::default()
        }),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(addr_of(&guard))
        .await
        .unwrap();
    let big = "a".repeat(64 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A request of ordinary size is still served.
    let (status, _) = guard.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn too_many_concurrent_requests_are_turned_away_without_losing_any() {
    let guard = Guard::with(
        Backend::Sqlite,
        limited(Limits {
            max_connections: 16,
            max_in_flight: 4,
            ..Limits::default()
        }),
    )
    .await;
    const N: i64 = 120;
    // One run per job, each denied: every job's answer waits for a slow cancellation.
    for i in 0..N {
        let run = workflow_run(900 + i, "pull_request_target", REPO);
        guard
            .deliver("workflow_run", &format!("run-{i}"), &run)
            .await;
    }
    guard
        .fake
        .gate
        .delay("POST */cancel", Duration::from_millis(100));
    let answers = futures_join_all((0..N).map(|i| {
        let job = queued_job(900 + i, 9000 + i, &["gpu-large"]);
        let guard = &guard;
        async move {
            (
                i,
                guard
                    .deliver("workflow_job", &format!("job-{i}"), &job)
                    .await,
            )
        }
    }))
    .await;
    let mut refused = Vec::new();
    for (i, (status, message)) in &answers {
        match *status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => refused.push(*i),
            other => panic!("job {i}: {other} {message}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "four at a time, yet nothing was turned away"
    );
    // What was turned away was not acknowledged, and not stored: sent again, it is processed.
    assert_eq!(
        guard.decisions("?limit=1000").await.len(),
        (N as usize) - refused.len()
    );
    guard
        .fake
        .gate
        .delay("POST */cancel", Duration::from_millis(0));
    for i in refused {
        let job = queued_job(900 + i, 9000 + i, &["gpu-large"]);
        let (status, m) = guard
            .deliver("workflow_job", &format!("job-{i}"), &job)
            .await;
        assert_eq!(status, StatusCode::OK, "{m}");
        assert_ne!(m, "duplicate delivery");
    }
    assert_eq!(guard.decisions("?limit=1000").await.len(), N as usize);
    let (status, _) = guard.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

/// A load balancer's health check must not read an overloaded guard as a dead one: with every
/// slot for requests taken, the API is turned away but `/healthz` and `/readyz` still answer.
#[tokio::test]
async fn health_checks_answer_while_requests_are_turned_away() {
    let guard = Guard::with(
        Backend::Sqlite,
        limited(Limits {
            max_in_flight: 1,
            ..Limits::default()
        }),
    )
    .await;
    let run = workflow_run(700, "pull_request_target", REPO);
    guard.deliver("workflow_run", "run-700", &run).await;
    guard
        .fake
        .gate
        .delay("POST */cancel", Duration::from_millis(1500));
    let job = queued_job(700, 7000, &["gpu-large"]);
    let busy = guard.deliver("workflow_job", "job-7000", &job);
    let probe = async {
        // Wait until the job holds the only slot.
        let mut shed = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if guard.get("/api/v1/usage").await.0 == StatusCode::SERVICE_UNAVAILABLE {
                shed = true;
                break;
            }
        }
        assert!(shed, "the API was never turned away with one slot taken");
        for path in ["/healthz", "/readyz"] {
            let (status, body) = guard.get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    };
    let ((status, message), ()) = tokio::join!(busy, probe);
    assert_eq!(status, StatusCode::OK, "{message}");
}

/// Runs futures concurrently and collects their outputs in order (tokio has no join_all).
async fn futures_join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap()));
    out
}

/// A guard catching up on webhook `hook_id` every `every`, whose fake GitHub sends the
/// deliveries it is asked for to it.
async fn catching_up(backend: Backend, hook_id: u64, every: Duration) -> Guard {
    let guard = Guard::with(
        backend,
        Options {
            catch_up: Some(CatchUp {
                hook_id,
                every,
                window: Duration::from_secs(3 * 24 * 3600),
            }),
            ..Options::default()
        },
    )
    .await;
    guard.fake.state.lock().unwrap().redeliver_to =
        Some((guard.base.clone(), guard.secret.clone()));
    // The guard's own pass at start looks over the whole window: a test that lists deliveries
    // before it has finished would race it (it could ask for them first, or read the list after
    // the test changed it). Its report in `/healthz` says it is done.
    health_until(&guard, |h| !h["catch_up"].is_null()).await;
    guard
}

/// GitHub does not send a failed delivery again by itself. The guard reads the hook's recent
/// deliveries (page after page, back to the window's start), asks for each `workflow_run` and
/// `workflow_job` delivery it does not hold, once per delivery however many attempts GitHub
/// lists, and the redeliveries are processed like any other: the missed queued job is decided
/// and the missed completed job counted. A second pass finds nothing missing; a token that may
/// not read the hook is reported in the answer and in `/healthz`.
async fn missed_deliveries_are_asked_for_again(backend: Backend) {
    let guard = catching_up(backend, 42, Duration::from_secs(3600)).await;
    guard
        .deliver("workflow_run", "run-90", &workflow_run(90, "push", REPO))
        .await;
    let now = jiff::Timestamp::now();
    let ago = |mins: i64| (now - jiff::SignedDuration::from_mins(mins)).to_string();
    let listed = |id: u64, guid: &str, event: &'static str, at: String, body: Value| Delivery {
        listed: json!({ "id": id, "guid": guid, "delivered_at": at, "event": event,
                "redelivery": false, "status_code": 502, "action": null }),
        event: event.to_string(),
        body,
    };
    guard.fake.state.lock().unwrap().hook_deliveries = vec![
        listed(
            5,
            "job-901-done",
            "workflow_job",
            ago(1),
            completed_job(90, 901, 7),
        ),
        listed(
            4,
            "job-901-queued",
            "workflow_job",
            ago(2),
            queued_job(90, 901, &["gpu-large"]),
        ),
        // A role change is consumed too: missed, it is asked for again.
        listed(7, "member-1", "member", ago(2), {
            let mut e = fixture("member.edited.json");
            e["repository"]["full_name"] = json!(REPO);
            e
        }),
        listed(
            3,
            "ping-1",
            "ping",
            ago(3),
            json!({ "zen": "Keep it logically awesome." }),
        ),
        listed(
            2,
            "run-90",
            "workflow_run",
            ago(4),
            workflow_run(90, "push", REPO),
        ),
        // An earlier failed attempt of the same queued delivery.
        listed(
            6,
            "job-901-queued",
            "workflow_job",
            ago(5),
            queued_job(90, 901, &["gpu-large"]),
        ),
        listed(
            1,
            "ancient",
            "workflow_job",
            ago(5 * 24 * 60),
            queued_job(91, 911, &["gpu-large"]),
        ),
    ];

    let (status, report) = guard.catch_up().await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["listed"], 4, "{report}");
    assert_eq!(report["missing"], 3, "{report}");
    assert_eq!(report["redelivered"], 3, "{report}");
    assert!(report["error"].is_null(), "{report}");
    let attempts = |id: u64| {
        guard.fake.gate.count_exact(&format!(
            "POST /orgs/octo-org/hooks/42/deliveries/{id}/attempts"
        ))
    };
    assert_eq!((attempts(4), attempts(5), attempts(7)), (1, 1, 1));
    assert_eq!(attempts(1) + attempts(2) + attempts(3) + attempts(6), 0);
    // Four pages of two were read, the last one reaching past the window.
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact("GET /orgs/octo-org/hooks/42/deliveries"),
        4 + 1
    );

    let mut decided = Vec::new();
    for _ in 0..100 {
        decided = guard.decisions("").await;
        if !decided.is_empty()
            && guard
                .metrics()
                .await
                .contains("gatehouse_counted_minutes_total{resource=\"gpu\"} 7")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["delivery_id"], "job-901-queued");
    assert_eq!(decided[0]["outcome"], "allow");
    let metrics = guard.metrics().await;
    assert!(
        metrics.contains("gatehouse_counted_minutes_total{resource=\"gpu\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_redeliveries_requested_total 3"),
        "{metrics}"
    );

    let (status, again) = guard.catch_up().await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["missing"].clone(), again["redelivered"].clone()),
        (json!(0), json!(0))
    );

    guard.fake.state.lock().unwrap().hook_status = Some(403);
    let (status, failed) = guard.catch_up().await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("403") && error.contains("admin:org_hook"),
        "{error}"
    );
    assert!(!error.contains("ghp_test_token"), "{error}");
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["catch_up"]["error"], failed["error"], "{health}");
}

/// After the pass at start, each periodic pass looks back only to a little (two minutes)
/// before the previous one; `POST /admin/catch-up` looks at the whole window.
async fn periodic_catch_up_looks_back_to_the_previous_pass(backend: Backend) {
    // The pass at start, over the whole window, has seen an empty list.
    let guard = catching_up(backend, 7, Duration::from_millis(200)).await;
    let now = jiff::Timestamp::now();
    let ago = |mins: i64| (now - jiff::SignedDuration::from_mins(mins)).to_string();
    let entry = |id: u64, at: String, run: i64| Delivery {
        listed: json!({ "id": id, "guid": format!("run-{run}"), "delivered_at": at,
                "event": "workflow_run" }),
        event: "workflow_run".to_string(),
        body: workflow_run(run, "push", REPO),
    };
    guard.fake.state.lock().unwrap().hook_deliveries =
        vec![entry(2, ago(1), 92), entry(1, ago(4), 91)];
    let attempts = |id: u64| {
        guard.fake.gate.count_exact(&format!(
            "POST /orgs/octo-org/hooks/7/deliveries/{id}/attempts"
        ))
    };
    for _ in 0..100 {
        if attempts(2) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // More periodic passes: the one from before the previous pass is never asked for. (The
    // recent one is asked for until it is stored, which a slow machine may take a pass for.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(attempts(2) >= 1);
    assert_eq!(attempts(1), 0);
    let (status, report) = guard.catch_up().await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["redelivered"], 1, "{report}");
    assert_eq!(attempts(1), 1);
}

// ---------------------------------------------------------------------------------------------
// Facts: the decision path never calls GitHub; roles are held ahead of time; a missing fact
// is waited for, then denied, never let through (issue "The guard fails closed").

/// A run of `REPO` whose people are `actor` and `triggering` (attempt `attempt`).
fn run_by(run_id: i64, attempt: i64, actor: (&str, i64), triggering: (&str, i64)) -> Value {
    let mut v = workflow_run(run_id, "push", REPO);
    v["workflow_run"]["run_attempt"] = json!(attempt);
    v["workflow_run"]["actor"]["login"] = json!(actor.0);
    v["workflow_run"]["actor"]["id"] = json!(actor.1);
    v["workflow_run"]["triggering_actor"]["login"] = json!(triggering.0);
    v["workflow_run"]["triggering_actor"]["id"] = json!(triggering.1);
    v
}

fn queued_attempt(run_id: i64, attempt: i64, job_id: i64) -> Value {
    let mut v = queued_job(run_id, job_id, &["gpu-large"]);
    v["workflow_job"]["run_attempt"] = json!(attempt);
    v
}

/// A queued job of a repository other than `REPO`.
fn queued_elsewhere(repository: &str, run_id: i64, job_id: i64) -> Value {
    let mut v = queued_job(run_id, job_id, &["gpu-large"]);
    v["repository"]["full_name"] = json!(repository);
    v
}

const OUTSIDER: (&str, i64) = ("drive-by", 7_000_001);
const MAINTAINER: (&str, i64) = ("a-maintainer", 7_000_002);

on_both!(
    rules_that_need_no_fact_deny_without_reading_github,
    roles_are_read_once_per_repository_never_per_person,
    a_missing_fact_waits_then_denies_facts_unavailable,
    a_rate_limited_lookup_waits_for_the_reset,
    without_a_token_the_guard_calls_github_not_at_all,
    a_role_change_seen_by_one_replica_is_seen_by_all,
    webhooks_that_change_roles_make_the_facts_stale,
    every_delivery_order_of_a_run_and_its_rerun_gives_the_same_decisions,
    a_rerun_whose_attempt_was_missed_is_read_from_github,
    a_forks_pull_request_is_judged_by_the_forks_owner,
    a_cancel_github_refuses_is_tried_again,
);

async fn rules_that_need_no_fact_deny_without_reading_github(backend: Backend) {
    let guard = Guard::start(backend).await;
    // GitHub answers nothing but errors from now on, and the roles it held are stale.
    guard.fake.gate.fail("GET /repos*", &[500; 1000]);
    guard.set_role(ACTOR, Some("maintain")).await;
    // A project without a grant: denied on the ledger alone, before its run is known.
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_elsewhere("octo-org/other-feedstock", 501, 5001),
        )
        .await;
    assert_eq!(m, "deny (no-grant): run cancelled");
    // `pull_request_target`: denied on the run alone, whatever the roles.
    guard
        .deliver(
            "workflow_run",
            "run-2",
            &workflow_run(502, "pull_request_target", REPO),
        )
        .await;
    let (_, m) = guard
        .deliver("workflow_job", "job-2", &queued_attempt(502, 1, 5002))
        .await;
    assert_eq!(m, "deny (event-not-allowed): run cancelled");
    // Neither asked GitHub anything about the job: no run, no roles of another repository.
    assert_eq!(
        guard
            .fake
            .gate
            .count_containing("GET /repos/octo-org/other-feedstock"),
        0
    );
    assert_eq!(guard.fake.gate.count_containing("/attempts"), 0);
    assert_eq!(guard.fake.gate.count_containing("/cancel"), 2);
}

async fn roles_are_read_once_per_repository_never_per_person(backend: Backend) {
    let guard = Guard::start(backend).await;
    // Twenty strangers start runs: each is judged on the one list read ahead of time, and
    // nobody can make the guard spend a request per person.
    for i in 0..20 {
        let who = ("stranger", 8_000_000 + i);
        guard
            .deliver(
                "workflow_run",
                &format!("run-{i}"),
                &run_by(600 + i, 1, who, who),
            )
            .await;
        let (_, m) = guard
            .deliver(
                "workflow_job",
                &format!("job-{i}"),
                &queued_attempt(600 + i, 1, 6000 + i),
            )
            .await;
        assert_eq!(m, "deny (user-not-allowed): run cancelled");
    }
    // And the maintainer, on the same list.
    guard
        .deliver("workflow_run", "run-m", &run_by(700, 1, ACTOR, ACTOR))
        .await;
    let (_, m) = guard
        .deliver("workflow_job", "job-m", &queued_attempt(700, 1, 7000))
        .await;
    assert_eq!(m, "allow");
    assert_eq!(guard.fake.gate.count_containing("/collaborators"), 1);
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["role_facts"]["fresh"], 1, "{health}");
}

async fn a_missing_fact_waits_then_denies_facts_unavailable(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            facts_deadline: Duration::from_secs(5),
            ..Options::default()
        },
    )
    .await;
    guard
        .deliver("workflow_run", "run-1", &run_by(800, 1, ACTOR, ACTOR))
        .await;
    // The roles changed, and GitHub fails every time the guard asks for them.
    guard.fake.gate.fail("GET /repos*", &[500; 1000]);
    guard.set_role(ACTOR, Some("maintain")).await;
    let started = std::time::Instant::now();
    let (status, m) = guard
        .deliver("workflow_job", "job-1", &queued_attempt(800, 1, 8000))
        .await;
    // Not processed with an error: stored and waiting, as /healthz and /metrics say.
    assert_eq!(status, StatusCode::ACCEPTED, "{m}");
    assert!(m.contains("waiting for the roles"), "{m}");
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["pending"]["count"], 1, "{health}");
    let page = guard.metrics().await;
    assert_eq!(
        sample(&page, "gatehouse_unprocessed_deliveries"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "gatehouse_waiting_deliveries"),
        Some(1.0),
        "{page}"
    );
    // Past the deadline: denied, cancelled, explained; never allowed.
    let denied = guard.decisions_until("?outcome=deny", 1).await;
    assert_eq!(denied.len(), 1, "never decided");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(denied[0]["rule"], "facts-unavailable");
    assert!(
        denied[0]["message"].as_str().unwrap().contains("roles"),
        "{}",
        denied[0]
    );
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("POST /repos/{REPO}/actions/runs/800/cancel")),
        1
    );
    assert!(guard.decisions("?outcome=allow").await.is_empty());
    let health = health_until(&guard, |h| h["pending"]["count"] == 0).await;
    assert!(
        health["role_facts"]["last_error"].as_str().is_some(),
        "{health}"
    );
    let page = guard.metrics().await;
    assert_eq!(
        sample(&page, r#"gatehouse_facts_unavailable_total{fact="roles"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "gatehouse_unprocessed_deliveries"),
        Some(0.0),
        "{page}"
    );
}

async fn a_rate_limited_lookup_waits_for_the_reset(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver("workflow_run", "run-1", &run_by(810, 1, ACTOR, ACTOR))
        .await;
    // The first fetch (at start) is done, so the 403 falls on the fetch the role change asks
    // for, which the decision then needs.
    health_until(&guard, |h| h["role_facts"]["fresh"] == 1).await;
    let before = guard.fake.gate.count_containing("/collaborators");
    // One 403 with the rate limit used up until the next second, then the real answer.
    guard
        .fake
        .gate
        .fail(&format!("GET /repos/{REPO}/collaborators"), &[403]);
    guard.set_role(ACTOR, Some("maintain")).await;
    let (status, m) = guard
        .deliver("workflow_job", "job-1", &queued_attempt(810, 1, 8100))
        .await;
    assert_eq!((status, m.as_str()), (StatusCode::OK, "allow"));
    assert!(
        guard.fake.gate.count_containing("/collaborators") >= before + 2,
        "asked again after the reset"
    );
}

async fn without_a_token_the_guard_calls_github_not_at_all(backend: Backend) {
    let guard = Guard::with(
        backend,
        Options {
            token: false,
            facts_deadline: Duration::from_secs(2),
            ..Options::default()
        },
    )
    .await;
    let (_, health) = guard.get("/healthz").await;
    assert_eq!(health["github"]["token"], false, "{health}");
    assert!(
        health["github"]["note"]
            .as_str()
            .unwrap()
            .contains("facts-unavailable")
    );
    guard
        .deliver("workflow_run", "run-1", &run_by(820, 1, ACTOR, ACTOR))
        .await;
    // What needs no role is decided; what needs one is denied at once (it can never come).
    let (_, m) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_elsewhere("octo-org/other-feedstock", 821, 8201),
        )
        .await;
    assert_eq!(m, "deny (no-grant): no GitHub token: not cancelled");
    let (_, m) = guard
        .deliver("workflow_job", "job-2", &queued_attempt(820, 1, 8200))
        .await;
    assert_eq!(
        m,
        "deny (facts-unavailable): no GitHub token: not cancelled"
    );
    let total = guard.fake.gate.total();
    assert_eq!(total, 0, "{:?}", guard.fake.gate.calls());
}

async fn a_role_change_seen_by_one_replica_is_seen_by_all(backend: Backend) {
    let mut a = Guard::start(backend).await;
    let mut b = Guard::start(backend).await;
    b.halt().await;
    b.config = a.config.clone();
    b.fake = a.fake.clone();
    b.launch().await;
    a.deliver("workflow_run", "run-1", &run_by(830, 1, ACTOR, ACTOR))
        .await;
    let (_, m) = b
        .deliver("workflow_job", "job-1", &queued_attempt(830, 1, 8300))
        .await;
    assert_eq!(m, "allow");
    // The maintainer is removed from the repository; GitHub tells replica A only.
    a.set_role(ACTOR, None).await;
    // Replica B reads what A stored within a second, and judges the next job by it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, m) = b
        .deliver("workflow_job", "job-2", &queued_attempt(830, 1, 8301))
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
    a.halt().await;
    b.halt().await;
}

async fn webhooks_that_change_roles_make_the_facts_stale(backend: Backend) {
    let guard = Guard::start(backend).await;
    let fresh = || async {
        let (_, health) = guard.get("/healthz").await;
        health["role_facts"]["fresh"].as_u64().unwrap()
    };
    let stale_then_fresh = |event: &'static str, body: Value| {
        let guard = &guard;
        async move {
            static N: AtomicU32 = AtomicU32::new(0);
            let id = format!("{event}-{}", N.fetch_add(1, Ordering::Relaxed));
            let calls = guard.fake.gate.count_containing("/collaborators");
            let (status, m) = guard.deliver(event, &id, &body).await;
            assert_eq!(status, StatusCode::OK, "{event}: {m}");
            // Read again (once the change is stored and the fetch done).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while guard.fake.gate.count_containing("/collaborators") == calls {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{event} did not make the roles stale: {m}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            m
        }
    };
    health_until(&guard, |h| h["role_facts"]["fresh"] == 1).await;
    // A collaborator of the repository changed.
    let mut e = fixture("member.edited.json");
    e["repository"]["full_name"] = json!(REPO);
    stale_then_fresh("member", e).await;
    // The repository was renamed (to its current name): both names are stale.
    let mut e = fixture("repository.renamed.json");
    e["repository"]["full_name"] = json!(REPO);
    let m = stale_then_fresh("repository", e).await;
    assert!(m.contains("octo-org/example-feedstock"), "{m}");
    // A team was given the repository.
    let mut e = fixture("team.added_to_repository.json");
    e["repository"]["full_name"] = json!(REPO);
    stale_then_fresh("team", e).await;
    // Someone left a team: every repository that lists them.
    let mut e = fixture("membership.removed.json");
    e["member"]["login"] = json!(ACTOR.0);
    e["member"]["id"] = json!(ACTOR.1);
    let m = stale_then_fresh("membership", e).await;
    assert!(m.contains("octo-org/example-feedstock"), "{m}");
    // ... of a team that was deleted (GitHub names it by id and name only, no slug).
    let mut e = fixture("membership.removed.json");
    e["member"]["login"] = json!(ACTOR.0);
    e["member"]["id"] = json!(ACTOR.1);
    e["team"] = json!({ "id": 3253328, "name": "github", "deleted": true });
    let m = stale_then_fresh("membership", e).await;
    assert!(m.contains("octo-org/example-feedstock"), "{m}");
    // Someone joined a team: the team's repositories, listed by GitHub.
    guard
        .fake
        .state
        .lock()
        .unwrap()
        .team_repos
        .insert("github".into(), vec![REPO.into()]);
    stale_then_fresh("membership", fixture("membership.added.json")).await;
    // (Listed for both membership changes. Waited for: on a loaded machine another fetch of
    // the collaborators, a periodic one, can end `stale_then_fresh` before the listing.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while guard.fake.gate.count_containing("/teams/github/repos") < 2
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(guard.fake.gate.count_containing("/teams/github/repos"), 2);
    // Someone joined the organisation: the base permission may reach anywhere.
    let m = stale_then_fresh("organization", fixture("organization.member_added.json")).await;
    assert!(m.contains("every repository"), "{m}");
    health_until(&guard, |h| h["role_facts"]["fresh"] == 1).await;
    assert_eq!(fresh().await, 1);
}

async fn every_delivery_order_of_a_run_and_its_rerun_gives_the_same_decisions(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard.fake.role(OUTSIDER, "read");
    // A maintainer's run (attempt 1) and its re-run by someone who only reads (attempt 2),
    // each with one job, delivered in every order; attempt 1's run event is delivered a second
    // time at the end, as GitHub's redelivery would, and must not change attempt 2.
    let orders = permutations(4);
    for (n, order) in orders.iter().enumerate() {
        let run = 900 + n as i64;
        let deliveries = [
            ("workflow_run", run_by(run, 1, ACTOR, ACTOR)),
            ("workflow_job", queued_attempt(run, 1, run * 10 + 1)),
            ("workflow_run", run_by(run, 2, ACTOR, OUTSIDER)),
            ("workflow_job", queued_attempt(run, 2, run * 10 + 2)),
        ];
        let mut sends = Vec::new();
        for &i in order {
            let (event, body) = deliveries[i].clone();
            // Sent in this order; answers are not awaited one by one.
            sends.push(guard.deliver_detached(event, &format!("order-{n}-{i}"), &body));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for send in sends {
            let (status, m) = send.await.unwrap();
            assert!(status.is_success(), "{status} {m}");
        }
        guard
            .deliver(
                "workflow_run",
                &format!("order-{n}-again"),
                &run_by(run, 1, ACTOR, ACTOR),
            )
            .await;
    }
    let decisions = guard.decisions_until("?limit=1000", 2 * orders.len()).await;
    assert_eq!(decisions.len(), 2 * orders.len());
    for d in decisions {
        let job = d["job_id"].as_i64().unwrap();
        let want = if job % 10 == 1 {
            (Value::from("allow"), Value::Null)
        } else {
            (Value::from("deny"), Value::from("user-not-allowed"))
        };
        assert_eq!((d["outcome"].clone(), d["rule"].clone()), want, "{d}");
    }
}

/// Every ordering of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

async fn a_rerun_whose_attempt_was_missed_is_read_from_github(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard.fake.role(OUTSIDER, "read");
    guard
        .deliver("workflow_run", "run-1", &run_by(950, 1, ACTOR, ACTOR))
        .await;
    // Attempt 2's event never came; GitHub knows it was re-run by someone who only reads.
    let attempt2 = run_by(950, 2, ACTOR, OUTSIDER)["workflow_run"].clone();
    guard
        .fake
        .state
        .lock()
        .unwrap()
        .runs
        .insert((950, 2), attempt2);
    guard
        .deliver("workflow_job", "job-2", &queued_attempt(950, 2, 9502))
        .await;
    let denied = guard.decisions_until("?outcome=deny", 1).await;
    assert_eq!(denied[0]["rule"], "user-not-allowed", "{denied:?}");
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("GET /repos/{REPO}/actions/runs/950/attempts/2")),
        1
    );
    let d = &guard.decisions("?outcome=deny").await[0];
    assert!(d["message"].as_str().unwrap().contains(OUTSIDER.0), "{d}");
}

async fn a_forks_pull_request_is_judged_by_the_forks_owner(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard.set_role(MAINTAINER, Some("write")).await;
    // A pull request from `owner`'s fork, started by the maintainer of the repository.
    let fork_run = |run_id: i64, owner: (&str, i64)| {
        let mut v = run_by(run_id, 1, ACTOR, ACTOR);
        v["workflow_run"]["event"] = json!("pull_request");
        v["workflow_run"]["head_repository"]["full_name"] =
            json!(format!("{}/example-feedstock", owner.0));
        v["workflow_run"]["head_repository"]["owner"]["login"] = json!(owner.0);
        v["workflow_run"]["head_repository"]["owner"]["id"] = json!(owner.1);
        v
    };
    guard
        .deliver("workflow_run", "run-1", &fork_run(960, MAINTAINER))
        .await;
    let (_, m) = guard
        .deliver("workflow_job", "job-1", &queued_attempt(960, 1, 9600))
        .await;
    assert_eq!(m, "allow", "a maintainer's own fork");
    guard
        .deliver("workflow_run", "run-2", &fork_run(961, OUTSIDER))
        .await;
    let (_, m) = guard
        .deliver("workflow_job", "job-2", &queued_attempt(961, 1, 9610))
        .await;
    assert_eq!(
        m, "deny (user-not-allowed): run cancelled",
        "an outsider's fork"
    );
    let d = &guard.decisions("?outcome=deny").await[0];
    let text = d["message"].as_str().unwrap();
    assert!(
        text.contains("fork owner") && text.contains(OUTSIDER.0),
        "{text}"
    );
    // The fork was deleted: GitHub sends no head repository (which its description does not
    // foresee: `head_repository` is required there). Nobody vouches for the code.
    let mut gone = fork_run(962, MAINTAINER);
    gone["workflow_run"]["head_repository"] = Value::Null;
    guard.deliver_as_is("workflow_run", "run-3", &gone).await;
    let (_, m) = guard
        .deliver("workflow_job", "job-3", &queued_attempt(962, 1, 9620))
        .await;
    assert_eq!(m, "deny (user-not-allowed): run cancelled");
}

async fn a_cancel_github_refuses_is_tried_again(backend: Backend) {
    let guard = Guard::start(backend).await;
    guard
        .deliver(
            "workflow_run",
            "run-1",
            &workflow_run(970, "pull_request_target", REPO),
        )
        .await;
    // GitHub fails the first two cancellations.
    guard.fake.gate.fail(
        &format!("POST /repos/{REPO}/actions/runs/970/cancel"),
        &[502, 502],
    );
    let (status, m) = guard
        .deliver("workflow_job", "job-1", &queued_attempt(970, 1, 9700))
        .await;
    // Not answered as processed with an error: it waits and tries again.
    assert!(
        status == StatusCode::ACCEPTED || m == "deny (event-not-allowed): run cancelled",
        "{status} {m}"
    );
    let denied = guard.decisions_until("?outcome=deny", 1).await;
    assert_eq!(denied.len(), 1);
    assert_eq!(
        guard
            .fake
            .gate
            .count_exact(&format!("POST /repos/{REPO}/actions/runs/970/cancel")),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// Unauthenticated requests cost nothing.

#[tokio::test]
async fn nothing_from_an_unsigned_request_names_a_metric() {
    let guard = Guard::start(Backend::Sqlite).await;
    for i in 0..50 {
        let resp = guard
            .http
            .post(format!("{}/webhook", guard.base))
            .header("content-type", "application/json")
            .header("x-github-event", format!("forged-{i}"))
            .header("x-github-delivery", format!("forged-{i}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    // A signed delivery of an event the guard does not read is counted as `other`.
    guard
        .deliver("forged-but-signed", "signed-1", &json!({}))
        .await;
    let page = guard.metrics().await;
    assert!(!page.contains("forged"), "{page}");
    assert_eq!(
        sample(
            &page,
            r#"gatehouse_deliveries_total{event="unverified",outcome="rejected"}"#
        ),
        Some(50.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            r#"gatehouse_deliveries_total{event="other",outcome="processed"}"#
        ),
        Some(1.0),
        "{page}"
    );
}

#[tokio::test]
async fn unverified_bodies_share_one_budget() {
    use tokio::io::AsyncWriteExt;
    let guard = Guard::with(
        Backend::Sqlite,
        limited(Limits {
            unverified_body_bytes: 1024 * 1024,
            ..Limits::default()
        }),
    )
    .await;
    // A client sends 900 KiB of a body it never finishes, badly signed.
    let mut slow = tokio::net::TcpStream::connect(addr_of(&guard))
        .await
        .unwrap();
    let head = "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
        X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=00\r\n\
        Content-Length: 20000000\r\n\r\n";
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&vec![b' '; 900 * 1024]).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another body of 300 KiB does not fit beside it: refused at once, not buffered.
    let body = vec![b' '; 300 * 1024];
    let send = |body: Vec<u8>| {
        let sig = guard.sign(&body);
        guard
            .http
            .post(format!("{}/webhook", guard.base))
            .header("content-type", "application/json")
            .header("x-github-event", "ping")
            .header("x-github-delivery", "fits-later")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
    };
    let resp = send(body.clone()).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    // The slow client goes away: its share is free again, and the same delivery goes through.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = send(body).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn a_missing_page_does_not_echo_its_path() {
    let guard = Guard::start(Backend::Sqlite).await;
    for path in [
        "/%3Cscript%3Ealert(1)%3C/script%3E",
        "/resources/%3Cb%3Ebold%3C/b%3E",
        "/projects/%3Cimg%20src=x%3E",
    ] {
        let resp = guard
            .http
            .get(format!("{}{path}", guard.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains('<') && !text.contains("script"),
            "{path}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Runner groups: a `runs-on: { group: ... }` job names no label; GitHub says its group when it
// starts, and the guard decides it then.

on_both!(a_job_on_a_runner_group_is_decided_when_it_starts);

async fn a_job_on_a_runner_group_is_decided_when_it_starts(backend: Backend) {
    let guard = Guard::start(backend).await;
    let settings = format!("{SETTINGS}  pool: {{ kind: runner-group, group: gpu-pool }}\n");
    std::fs::write(guard.repo.path().join("gatehouse.yml"), settings).unwrap();
    std::fs::write(
        guard.repo.path().join("resources/pool-gpu.yml"),
        "name: pool-gpu\nprovider: pool\n",
    )
    .unwrap();
    let (status, answer) = guard.reload(ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    guard
        .deliver("workflow_run", "run-1", &run_by(990, 1, ACTOR, ACTOR))
        .await;
    // Queued: no label, no group yet. Nothing to decide.
    let (_, m) = guard
        .deliver("workflow_job", "q-1", &{
            let mut v = queued_attempt(990, 1, 9900);
            v["workflow_job"]["labels"] = json!([]);
            v
        })
        .await;
    assert_eq!(m, "not managed");
    // It starts on a runner of the group (named in another case): `example` holds no grant
    // of the group's resource.
    let mut started = job_event("in_progress", 990, 9900);
    started["workflow_job"]["labels"] = json!([]);
    started["workflow_job"]["runner_group_name"] = json!("GPU-Pool");
    let (_, m) = guard.deliver("workflow_job", "p-1", &started).await;
    assert_eq!(m, "deny (no-grant): run cancelled");
    let d = &guard.decisions("?outcome=deny").await[0];
    assert_eq!(d["resource"], "pool-gpu");
    // A job of GitHub's own runners goes in progress in their group: not managed.
    let mut hosted = job_event("in_progress", 990, 9901);
    hosted["workflow_job"]["labels"] = json!(["ubuntu-latest"]);
    hosted["workflow_job"]["runner_group_name"] = json!("GitHub Actions");
    let (_, m) = guard.deliver("workflow_job", "p-2", &hosted).await;
    assert_eq!(m, "not managed");
}

// ---------------------------------------------------------------------------------------------
// The contract with GitHub's REST API

/// The guard's calls to GitHub (a repository's collaborators, a run's attempt, cancelling, a
/// check run, a team's repositories, the hook's deliveries and a redelivery) and the fake's
/// answers to them, in the scenarios that make them, all follow GitHub's published REST
/// description (`tests/contract/schema.rs`); a call whose path, body or answer is changed is
/// found and named.
#[tokio::test]
async fn the_guard_s_calls_and_the_fake_s_answers_follow_github_s_description() {
    let started = std::time::Instant::now();
    let recorders = Arc::new(Mutex::new(Vec::new()));
    CONTRACT
        .scope(recorders.clone(), async {
            // Independent (a guard and a database each): run together.
            tokio::join!(
                an_allowed_job_is_recorded(Backend::Sqlite),
                a_denied_job_is_cancelled_and_explained(Backend::Sqlite),
                a_missed_workflow_run_is_fetched(Backend::Sqlite),
                a_rerun_whose_attempt_was_missed_is_read_from_github(Backend::Sqlite),
                webhooks_that_change_roles_make_the_facts_stale(Backend::Sqlite),
                missed_deliveries_are_asked_for_again(Backend::Sqlite),
                run_approvals::a_fork_pull_request_is_denied_approved_rerun_and_allowed(
                    Backend::Sqlite
                ),
                run_approvals::an_approving_review_of_the_head_commit_approves_it(Backend::Sqlite),
                teams::a_team_member_runs_until_removed_from_the_team(Backend::Sqlite),
            );
        })
        .await;
    let exchanges: Vec<schema::Exchange> = recorders
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.exchanges())
        .collect();
    schema::assert_follows_rest(
        &exchanges,
        &[
            "repos/list-collaborators",
            "actions/get-workflow-run-attempt",
            "actions/cancel-workflow-run",
            "checks/create",
            "teams/list-repos-in-org",
            "teams/list-members-in-org",
            "orgs/list-webhook-deliveries",
            "orgs/redeliver-webhook-delivery",
            "pulls/get",
            "actions/re-run-workflow-failed-jobs",
            "reactions/create-for-issue-comment",
            "issues/create-comment",
            "issues/update-comment",
        ],
    );

    // Changed, the same call is found: its path, its body, the fake's answer.
    let rest = schema::Description::rest();
    let check = exchanges
        .iter()
        .find(|e| e.path.ends_with("/check-runs"))
        .unwrap();
    let mut moved = check.clone();
    moved.path = moved.path.replace("/check-runs", "/check-run");
    let found = rest.check(&moved);
    assert!(found[0].what.contains("no operation"), "{found:?}");
    let mut sent = check.clone();
    sent.request.as_mut().unwrap()["conclusion"] = json!("denied");
    let found = rest.check(&sent);
    assert!(
        found.iter().any(|p| p.operation == "checks/create"
            && p.what.starts_with("request body at `/conclusion`")),
        "{found:?}"
    );
    let mut answered = check.clone();
    answered.answer.as_mut().unwrap()["output"]["annotations_count"] = json!("0");
    let found = rest.check(&answered);
    assert!(
        found.iter().any(|p| p
            .what
            .starts_with("answer 201 at `/output/annotations_count`")),
        "{found:?}"
    );
    eprintln!(
        "{} calls of the guard checked; {:?} with the scenarios",
        exchanges.len(),
        started.elapsed()
    );
}
