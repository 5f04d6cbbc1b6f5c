//! `gatehouse gate` as a self-hosted runner runs it: the kit's job-started hook
//! (`kits/self-hosted/job-started.sh`), run the way GitHub's runner runs it, before a job's
//! steps, which run only when it exits 0.
//!
//! The contract followed is GitHub's "Running scripts before or after a job"
//! (docs.github.com/actions/hosting-your-own-runners): the runner starts the script named by
//! `ACTIONS_RUNNER_HOOK_JOB_STARTED` as `bash -e <file>` (actions/runner,
//! `src/Runner.Worker/JobHookProvider.cs`), with the job's default variables ("Variables
//! reference": `GITHUB_REPOSITORY`, `GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`, `GITHUB_ACTOR`,
//! `GITHUB_ACTOR_ID`, `GITHUB_TRIGGERING_ACTOR`, `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`,
//! `GITHUB_JOB`, `RUNNER_NAME`, `GITHUB_STEP_SUMMARY`); exit 0 lets the job run, anything else
//! fails it before its first step. The event file holds GitHub's own example payloads
//! (`@octokit/webhooks-examples`, in `crates/gatehouse-server/tests/fixtures`).
//!
//! The guard runs in this process on a real socket with a SQLite file, its role facts stored
//! as a fetch would have stored them, and no GitHub token (so nothing here is a stand-in for
//! GitHub: the guard reads nothing from it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gatehouse_server::store::{Store, Write};
use gatehouse_server::{GateConfig, Secret, ServerConfig, serve_on};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "a webhook secret for gate tests";
const TOKEN: &str = "a pool token for the gate tests, 48 characters long";
/// The example payloads' repository and sender.
const REPO: &str = "Codertocat/Hello-World";
const CODERTOCAT: (&str, i64) = ("Codertocat", 21031067);
/// A maintainer who has not accepted the GPU's terms.
const NO_TOS: (&str, i64) = ("no-tos-maintainer", 7_000_003);
/// Someone who may only read the repository.
const READER: (&str, i64) = ("a-reader", 7_000_004);
/// The owner of a fork with no role on the repository.
const FORKER: (&str, i64) = ("a-forker", 7_000_005);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gatehouse")
}

fn kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kits")
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gatehouse-server/tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The access repository

const SETTINGS: &str = "org: Codertocat
repo_suffix: \"\"
reviewers: { teams: [core] }
guard: { mode: enforce }
providers:
  cirun: { kind: cirun, access_repo: .cirun }
gate:
  pools:
    gpu-pool: { resource: gpu }
    cpu-pool: { resource: cpu }
    tpu-pool: { resource: tpu }
    old-pool: { resource: old }
    open-pool: { resource: gpu, on_unreachable: allow }
    capped-pool: { resource: capped, concurrency_wait: 3s }
";

