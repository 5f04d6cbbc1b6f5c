//! `gatehouse serve` end to end, over real sockets: signed deliveries built from GitHub's own
//! example payloads (`@octokit/webhooks-examples`, in `fixtures/`), a loopback fake of the
//! GitHub REST endpoints the guard calls, and every scenario on both SQLite and PostgreSQL.
//!
//! PostgreSQL is expected at 127.0.0.1:5432 (user `postgres`, database `test`), or wherever
//! `GATEHOUSE_TEST_POSTGRES` points; each test creates its own database and drops it after.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gatehouse_server::{GuardMode, Secret, ServerConfig, serve_on};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "a webhook secret for tests";
const ADMIN: &str = "an admin token for tests";
const REPO: &str = "octo-org/example-feedstock";
/// The actor of the example `workflow_run` payload.
const ACTOR: (&str, i64) = ("Codertocat", 15669918);

// ---------------------------------------------------------------------------------------------
// Databases

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test; a PostgreSQL one is dropped when this is.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Db {
    async fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
                Db {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                static N: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "gatehouse_test_{}_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed),
                    fastrand_suffix()
                );
                let admin = admin_url();
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin} ({e}). The server's storage tests \
                         run on PostgreSQL too: start it (e.g. `service postgresql start`, or \
                         `pg_ctlcluster 15 main start`) with trust auth for user postgres and a \
                         database `test`, or point GATEHOUSE_TEST_POSTGRES at one"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let (base, _) = admin
                    .rsplit_once('/')
                    .expect("the admin URL names a database");
                Db {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any runtime we may block; a thread with its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join();
    }
}

// ---------------------------------------------------------------------------------------------
// The fake GitHub

#[derive(Default)]
struct Fake {
    /// Run id → the run as `GET .../actions/runs/{id}` answers.
    runs: Mutex<HashMap<i64, Value>>,
    /// Lower-cased login → role; anyone else reads.
    roles: Mutex<HashMap<String, &'static str>>,
    /// `METHOD /path` → how often it was called.
    calls: Mutex<HashMap<String, u32>>,
    /// Bodies of `POST .../check-runs`.
    check_runs: Mutex<Vec<Value>>,
    /// How long permission lookups take, in milliseconds.
    permission_delay_ms: AtomicU64,
}

impl Fake {
    fn calls(&self, what: &str) -> u32 {
        self.calls.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn calls_matching(&self, part: &str) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains(part))
            .map(|(_, n)| n)
            .sum()
    }

    fn role(&self, login: &str, role: &'static str) {
        self.roles
            .lock()
            .unwrap()
            .insert(login.to_lowercase(), role);
    }
}

/// Anything else GitHub might be asked: counted, and not found.
async fn unknown(State(fake): State<Arc<Fake>>, method: Method, uri: Uri) -> StatusCode {
    note(&fake, method.as_str(), &uri);
    StatusCode::NOT_FOUND
}

fn note(fake: &Fake, method: &str, uri: &Uri) {
    *fake
        .calls
        .lock()
        .unwrap()
        .entry(format!("{method} {}", uri.path()))
        .or_default() += 1;
}