fn write_repo(dir: &Path) {
    let resource = |name: &str, label: &str, extra: &str| {
        format!("name: {name}\nprovider: cirun\nlabels: [{label}]\n{extra}")
    };
    let files = [
        ("gatehouse.yml", SETTINGS.to_string()),
        (
            "resources/gpu.yml",
            resource(
                "gpu",
                "gpu-large",
                "users: { roles: [admin, maintain, write], require_tos: true }\nquota: { project_minutes_per_month: 10 }\n",
            ),
        ),
        ("resources/cpu.yml", resource("cpu", "cpu-large", "")),
        ("resources/tpu.yml", resource("tpu", "tpu", "")),
        ("resources/old.yml", resource("old", "old-cpu", "")),
        (
            "resources/capped.yml",
            resource("capped", "capped-large", "quota: { concurrency: 1 }\n"),
        ),
        (
            "grants/Hello-World.yml",
            "project: Hello-World
grants:
  - resource: gpu
    pull_request: true
    granted: 2026-01-01
  - resource: cpu
    granted: 2026-01-01
  - resource: old
    granted: 2025-01-01
    expires: 2025-06-01
  - resource: capped
    granted: 2026-01-01
"
            .into(),
        ),
        (
            "grants/Spoon-Knife.yml",
            "project: Spoon-Knife\ngrants:\n  - resource: gpu\n    granted: 2026-01-01\n".into(),
        ),
        (
            // Everyone but NO_TOS accepted the terms: the other denials are about roles.
            "people/tos.yml",
            [CODERTOCAT, READER, FORKER]
                .iter()
                .map(|(login, id)| format!("- {{ github: {login}, id: {id} }}\n"))
                .collect(),
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The guard

struct Guard {
    rt: tokio::runtime::Runtime,
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    dir: tempfile::TempDir,
}

impl Guard {
    /// The guard on its own access repository and SQLite file, answering gates with `TOKEN`
    /// and signing snapshots with a key `gatehouse gate keygen` made in `dir/keys`.
    fn start() -> Guard {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("access");
        write_repo(&repo);
        let keygen = Command::new(bin())
            .args(["gate", "keygen", "--out"])
            .arg(dir.path().join("keys"))
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{keygen:?}");
        let key_text = std::fs::read_to_string(dir.path().join("keys/gate-signing.key")).unwrap();
        let key = gatehouse_gate::snapshot::SigningKey::from_text(&key_text).unwrap();
        let db = format!("sqlite://{}", dir.path().join("guard.db").display());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(store_roles(&db));
        let mut config = ServerConfig::new(&repo, db, Secret::new(SECRET));
        config.github_token = None;
        let mut gate = GateConfig::new(
            vec![
                ("gpu-pool".into(), Secret::new(TOKEN)),
                ("cpu-pool".into(), Secret::new(format!("{TOKEN}-cpu"))),
                ("tpu-pool".into(), Secret::new(format!("{TOKEN}-tpu"))),
                ("old-pool".into(), Secret::new(format!("{TOKEN}-old"))),
                ("open-pool".into(), Secret::new(format!("{TOKEN}-open"))),
                ("capped-pool".into(), Secret::new(format!("{TOKEN}-capped"))),
            ],
            Some(key),
        );
        gate.fact_wait = Duration::from_millis(300);
        config.gate = Some(gate);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(serve_on(listener, config, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::new();
        let ready = rt.block_on(http.get(format!("{base}/readyz")).send());
        assert!(
            ready.is_ok_and(|r| r.status() == 200),
            "the guard did not start"
        );
        Guard {
            rt,
            base,
            http,
            stop: Some(stop),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Delivers a signed webhook; returns the guard's message (`allow`, `deny (rule): ...`).
    fn deliver(&self, event: &str, delivery: &str, body: &Value) -> String {
        let body = serde_json::to_vec(body).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let resp = self
            .rt
            .block_on(
                self.http
                    .post(format!("{}/webhook", self.base))
                    .header("content-type", "application/json")
                    .header("x-github-event", event)
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send(),
            )
            .unwrap();
        assert_eq!(resp.status(), 200);
        let answer: Value = self.rt.block_on(resp.json()).unwrap();
        answer["message"].as_str().unwrap_or_default().to_string()
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = self.rt.block_on(req.send()).unwrap();
        let status = resp.status().as_u16();
        (status, self.rt.block_on(resp.bytes()).unwrap().to_vec())
    }

    fn admission(&self, token: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .rt
            .block_on(
                self.http
                    .post(format!("{}/api/v1/admission", self.base))
                    .bearer_auth(token)
                    .json(body)
                    .send(),
            )
            .unwrap();
        let status = resp.status().as_u16();
        (status, self.rt.block_on(resp.json()).unwrap_or(Value::Null))
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, page) = self.get("/metrics", None);
        let page = String::from_utf8(page).unwrap();
        page.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse().unwrap())
    }

    fn decisions(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/decisions?limit=500", None);
        assert_eq!(status, 200);
        serde_json::from_slice::<Value>(&body).unwrap()["decisions"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Tells the guard about a run as GitHub does: a `workflow_run` delivery (GitHub's
    /// example, adapted to the job).
    fn announce(&self, job: &RunnerJob) {
        let mut v = fixture("workflow_run.requested.json");
        let w = &mut v["workflow_run"];
        w["id"] = json!(job.run_id);
        w["run_attempt"] = json!(1);
        w["event"] = json!(job.event_name);
        w["actor"]["login"] = json!(job.actor.0);
        w["actor"]["id"] = json!(job.actor.1);
        w["triggering_actor"]["login"] = json!(job.triggering.0);
        w["triggering_actor"]["id"] = json!(job.triggering.1);
        w["repository"]["full_name"] = json!(job.repository);
        let head = job.head();
        w["head_repository"]["full_name"] = json!(head.0);
        w["head_repository"]["owner"]["login"] = json!(head.1);
        w["head_repository"]["owner"]["id"] = json!(head.2);
        v["repository"]["full_name"] = json!(job.repository);
        self.deliver("workflow_run", &format!("run-{}", job.run_id), &v);
    }

    /// The webhook path's decision for the job, queued with `label`: `None` for allow, else
    /// the rule.
    fn webhook_decides(&self, job: &RunnerJob, label: &str) -> Option<String> {
        let mut v = fixture("workflow_job.queued.json");
        v["repository"]["full_name"] = json!(job.repository);
        v["workflow_job"]["id"] = json!(job.run_id * 10);
        v["workflow_job"]["run_id"] = json!(job.run_id);
        v["workflow_job"]["run_attempt"] = json!(1);
        v["workflow_job"]["labels"] = json!([label]);
        let message = self.deliver("workflow_job", &format!("job-{}", job.run_id), &v);
        rule_of_message(&message)
    }
}

impl Guard {
    /// Stops answering: the server stops and its port is closed.
    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let http = self.http.clone();
        let url = format!("{}/readyz", self.base);
        for _ in 0..50 {
            if self.rt.block_on(http.get(&url).send()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the guard still answers after it was stopped");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `allow` → `None`; `deny (rule): ...` → the rule.
fn rule_of_message(message: &str) -> Option<String> {
    if message == "allow" {
        return None;
    }
    let rule = message
        .strip_prefix("deny (")
        .and_then(|m| m.split(')').next())
        .unwrap_or_else(|| panic!("not a decision: {message}"));
    Some(rule.to_string())
}

/// The roles a collaborator listing would have stored: fetched just now.
async fn store_roles(db: &str) {
    let store = Store::connect(db).await.unwrap();
    let now = jiff::Timestamp::now().to_string();
    let people = json!([
        {"login": CODERTOCAT.0, "id": CODERTOCAT.1, "role": "admin"},
        {"login": NO_TOS.0, "id": NO_TOS.1, "role": "maintain"},
        {"login": READER.0, "id": READER.1, "role": "read"},
    ]);
    store
        .commit(vec![Write::RoleFacts {
            repository: REPO.to_lowercase(),
            people: people.to_string(),
            etag: None,
            fetched_at: now.clone(),
            changed_at: now,
        }])
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The runner

/// One job as the runner would start it.
#[derive(Clone)]
struct RunnerJob {
    repository: String,
    event_name: &'static str,
    /// The event file's contents.
    event: Value,
    actor: (&'static str, i64),
    triggering: (&'static str, i64),
    run_id: i64,
    runner: &'static str,
}

impl RunnerJob {
    /// GitHub's example payload for `event` (`push`, `pull_request`, `workflow_dispatch`),
    /// started by Codertocat.
    fn new(event_name: &'static str, run_id: i64) -> RunnerJob {
        let event = match event_name {
            "pull_request" => fixture("pull_request.opened.json"),
            other => fixture(&format!("{other}.json")),
        };
        RunnerJob {
            repository: event["repository"]["full_name"]
                .as_str()
                .unwrap()
                .to_string(),
            event_name,
            event,
            actor: CODERTOCAT,
            triggering: CODERTOCAT,
            run_id,
            runner: "gpu-runner-1",
        }
    }

    fn by(mut self, actor: (&'static str, i64)) -> RunnerJob {
        self.actor = actor;
        self.triggering = actor;
        self
    }

    fn triggered_by(mut self, who: (&'static str, i64)) -> RunnerJob {
        self.triggering = who;
        self
    }

    /// The pull request comes from `owner`'s fork.
    fn forked_by(mut self, owner: (&'static str, i64)) -> RunnerJob {
        let head = &mut self.event["pull_request"]["head"]["repo"];
        head["full_name"] = json!(format!("{}/Hello-World", owner.0));
        head["owner"]["login"] = json!(owner.0);
        head["owner"]["id"] = json!(owner.1);
        self
    }

    /// Another project of the organisation.
    fn in_repository(mut self, repository: &str) -> RunnerJob {
        self.event["repository"]["full_name"] = json!(repository);
        self.repository = repository.to_string();
        self
    }

    /// The head repository and its owner, as the run reports them.
    fn head(&self) -> (String, String, i64) {
        let repo = self
            .event
            .pointer("/pull_request/head/repo")
            .unwrap_or(&self.event["repository"]);
        (
            repo["full_name"].as_str().unwrap().to_string(),
            repo["owner"]["login"].as_str().unwrap().to_string(),
            repo["owner"]["id"].as_i64().unwrap(),
        )
    }

    /// The job's default variables, as the runner sets them.
    fn env(&self, event_path: &Path, summary: &Path) -> Vec<(String, String)> {
        [
            ("GITHUB_REPOSITORY", self.repository.clone()),
            ("GITHUB_EVENT_NAME", self.event_name.to_string()),
            ("GITHUB_EVENT_PATH", event_path.display().to_string()),
            ("GITHUB_ACTOR", self.actor.0.to_string()),
            ("GITHUB_ACTOR_ID", self.actor.1.to_string()),
            ("GITHUB_TRIGGERING_ACTOR", self.triggering.0.to_string()),
            ("GITHUB_RUN_ID", self.run_id.to_string()),
            ("GITHUB_RUN_ATTEMPT", "1".to_string()),
            ("GITHUB_JOB", "build".to_string()),
            (
                "GITHUB_WORKFLOW_REF",
                format!(
                    "{}/.github/workflows/build.yml@refs/heads/main",
                    self.repository
                ),
            ),
            ("GITHUB_REF", "refs/heads/main".to_string()),
            ("RUNNER_NAME", self.runner.to_string()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// A runner machine: the kit's hook and its gate.conf in a folder of their own.
struct Runner {
    dir: tempfile::TempDir,
}

/// What happened to a job on the runner.
#[derive(Debug)]
struct Outcome {
    /// The hook's exit status.
    code: i32,
    /// Whether the job's steps ran (only after the hook exits 0).
    steps_ran: bool,
    /// What the hook printed (the job's log).
    log: String,
    /// What it wrote to the job's summary page.
    summary: String,
}

impl Outcome {
    /// `None` when admitted; else the rule the log names (or `-` for none).
    fn rule(&self) -> Option<String> {
        if self.code == 0 {
            return None;
        }
        let rule = self
            .log
            .split("refused this job (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or("-");
        Some(rule.to_string())
    }
}

impl Runner {
    /// `conf`: gate.conf's lines (`GATEHOUSE_BIN` is added).
    fn new(conf: &[(&str, String)]) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            kit().join("self-hosted/job-started.sh"),
            dir.path().join("job-started.sh"),
        )
        .unwrap();
        let mut text = format!("# written by the test\nGATEHOUSE_BIN={}\n", bin());
        for (k, v) in conf {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(dir.path().join("gate.conf"), text).unwrap();
        Runner { dir }
    }

    /// A runner of `pool` asking `guard` (a URL, or `None`), with `snapshot`, trusting the
    /// guard's key.
    fn of(pool: &str, guard: &Guard, url: Option<&str>, snapshot: &Path, token: &str) -> Runner {
        let token_file = guard.path(&format!("token-{pool}"));
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        Runner::new(&[
            ("POOL", pool.to_string()),
            ("GUARD", url.unwrap_or("").to_string()),
            ("TOKEN_FILE", token_file.display().to_string()),
            ("TIMEOUT", "1s".to_string()),
            ("SNAPSHOT", snapshot.display().to_string()),
            (
                "PUBLIC_KEYS",
                guard.path("keys/gate-signing.pub").display().to_string(),
            ),
            (
                "STATE",
                guard.path(&format!("serial-{pool}")).display().to_string(),
            ),
        ])
    }

    /// Runs `job` as GitHub's runner would: the hook (`bash -e`), then the steps if it exited
    /// 0. `extra` adds to (or, empty, overrides) the job's environment.
    fn run(&self, job: &RunnerJob, extra: &[(&str, &str)]) -> Outcome {
        let event_path = self.dir.path().join("event.json");
        std::fs::write(&event_path, serde_json::to_vec(&job.event).unwrap()).unwrap();
        self.run_with(job, &event_path, extra)
    }

    fn run_with(&self, job: &RunnerJob, event_path: &Path, extra: &[(&str, &str)]) -> Outcome {
        let summary = self.dir.path().join("summary.md");
        let _ = std::fs::remove_file(&summary);
        std::fs::write(&summary, "").unwrap();
        let steps = self.dir.path().join("steps-ran");
        let _ = std::fs::remove_file(&steps);
        let mut hook = Command::new("bash");
        hook.arg("-e")
            .arg(self.dir.path().join("job-started.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in job.env(event_path, &summary) {
            hook.env(k, v);
        }
        for (k, v) in extra {
            if v.is_empty() {
                hook.env_remove(k);
            } else {
                hook.env(k, v);
            }
        }
        let out = hook.output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code == 0 {
            // The job's first step.
            let step = Command::new("bash")
                .args(["-e", "-c", "touch \"$1\"", "step"])
                .arg(&steps)
                .status()
                .unwrap();
            assert!(step.success());
        }
        Outcome {
            code,
            steps_ran: steps.exists(),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            summary: std::fs::read_to_string(&summary).unwrap_or_default(),
        }
    }
}

/// A port nothing listens on.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// Fetches the guard's snapshot with the binary, as the kit's timer does.
fn fetch_snapshot(guard: &Guard, out: &Path) -> std::process::Output {
    let token_file = guard.path("token-fetch");
    std::fs::write(&token_file, TOKEN).unwrap();
    Command::new(bin())
        .args(["gate", "fetch", "--guard", &guard.base, "--token-file"])
        .arg(&token_file)
        .arg("--out")
        .arg(out)
        .arg("--public-key")
        .arg(guard.path("keys/gate-signing.pub"))
        .output()
        .unwrap()
}

fn token_of(pool: &str) -> String {
    match pool {
        "gpu-pool" => TOKEN.to_string(),
        other => format!("{TOKEN}-{}", other.trim_end_matches("-pool")),
    }
}

fn label_of(pool: &str) -> &'static str {
    match pool {
        "gpu-pool" | "open-pool" => "gpu-large",
        "cpu-pool" => "cpu-large",
        "tpu-pool" => "tpu",
        "old-pool" => "old-cpu",
        other => panic!("no pool {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The same jobs, decided three ways

#[test]
fn the_gate_online_offline_and_the_webhook_path_decide_alike() {
    let guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    let fetched = fetch_snapshot(&guard, &snapshot);
    assert!(fetched.status.success(), "{fetched:?}");
    let offline_guard = closed_port();

    // (what, job, pool, expected: online, offline, webhook). `None`: admitted.
    let d = |r: &str| Some(r.to_string());
    let cases: Vec<(&str, RunnerJob, &str, [Option<String>; 3])> = vec![
        (
            "a push by an admin who accepted the terms",
            RunnerJob::new("push", 101),
            "gpu-pool",
            [None, None, None],
        ),
        (
            "a pull request from a branch of the repository",
            RunnerJob::new("pull_request", 102),
            "gpu-pool",
            [None, None, None],
        ),
        (
            "a manual run",
            RunnerJob::new("workflow_dispatch", 103).in_repository(REPO),
            "cpu-pool",
            [None, None, None],
        ),
        (
            "a pull request on a resource granted for pushes only",
            RunnerJob::new("pull_request", 104),
            "cpu-pool",
            [
                d("event-not-allowed"),
                d("event-not-allowed"),
                d("event-not-allowed"),
            ],
        ),
        (
            "a resource the project holds no grant of",
            RunnerJob::new("push", 105),
            "tpu-pool",
            [d("no-grant"), d("no-grant"), d("no-grant")],
        ),
        (
            "a grant that expired",
            RunnerJob::new("push", 106),
            "old-pool",
            [d("expired"), d("expired"), d("expired")],
        ),
        (
            "a re-run started by someone who may only read",
            RunnerJob::new("push", 107).triggered_by(READER),
            "gpu-pool",
            [
                d("user-not-allowed"),
                d("user-not-allowed"),
                d("user-not-allowed"),
            ],
        ),
        (
            "a maintainer who has not accepted the terms",
            RunnerJob::new("push", 108).by(NO_TOS),
            "gpu-pool",
            [
                d("user-not-allowed"),
                d("user-not-allowed"),
                d("user-not-allowed"),
            ],
        ),
        (
            "a pull request from the fork of someone with no role",
            RunnerJob::new("pull_request", 109).forked_by(FORKER),
            "gpu-pool",
            [
                d("user-not-allowed"),
                d("user-not-allowed"),
                d("user-not-allowed"),
            ],
        ),
        (
            "a project whose roles the guard does not hold",
            RunnerJob::new("push", 110).in_repository("Codertocat/Spoon-Knife"),
            "gpu-pool",
            [
                d("facts-unavailable"),
                d("facts-unavailable"),
                d("facts-unavailable"),
            ],
        ),
    ];
    for (what, job, pool, expected) in &cases {
        guard.announce(job);
        let online = Runner::of(pool, &guard, Some(&guard.base), &snapshot, &token_of(pool));
        let offline = Runner::of(
            pool,
            &guard,
            Some(&offline_guard),
            &snapshot,
            &token_of(pool),
        );
        let on = online.run(job, &[]);
        let off = offline.run(job, &[]);
        let hook = guard.webhook_decides(job, label_of(pool));
        let got = [on.rule(), off.rule(), hook];
        assert_eq!(&got, expected, "{what}:\nonline: {on:?}\noffline: {off:?}");
        for (o, how) in [(&on, "online"), (&off, "offline")] {
            assert_eq!(
                o.steps_ran,
                o.code == 0,
                "{what} ({how}): steps run exactly when the hook exits 0"
            );
            if o.code != 0 {
                assert!(
                    o.summary.contains("gatehouse refused this job"),
                    "{what} ({how}): the job's summary says why: {o:?}"
                );
            } else {
                assert!(o.log.trim().is_empty(), "an admitted job is silent: {o:?}");
            }
        }
        assert!(
            off.code == 0 || off.log.contains("decided by the runner's policy snapshot"),
            "{what}: offline says it decided from the snapshot: {off:?}"
        );
        if off.rule() == d("facts-unavailable") {
            assert!(
                off.log.contains("snapshot holds no collaborator list")
                    && !off.log.contains("GitHub"),
                "{what}: offline says the snapshot lacks the roles, not GitHub: {off:?}"
            );
        }
        assert!(
            on.code == 0 || on.log.contains("decided by the guard"),
            "{what}: {on:?}"
        );
    }

    // Usage is the one fact the snapshot does not carry: a project over its quota is refused
    // online and by the webhook path, and admitted offline (the webhook path then cancels it).
    let mut done = fixture("workflow_job.completed.json");
    let now = jiff::Timestamp::now();
    done["repository"]["full_name"] = json!(REPO);
    done["workflow_job"]["id"] = json!(1010);
    done["workflow_job"]["run_id"] = json!(101);
    done["workflow_job"]["labels"] = json!(["gpu-large"]);
    done["workflow_job"]["started_at"] =
        json!((now - jiff::SignedDuration::from_mins(11)).to_string());
    done["workflow_job"]["completed_at"] = json!(now.to_string());
    guard.deliver("workflow_job", "done-101", &done);
    let job = RunnerJob::new("push", 111);
    guard.announce(&job);
    let on = Runner::of("gpu-pool", &guard, Some(&guard.base), &snapshot, TOKEN).run(&job, &[]);
    let off = Runner::of("gpu-pool", &guard, Some(&offline_guard), &snapshot, TOKEN).run(&job, &[]);
    let hook = guard.webhook_decides(&job, "gpu-large");
    assert_eq!(
        [on.rule(), off.rule(), hook],
        [
            Some("quota-exhausted".to_string()),
            None,
            Some("quota-exhausted".to_string())
        ],
        "{on:?} {off:?}"
    );
    assert!(!on.steps_ran);

    // Every admission is on /api/v1/decisions with its origin, beside the webhook's.
    let decisions = guard.decisions();
    let gate: Vec<_> = decisions.iter().filter(|d| d["origin"] == "gate").collect();
    assert_eq!(gate.len(), cases.len() + 1, "one admission per online job");
    assert!(
        gate.iter()
            .any(|d| d["run_id"] == 105 && d["rule"] == "no-grant" && d["resource"] == "tpu")
    );
    assert_eq!(
        decisions
            .iter()
            .filter(|d| d["origin"] == "webhook")
            .count(),
        cases.len() + 1
    );
    assert!(guard.metric("gatehouse_admissions_total{outcome=\"deny\"}") >= 7.0);
}

// ---------------------------------------------------------------------------------------------
// Refusals the runner makes itself

#[test]
fn what_cannot_be_trusted_is_refused_with_a_reason() {
    let guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    assert!(fetch_snapshot(&guard, &snapshot).status.success());
    let down = closed_port();
    let job = RunnerJob::new("push", 201);
    guard.announce(&job);
    let runner = Runner::of("gpu-pool", &guard, Some(&down), &snapshot, TOKEN);
    assert_eq!(runner.run(&job, &[]).code, 0, "the snapshot admits it");

    let refused = |o: &Outcome, says: &str| {
        assert_ne!(o.code, 0, "{o:?}");
        assert!(!o.steps_ran);
        assert!(o.log.contains(says), "expected `{says}` in: {}", o.log);
    };

    // A tampered snapshot (one byte of its policy changed).
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let tampered = guard.path("tampered.bin");
    std::fs::write(&tampered, &bytes).unwrap();
    let o = Runner::of("gpu-pool", &guard, Some(&down), &tampered, TOKEN).run(&job, &[]);
    refused(&o, "signature");
    refused(&o, "neither the guard nor a usable snapshot");

    // A snapshot signed with another key.
    let other = guard.path("other-keys");
    assert!(
        Command::new(bin())
            .args(["gate", "keygen", "--out"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let foreign = guard.path("foreign.bin");
    let made = Command::new(bin())
        .arg("snapshot")
        .arg(guard.path("access"))
        .arg("--key")
        .arg(other.join("gate-signing.key"))
        .arg("--out")
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let o = Runner::of("gpu-pool", &guard, Some(&down), &foreign, TOKEN).run(&job, &[]);
    refused(&o, "signed by a key this runner does not trust");

    // An expired one.
    let expired = guard.path("expired.bin");
    let made = Command::new(bin())
        .arg("snapshot")
        .arg(guard.path("access"))
        .arg("--key")
        .arg(guard.path("keys/gate-signing.key"))
        .args(["--max-age", "1s", "--out"])
        .arg(&expired)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    std::thread::sleep(Duration::from_millis(2100));
    let o = Runner::of("gpu-pool", &guard, Some(&down), &expired, TOKEN).run(&job, &[]);
    refused(&o, "older than its limit");

    // An old snapshot replayed after the runner saw a newer one.
    let older = guard.path("older.bin");
    let newer = guard.path("newer.bin");
    for out in [&older, &newer] {
        let made = Command::new(bin())
            .arg("snapshot")
            .arg(guard.path("access"))
            .arg("--key")
            .arg(guard.path("keys/gate-signing.key"))
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(made.status.success());
        std::thread::sleep(Duration::from_millis(5));
    }
    let state = guard.path("replay-serial");
    let conf = |snap: &Path| {
        vec![
            ("POOL", "tpu-pool".to_string()),
            ("SNAPSHOT", snap.display().to_string()),
            (
                "PUBLIC_KEYS",
                guard.path("keys/gate-signing.pub").display().to_string(),
            ),
            ("STATE", state.display().to_string()),
        ]
    };
    // (tpu-pool: no grant, so a verified snapshot refuses with `no-grant`.)
    let o = Runner::new(&conf(&newer)).run(&job, &[]);
    assert_eq!(o.rule().as_deref(), Some("no-grant"), "{o:?}");
    let o = Runner::new(&conf(&older)).run(&job, &[]);
    refused(&o, "the newest this runner has seen");

    // The guard answers a wrong token with 401: a refusal, not a reason to decide offline.
    let o = Runner::of(
        "gpu-pool",
        &guard,
        Some(&guard.base),
        &snapshot,
        "not the token",
    )
    .run(&job, &[]);
    refused(&o, "401");
    refused(&o, "decided by the guard");

    // Missing or malformed event files, and an environment that disagrees with its event.
    let o = runner.run_with(&job, &guard.path("no-such-event.json"), &[]);
    refused(&o, "cannot be read");
    let bad = guard.path("bad-event.json");
    std::fs::write(&bad, b"{\"repository\": ").unwrap();
    let o = runner.run_with(&job, &bad, &[]);
    refused(&o, "is not a GitHub event payload");
    let o = runner.run(&job, &[("GITHUB_REPOSITORY", "Codertocat/Spoon-Knife")]);
    refused(&o, "disagree");
    let o = runner.run(&job, &[("GITHUB_RUN_ID", "")]);
    refused(&o, "GITHUB_RUN_ID is not set");

    // Nothing the job's environment says configures the gate.
    let o = runner.run(
        &job,
        &[
            ("GATEHOUSE_GUARD", "http://127.0.0.1:9"),
            ("GATEHOUSE_SNAPSHOT", "/dev/null"),
            ("GATEHOUSE_POOL", "open-pool"),
            ("LD_PRELOAD", "/nonexistent/libevil.so"),
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");

    // No gate.conf: the runner's gate is not set up, and no job runs.
    let bare = Runner::new(&[]);
    std::fs::remove_file(bare.dir.path().join("gate.conf")).unwrap();
    refused(&bare.run(&job, &[]), "gate is not set up");
}

/// A runner learns which resource it serves from its own configuration: its pool, the
/// resource by name (`RESOURCE`), or the labels it was given at provisioning (`LABELS`, routed
/// as the guard routes a job's labels, Cirun's `--<id>` suffix included). Labels of two
/// resources or of none refuse every job with the reason; online, a runner named for another
/// resource than its token's pool is refused.
#[test]
fn a_runner_knows_its_resource_from_its_labels_or_its_name() {
    let guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    assert!(fetch_snapshot(&guard, &snapshot).status.success());
    let down = closed_port();
    let token_file = guard.path("token-serves");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let runner = |key: &str, value: &str, url: &str| {
        Runner::new(&[
            (key, value.to_string()),
            ("GUARD", url.to_string()),
            ("TOKEN_FILE", token_file.display().to_string()),
            ("TIMEOUT", "1s".to_string()),
            ("SNAPSHOT", snapshot.display().to_string()),
            (
                "PUBLIC_KEYS",
                guard.path("keys/gate-signing.pub").display().to_string(),
            ),
        ])
    };
    let job = RunnerJob::new("push", 401);
    guard.announce(&job);
    // Offline (the guard is down): the snapshot decides on the resource the runner names.
    for (key, value, expected) in [
        (
            "LABELS",
            "self-hosted,linux,gpu-large--8075232475-linux_64",
            None,
        ),
        ("LABELS", "self-hosted,tpu", Some("no-grant")),
        ("RESOURCE", "cpu", None),
        ("RESOURCE", "tpu", Some("no-grant")),
    ] {
        let o = runner(key, value, &down).run(&job, &[]);
        assert_eq!(o.rule().as_deref(), expected, "{key}={value}: {o:?}");
        assert_eq!(o.steps_ran, expected.is_none(), "{key}={value}");
    }
    for (value, says) in [
        (
            "gpu-large,cpu-large",
            "select two resources, `gpu` and `cpu`",
        ),
        ("self-hosted,linux", "select no managed resource"),
    ] {
        let o = runner("LABELS", value, &down).run(&job, &[]);
        assert_ne!(o.code, 0, "{value}: {o:?}");
        assert!(!o.steps_ran);
        assert!(o.log.contains(says), "{value}: {}", o.log);
        assert!(o.summary.contains(says), "{value}: {}", o.summary);
    }
    // Online: the guard decides for the pool of the token (gpu-pool); a runner that says it
    // serves cpu holds another pool's token and is refused, one that serves gpu is admitted.
    let o = runner("RESOURCE", "cpu", &guard.base).run(&job, &[]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(o.log.contains("belongs to another pool"), "{}", o.log);
    let o = runner("RESOURCE", "gpu", &guard.base).run(&job, &[]);
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn with_neither_guard_nor_snapshot_a_pool_fails_closed_unless_it_says_otherwise() {
    let guard = Guard::start();
    let down = closed_port();
    let missing = guard.path("never-fetched.bin");
    let job = RunnerJob::new("push", 301);
    let o = Runner::of("gpu-pool", &guard, Some(&down), &missing, TOKEN).run(&job, &[]);
    assert_ne!(o.code, 0);
    assert!(!o.steps_ran);
    assert!(
        o.log.contains("did not answer")
            && o.log.contains("ask the organisation's gatehouse admins"),
        "{o:?}"
    );

    // `on_unreachable: allow` is read from a snapshot that verifies even when it may not be
    // decided from (here: expired); with none at all, there is nothing to say the pool is open.
    let expired = guard.path("expired.bin");
    let made = Command::new(bin())
        .arg("snapshot")
        .arg(guard.path("access"))
        .arg("--key")
        .arg(guard.path("keys/gate-signing.key"))
        .args(["--max-age", "1s", "--out"])
        .arg(&expired)
        .output()
        .unwrap();
    assert!(made.status.success());
    std::thread::sleep(Duration::from_millis(2100));
    let open = Runner::of(
        "open-pool",
        &guard,
        Some(&down),
        &expired,
        &token_of("open-pool"),
    );
    let o = open.run(&job, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.steps_ran);
    let closed = Runner::of("gpu-pool", &guard, Some(&down), &expired, TOKEN).run(&job, &[]);
    assert_ne!(closed.code, 0, "{closed:?}");
}

#[test]
fn a_slow_guard_is_not_waited_for_beyond_the_timeout() {
    let guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    assert!(fetch_snapshot(&guard, &snapshot).status.success());
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let job = RunnerJob::new("push", 401).by(NO_TOS);
    guard.announce(&job);
    let runner = Runner::of("gpu-pool", &guard, Some(&url), &snapshot, TOKEN);
    let started = std::time::Instant::now();
    let o = runner.run(&job, &[]);
    assert_eq!(o.rule().as_deref(), Some("user-not-allowed"), "{o:?}");
    assert!(o.log.contains("did not answer within 1s"), "{o:?}");
    // The timeout is 1 s; the rest is process start and the snapshot (generous on a loaded
    // machine: the point is that it does not hang).
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

// ---------------------------------------------------------------------------------------------
// The guard's endpoints

#[test]
fn admissions_need_a_pool_token_and_can_only_ask_about_real_runs() {
    let guard = Guard::start();
    let job = RunnerJob::new("push", 501);
    guard.announce(&job);
    let ask = json!({
        "repository": REPO, "run_id": 501, "run_attempt": 1, "job": "build",
        "runner_name": "gpu-runner-1"
    });
    let (status, _) = guard.admission("wrong", &ask);
    assert_eq!(status, 401);
    let (status, answer) = guard.admission(TOKEN, &ask);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "allow");
    assert_eq!(answer["resource"], "gpu");

    // A request naming another repository than its run's: refused, nothing decided.
    let forged = json!({
        "repository": "Codertocat/Spoon-Knife", "run_id": 501, "run_attempt": 1,
        "job": "build", "runner_name": "gpu-runner-1"
    });
    let (status, answer) = guard.admission(TOKEN, &forged);
    assert_eq!(status, 409, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("is a run of"));
    // A run the guard never heard of (and cannot ask GitHub about): denied for want of it.
    let unknown = json!({
        "repository": REPO, "run_id": 999_999, "run_attempt": 1, "job": "build",
        "runner_name": "gpu-runner-1"
    });
    let (status, answer) = guard.admission(TOKEN, &unknown);
    assert_eq!(status, 200);
    assert_eq!(answer["rule"], "facts-unavailable", "{answer}");
    // Not JSON.
    let resp = guard
        .rt
        .block_on(
            guard
                .http
                .post(format!("{}/api/v1/admission", guard.base))
                .bearer_auth(TOKEN)
                .body("run 501 please")
                .send(),
        )
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        guard.metric("gatehouse_admissions_total{outcome=\"refused\"}"),
        3.0
    );
}

#[test]
fn the_snapshot_is_downloaded_only_when_it_changed_and_never_replaced_by_a_worse_one() {
    let guard = Guard::start();
    let (status, _) = guard.get("/api/v1/snapshot", None);
    assert_eq!(status, 401, "the snapshot needs a pool token");
    // Right after start the guard's first fetch of role facts makes a new snapshot (rightly:
    // the facts changed); wait until two looks in a row see the same one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = guard.get("/api/v1/snapshot", Some(TOKEN)).1;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = guard.get("/api/v1/snapshot", Some(TOKEN)).1;
        if now == last {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the snapshot kept changing"
        );
        last = now;
    }
    let out = guard.path("snap.bin");
    let first = fetch_snapshot(&guard, &out);
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("wrote"));
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size > 0);
    let again = fetch_snapshot(&guard, &out);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("is current"),
        "{again:?}"
    );

    // A guard whose key the runner does not trust: the held snapshot stays.
    let before = std::fs::read(&out).unwrap();
    std::fs::remove_file(out.with_extension("etag")).unwrap();
    let token_file = guard.path("token-fetch");
    let other = guard.path("other-keys");
    assert!(
        Command::new(bin())
            .args(["gate", "keygen", "--out"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let refused = Command::new(bin())
        .args(["gate", "fetch", "--guard", &guard.base, "--token-file"])
        .arg(&token_file)
        .arg("--out")
        .arg(&out)
        .arg("--public-key")
        .arg(other.join("gate-signing.pub"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(guard.metric("gatehouse_snapshot_bytes") as u64 == size);
}

#[test]
fn a_job_that_starts_on_a_gated_resource_without_asking_is_noticed() {
    let guard = Guard::start();
    let job = RunnerJob::new("push", 601);
    guard.announce(&job);
    assert_eq!(guard.webhook_decides(&job, "gpu-large"), None);
    let mut started = fixture("workflow_job.queued.json");
    started["action"] = json!("in_progress");
    started["repository"]["full_name"] = json!(REPO);
    started["workflow_job"]["id"] = json!(6010);
    started["workflow_job"]["run_id"] = json!(601);
    started["workflow_job"]["labels"] = json!(["gpu-large"]);
    started["workflow_job"]["runner_name"] = json!("someone-elses-runner");
    guard.deliver("workflow_job", "started-601", &started);
    assert_eq!(guard.metric("gatehouse_gate_ungated_total"), 1.0);

    // Admitted by the gate and then denied by the webhook path (the quota ran out between the
    // two): a disagreement, counted; the stricter decision (the cancel) holds.
    let job = RunnerJob::new("push", 602);
    guard.announce(&job);
    let snapshot = guard.path("none.bin");
    let runner = Runner::of("gpu-pool", &guard, Some(&guard.base), &snapshot, TOKEN);
    assert_eq!(runner.run(&job, &[]).code, 0);
    let mut done = fixture("workflow_job.completed.json");
    let now = jiff::Timestamp::now();
    done["repository"]["full_name"] = json!(REPO);
    done["workflow_job"]["id"] = json!(6000);
    done["workflow_job"]["run_id"] = json!(601);
    done["workflow_job"]["labels"] = json!(["gpu-large"]);
    done["workflow_job"]["started_at"] =
        json!((now - jiff::SignedDuration::from_mins(30)).to_string());
    done["workflow_job"]["completed_at"] = json!(now.to_string());
    guard.deliver("workflow_job", "done-600", &done);
    assert_eq!(
        guard.webhook_decides(&job, "gpu-large").as_deref(),
        Some("quota-exhausted")
    );
    let mut started = fixture("workflow_job.queued.json");
    started["action"] = json!("in_progress");
    started["repository"]["full_name"] = json!(REPO);
    started["workflow_job"]["id"] = json!(6020);
    started["workflow_job"]["run_id"] = json!(602);
    started["workflow_job"]["run_attempt"] = json!(1);
    started["workflow_job"]["labels"] = json!(["gpu-large"]);
    started["workflow_job"]["runner_name"] = json!("gpu-runner-1");
    guard.deliver("workflow_job", "started-602", &started);
    assert_eq!(guard.metric("gatehouse_gate_disagreements_total"), 1.0);
    assert_eq!(guard.metric("gatehouse_gate_ungated_total"), 1.0);
    let linked = guard
        .decisions()
        .into_iter()
        .find(|d| d["origin"] == "gate" && d["run_id"] == 602)
        .unwrap();
    assert_eq!(
        linked["job_id"], 6020,
        "the admission is matched to its job"
    );
}

/// A pool of one machine (`concurrency: 1`, `concurrency_wait: 3s`): while one job holds it, the
/// next job's gate waits for the slot the whole 3 seconds, then fails that job alone
/// (`concurrency-exhausted`, saying how many run and that a re-run passes). A job whose slot
/// frees while it waits runs.
#[test]
fn a_job_over_a_concurrency_cap_waits_for_a_slot_then_fails_alone() {
    let guard = Guard::start();
    let snapshot = guard.path("none.bin");
    let runner = || {
        Runner::of(
            "capped-pool",
            &guard,
            Some(&guard.base),
            &snapshot,
            &token_of("capped-pool"),
        )
    };
    let job = |run_id: i64, runner: &'static str| {
        let mut job = RunnerJob::new("push", run_id);
        job.runner = runner;
        guard.announce(&job);
        job
    };
    let first = job(701, "capped-runner-1");
    assert_eq!(
        runner().run(&first, &[]).code,
        0,
        "the free machine is taken"
    );

    let second = job(702, "capped-runner-2");
    let started = std::time::Instant::now();
    let refused = runner().run(&second, &[]);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "refused after {:?}, before the pool's concurrency_wait",
        started.elapsed()
    );
    assert_eq!(refused.rule().as_deref(), Some("concurrency-exhausted"));
    assert!(!refused.steps_ran);
    assert!(
        refused.log.contains("waiting for a slot"),
        "{}",
        refused.log
    );
    assert!(
        refused
            .summary
            .contains("`capped` runs 1 job at once at most, and 1 is running")
            && refused
                .summary
                .contains("re-run it and it will pass once one of them finishes"),
        "{}",
        refused.summary
    );

    // The first job finishes while a third one waits: the third runs.
    let third = job(703, "capped-runner-3");
    let waiting = runner();
    std::thread::scope(|scope| {
        let ran = scope.spawn(|| waiting.run(&third, &[]));
        std::thread::sleep(Duration::from_secs(1));
        let mut done = fixture("workflow_job.completed.json");
        let now = jiff::Timestamp::now();
        done["repository"]["full_name"] = json!(REPO);
        done["workflow_job"]["id"] = json!(7010);
        done["workflow_job"]["run_id"] = json!(701);
        done["workflow_job"]["run_attempt"] = json!(1);
        done["workflow_job"]["labels"] = json!(["capped-large"]);
        done["workflow_job"]["runner_name"] = json!("capped-runner-1");
        done["workflow_job"]["runner_group_name"] = json!(null);
        done["workflow_job"]["started_at"] =
            json!((now - jiff::SignedDuration::from_mins(1)).to_string());
        done["workflow_job"]["completed_at"] = json!(now.to_string());
        guard.deliver("workflow_job", "done-701", &done);
        let ran = ran.join().unwrap();
        assert_eq!(ran.code, 0, "{}", ran.log);
        assert!(ran.steps_ran);
    });
}

// ---------------------------------------------------------------------------------------------
// The kits

#[test]
fn the_diskimage_builder_element_installs_a_working_gate() {
    let guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    assert!(fetch_snapshot(&guard, &snapshot).status.success());
    let build = tempfile::tempdir().unwrap();
    let hooks = build.path().join("hooks");
    let root = build.path().join("root");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let token = guard.path("token-dib");
    std::fs::write(&token, TOKEN).unwrap();
    let conf = guard.path("dib-gate.conf");
    std::fs::write(
        &conf,
        format!(
            "POOL=gpu-pool\nGUARD={}\nTOKEN_FILE=/opt/gatehouse/pool.token\nSNAPSHOT={}\nPUBLIC_KEYS=/opt/gatehouse/gate-signing.pub\n",
            closed_port(),
            snapshot.display()
        ),
    )
    .unwrap();
    let element = kit().join("diskimage-builder/gatehouse-gate");
    // Outside the image: diskimage-builder runs extra-data.d with TMP_HOOKS_PATH and
    // ELEMENTS_PATH set.
    let extra = Command::new("bash")
        .arg(element.join("extra-data.d/50-gatehouse-gate"))
        .env("TMP_HOOKS_PATH", &hooks)
        .env("ELEMENTS_PATH", kit().join("diskimage-builder"))
        .env("DIB_GATEHOUSE_BINARY", bin())
        .env(
            "DIB_GATEHOUSE_PUBLIC_KEY",
            guard.path("keys/gate-signing.pub"),
        )
        .env("DIB_GATEHOUSE_TOKEN", &token)
        .env("DIB_GATEHOUSE_CONF", &conf)
        .output()
        .unwrap();
    assert!(extra.status.success(), "{extra:?}");
    // Inside: install.d, here into a root folder instead of a chroot.
    let install = Command::new("bash")
        .arg(element.join("install.d/80-gatehouse-gate"))
        .env("GATEHOUSE_STAGE", hooks.join("gatehouse-gate"))
        .env("GATEHOUSE_ROOT", &root)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");

    use std::os::unix::fs::PermissionsExt;
    let opt = root.join("opt/gatehouse");
    for (file, mode) in [
        ("bin/gatehouse", 0o755),
        ("job-started.sh", 0o755),
        ("gate.conf", 0o644),
        ("gate-signing.pub", 0o644),
        ("pool.token", 0o644),
    ] {
        let meta = std::fs::metadata(opt.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let env = std::fs::read_to_string(root.join("etc/systemd/system.conf.d/gatehouse-gate.conf"))
        .unwrap();
    assert!(
        env.contains(
            "DefaultEnvironment=ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/gatehouse/job-started.sh"
        ),
        "{env}"
    );
    let timer = root.join("etc/systemd/system/gatehouse-snapshot.timer");
    assert!(timer.exists());
    let service =
        std::fs::read_to_string(root.join("etc/systemd/system/gatehouse-snapshot.service"))
            .unwrap();
    assert!(service.contains("gatehouse gate fetch"));

    // The installed hook works: its gate.conf points at /opt, so run it with the paths of
    // this root.
    let installed = std::fs::read_to_string(opt.join("gate.conf"))
        .unwrap()
        .replace("/opt/gatehouse", &opt.display().to_string());
    std::fs::write(opt.join("gate.conf"), installed).unwrap();
    let runner = Runner {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::copy(
        opt.join("job-started.sh"),
        runner.dir.path().join("job-started.sh"),
    )
    .unwrap();
    std::fs::copy(opt.join("gate.conf"), runner.dir.path().join("gate.conf")).unwrap();
    let conf_text = std::fs::read_to_string(runner.dir.path().join("gate.conf")).unwrap();
    assert!(
        !conf_text.contains("GATEHOUSE_BIN"),
        "the binary is found beside the hook"
    );
    std::fs::create_dir_all(runner.dir.path().join("bin")).unwrap();
    std::fs::copy(
        opt.join("bin/gatehouse"),
        runner.dir.path().join("bin/gatehouse"),
    )
    .unwrap();
    let job = RunnerJob::new("push", 701);
    let o = runner.run(&job, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let o = runner.run(&job.clone().by(NO_TOS), &[]);
    assert_eq!(o.rule().as_deref(), Some("user-not-allowed"), "{o:?}");
    assert!(!o.steps_ran);
}

#[test]
fn the_actions_runner_controller_template_wires_the_hook_to_its_files() {
    let dir = kit().join("actions-runner-controller");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let values: Value = serde_saphyr::from_str(&read("values.yaml")).unwrap();
    let configmap: Value = serde_saphyr::from_str(&read("gate-configmap.yaml")).unwrap();
    let conf: std::collections::HashMap<String, String> = configmap["data"]["gate.conf"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let spec = &values["template"]["spec"];
    let runner = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "runner")
        .unwrap();
    let hook = runner["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "ACTIONS_RUNNER_HOOK_JOB_STARTED")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    // The hook the image holds, and gate.conf beside it from the ConfigMap.
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("job-started.sh {hook}")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains(&format!("gatehouse {}", conf["GATEHOUSE_BIN"])));
    assert!(dockerfile.contains(&format!("gate-signing.pub {}", conf["PUBLIC_KEYS"])));
    let mounts = |c: &Value| c["volumeMounts"].as_array().unwrap().clone();
    let conf_mount = mounts(runner)
        .into_iter()
        .find(|m| m["name"] == "gatehouse-conf")
        .unwrap();
    assert_eq!(
        Path::new(conf_mount["mountPath"].as_str().unwrap()),
        Path::new(hook).parent().unwrap().join("gate.conf")
    );
    // The snapshot: written by the init container, read-only for the job.
    let init = &spec["initContainers"][0];
    let command: Vec<&str> = init["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let arg = |flag: &str| command[command.iter().position(|c| *c == flag).unwrap() + 1];
    assert_eq!(&command[1..3], ["gate", "fetch"]);
    assert_eq!(arg("--out"), conf["SNAPSHOT"]);
    assert_eq!(arg("--token-file"), conf["TOKEN_FILE"]);
    assert_eq!(arg("--guard"), conf["GUARD"]);
    let under = |mounts: Vec<Value>, path: &str| {
        mounts
            .into_iter()
            .find(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{path} is on no volume"))
    };
    let in_runner = under(mounts(runner), &conf["SNAPSHOT"]);
    let in_init = under(mounts(init), &conf["SNAPSHOT"]);
    assert_eq!(in_runner["name"], in_init["name"]);
    assert_eq!(
        in_runner["readOnly"], true,
        "a job cannot replace the snapshot"
    );
    assert_ne!(in_init["readOnly"], true);
    let token = under(mounts(runner), &conf["TOKEN_FILE"]);
    assert_eq!(token["readOnly"], true);
    // Every key the hook reads is one it knows.
    let script = std::fs::read_to_string(kit().join("self-hosted/job-started.sh")).unwrap();
    for key in conf.keys() {
        assert!(
            script.contains(&format!("cfg[{key}]")),
            "job-started.sh ignores {key}"
        );
    }
}

/// Every `--flag` in `text` on lines that contain `on`.
fn flags_on_lines(text: &str, on: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| l.contains(on)) {
        let mut rest = line;
        while let Some(at) = rest.find("--") {
            let flag: String = rest[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            if !flag.is_empty() {
                out.insert(flag.clone());
            }
            rest = &rest[at + 2 + flag.len()..];
        }
    }
    out
}

/// Every `KEY` in `text` written as `before KEY after`.
fn names_between(text: &str, before: &str, after: &str) -> std::collections::BTreeSet<String> {
    text.split(before)
        .skip(1)
        .filter_map(|s| s.split(after).next())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(str::to_string)
        .collect()
}

/// The PowerShell hook, for Windows runners, cannot run here (PowerShell cannot be installed
/// where gatehouse is tested), so it is held to the bash hook's text: the same gate.conf keys,
/// the same `gatehouse gate` flags and the same job variables handed on (GitHub's "Running
/// scripts before or after a job": a `.ps1` hook runs with pwsh as `-command ". '<file>'"`), and
/// it says plainly, as the README does, that it is untested.
#[test]
fn the_powershell_hook_says_what_the_bash_hook_says() {
    let sh = std::fs::read_to_string(kit().join("self-hosted/job-started.sh")).unwrap();
    let ps = std::fs::read_to_string(kit().join("self-hosted/job-started.ps1")).unwrap();

    let sh_vars: std::collections::BTreeSet<String> = sh
        .split("for name in ")
        .nth(1)
        .and_then(|s| s.split("; do").next())
        .unwrap()
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(str::to_string)
        .collect();
    let ps_vars: std::collections::BTreeSet<String> = ps
        .split("foreach ($name in @(")
        .nth(1)
        .and_then(|s| s.split("))").next())
        .unwrap()
        .split(',')
        .map(|w| w.trim().trim_matches('\'').to_string())
        .collect();
    assert!(
        sh_vars.contains("GITHUB_EVENT_PATH") && sh_vars.len() > 10,
        "{sh_vars:?}"
    );
    assert_eq!(ps_vars, sh_vars);

    let sh_keys = names_between(&sh, "cfg[", "]");
    let ps_keys = names_between(&ps, "Get-Conf '", "'");
    assert!(
        sh_keys.contains("LABELS") && sh_keys.contains("PUBLIC_KEYS"),
        "{sh_keys:?}"
    );
    assert_eq!(ps_keys, sh_keys);

    let sh_flags = flags_on_lines(&sh, "args");
    let ps_flags = flags_on_lines(&ps, "$gate.Add(");
    assert!(
        sh_flags.contains("labels") && sh_flags.contains("token-file"),
        "{sh_flags:?}"
    );
    assert_eq!(ps_flags, sh_flags);

    assert!(ps.contains("UNTESTED ON WINDOWS"));
    let readme = std::fs::read_to_string(kit().join("../README.md")).unwrap();
    assert!(
        readme.contains("job-started.ps1") && readme.contains("**It is untested**"),
        "the README says the PowerShell hook is untested"
    );
}

/// A job told to wait for a slot is never decided by the snapshot (which cannot count running
/// jobs): when the guard stops answering while it waits, it keeps asking for
/// `UNREACHABLE_WAIT` (`--unreachable-wait`), then fails with a reason, although a valid
/// snapshot that would admit it is at hand.
#[test]
fn a_waiting_job_whose_guard_stops_answering_is_refused_not_decided_offline() {
    let mut guard = Guard::start();
    let snapshot = guard.path("snapshot.bin");
    let fetched = fetch_snapshot(&guard, &snapshot);
    assert!(fetched.status.success(), "{fetched:?}");
    let token_file = guard.path("token-capped-pool");
    std::fs::write(&token_file, format!("{}\n", token_of("capped-pool"))).unwrap();
    let runner = Runner::new(&[
        ("POOL", "capped-pool".to_string()),
        ("GUARD", guard.base.clone()),
        ("TOKEN_FILE", token_file.display().to_string()),
        ("TIMEOUT", "1s".to_string()),
        ("UNREACHABLE_WAIT", "2s".to_string()),
        ("SNAPSHOT", snapshot.display().to_string()),
        (
            "PUBLIC_KEYS",
            guard.path("keys/gate-signing.pub").display().to_string(),
        ),
    ]);
    let job = |run_id: i64, runner: &'static str| {
        let mut job = RunnerJob::new("push", run_id);
        job.runner = runner;
        guard.announce(&job);
        job
    };
    let first = job(801, "capped-runner-1");
    assert_eq!(runner.run(&first, &[]).code, 0, "the free machine is taken");
    let second = job(802, "capped-runner-2");
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let started = std::time::Instant::now();
            (runner.run(&second, &[]), started.elapsed())
        });
        // It is waiting for the slot when the guard goes away.
        std::thread::sleep(Duration::from_millis(700));
        guard.stop_now();
        let (refused, took) = waiting.join().unwrap();
        assert_ne!(refused.code, 0, "{}", refused.log);
        assert!(!refused.steps_ran);
        assert!(
            refused.log.contains("waiting for a slot"),
            "{}",
            refused.log
        );
        assert!(
            refused.summary.contains(
                "this job was waiting for a concurrency slot and the guard stopped answering for 2s"
            ),
            "{}",
            refused.summary
        );
        assert!(
            !refused.log.contains("snapshot"),
            "never decided offline: {}",
            refused.log
        );
        assert!(
            took >= Duration::from_millis(2500),
            "refused after {took:?}"
        );
        assert!(took < Duration::from_secs(10), "refused after {took:?}");
    });
}