async fn fake_router(fake: Arc<Fake>) -> String {
    use axum::routing::{get, post};
    async fn run(
        State(fake): State<Arc<Fake>>,
        uri: Uri,
        UrlPath((_, _, id)): UrlPath<(String, String, i64)>,
    ) -> Response {
        note(&fake, "GET", &uri);
        match fake.runs.lock().unwrap().get(&id) {
            Some(run) => Json(run.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
        }
    }
    async fn permission(
        State(fake): State<Arc<Fake>>,
        uri: Uri,
        UrlPath((_, _, login)): UrlPath<(String, String, String)>,
    ) -> Json<Value> {
        note(&fake, "GET", &uri);
        let delay = fake.permission_delay_ms.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let role = fake
            .roles
            .lock()
            .unwrap()
            .get(&login.to_lowercase())
            .copied()
            .unwrap_or("read");
        // GitHub says `write` for maintain and `read` for triage in `permission`; the finer
        // role is in `role_name`.
        let permission = match role {
            "maintain" => "write",
            "triage" => "read",
            r => r,
        };
        Json(json!({ "permission": permission, "role_name": role, "user": { "login": login } }))
    }
    async fn cancel(State(fake): State<Arc<Fake>>, uri: Uri) -> (StatusCode, Json<Value>) {
        note(&fake, "POST", &uri);
        (StatusCode::ACCEPTED, Json(json!({})))
    }
    async fn check_run(
        State(fake): State<Arc<Fake>>,
        uri: Uri,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        note(&fake, "POST", &uri);
        fake.check_runs.lock().unwrap().push(body);
        (StatusCode::CREATED, Json(json!({ "id": 1 })))
    }
    let app = Router::new()
        .route("/repos/{owner}/{repo}/actions/runs/{id}", get(run))
        .route(
            "/repos/{owner}/{repo}/collaborators/{login}/permission",
            get(permission),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{id}/cancel",
            post(cancel),
        )
        .route("/repos/{owner}/{repo}/check-runs", post(check_run))
        .fallback(unknown)
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

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
    fake: Arc<Fake>,
    repo: tempfile::TempDir,
    secret: String,
    /// Completes the shutdown future given to `serve_on`.
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _db: Db,
}

struct Options {
    mode: Option<GuardMode>,
    secret: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: None,
            secret: SECRET,
        }
    }
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
        let fake = Arc::new(Fake::default());
        fake.role(ACTOR.0, "maintain");
        let github_api = fake_router(fake.clone()).await;
        let mut config =
            ServerConfig::new(repo.path(), db.url.clone(), Secret::new(options.secret));
        config.github_api = github_api;
        config.github_token = Some(Secret::new("ghp_test_token"));
        config.admin_token = Some(Secret::new(ADMIN));
        config.mode = options.mode;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_on(listener, config, async {
            let _ = stopped.await;
        }));
        let guard = Guard {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            fake,
            repo,
            secret: options.secret.to_string(),
            stop: Mutex::new(Some(stop)),
            server: Some(server),
            _db: db,
        };
        // Connections queue on the bound socket while the guard opens its store and policy.
        let ready = guard
            .http
            .get(format!("{}/readyz", guard.base))
            .send()
            .await;
        assert!(
            ready.is_ok_and(|r| r.status() == 200),
            "the guard did not start"
        );
        guard
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

    async fn reload(&self, token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/admin/reload", self.base))
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
    assert_eq!(guard.fake.calls_matching("/cancel"), 0);
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
    guard.fake.role(ACTOR.0, "read");
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
            .calls(&format!("POST /repos/{REPO}/actions/runs/13/cancel")),
        1
    );
    let check_runs = guard.fake.check_runs.lock().unwrap().clone();
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
    // A fork's pull request: the grant does not allow forks.
    guard
        .deliver(
            "workflow_run",
            "run-1",
            &workflow_run(14, "pull_request", "someone/example-feedstock"),
        )
        .await;
    let (_, message) = guard
        .deliver(
            "workflow_job",
            "job-1",
            &queued_job(14, 105, &["gpu-large"]),
        )
        .await;
    assert_eq!(message, "deny (event-not-allowed), dry run: not cancelled");
    assert_eq!(
        guard.fake.calls_matching("/cancel") + guard.fake.calls_matching("/check-runs"),
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
    let guard = Guard::start(backend).await;
    // GitHub's REST answer for a run has the shape of the event's `workflow_run`.
    let run = workflow_run(15, "push", REPO)["workflow_run"].clone();
    guard.fake.runs.lock().unwrap().insert(15, run);
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
    // Fetched once, then remembered; the permission was looked up once, then cached.
    assert_eq!(
        guard
            .fake
            .calls(&format!("GET /repos/{REPO}/actions/runs/15")),
        1
    );
    assert_eq!(guard.fake.calls_matching("/permission"), 1);
    // A run GitHub does not know cannot be decided: stored, acknowledged, not processed.
    let (status, message) = guard
        .deliver(
            "workflow_job",
            "job-3",
            &queued_job(16, 108, &["gpu-large"]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{message}");
    assert!(message.contains("no run 16"), "{message}");
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
    guard.fake.permission_delay_ms.store(500, Ordering::Relaxed);
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
