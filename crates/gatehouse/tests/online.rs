//! `gatehouse check --online` end to end: the binary against a fake GitHub on loopback that
//! answers like GitHub's REST API and injects faults (server errors, rate limits, slow answers,
//! a rejected token).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The token the fake accepts. No run may ever print it.
const TOKEN: &str = "ghp_gatehouseTestToken_MustNeverBePrinted_0123";

// ---------------------------------------------------------------------------------------------
// The fake GitHub

/// An answer given instead of the real one, in order, before the real one.
#[derive(Clone)]
enum Fault {
    Status(u16),
    /// 403 with `x-ratelimit-remaining: 0` until the given epoch second has passed.
    RateLimitedUntil(u64),
    /// 429 with `retry-after`, once.
    RetryAfter(u64),
    /// Answers only after this long.
    Slow(Duration),
}

#[derive(Default)]
struct Fake {
    /// `owner/repo` → archived.
    repos: HashMap<String, bool>,
    /// Lower-cased login → id.
    users: HashMap<String, i64>,
    /// Every request answers this status (after the token check).
    always: Option<u16>,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    calls: Mutex<HashMap<String, u32>>,
}

impl Fake {
    fn repo(mut self, project: &str, archived: bool) -> Self {
        self.repos
            .insert(format!("conda-forge/{project}-feedstock"), archived);
        self
    }

    fn user(mut self, login: &str, id: i64) -> Self {
        self.users.insert(login.to_lowercase(), id);
        self
    }

    fn fault(self, path: &str, faults: &[Fault]) -> Self {
        self.faults
            .lock()
            .unwrap()
            .insert(path.to_string(), faults.iter().cloned().collect());
        self
    }

    fn calls(&self, path: &str) -> u32 {
        self.calls.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    /// What GitHub would answer before looking at the resource: authentication, required
    /// headers, and any injected fault.
    async fn gate(&self, path: &str, headers: &HeaderMap) -> Option<Response> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default() += 1;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Some(error(401, "Bad credentials"));
        }
        if header("accept") != Some("application/vnd.github+json")
            || header("x-github-api-version") != Some("2022-11-28")
            || !header("user-agent").is_some_and(|ua| ua.starts_with("gatehouse/"))
        {
            return Some(error(
                400,
                "missing or wrong Accept, X-GitHub-Api-Version or User-Agent",
            ));
        }
        if let Some(status) = self.always {
            return Some(error(status, "Server Error"));
        }
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            let queue = faults.entry(path.to_string()).or_default();
            match queue.front() {
                Some(Fault::RateLimitedUntil(reset)) if now_secs() >= *reset => {
                    queue.pop_front();
                    None
                }
                Some(Fault::RateLimitedUntil(_)) => queue.front().cloned(),
                _ => queue.pop_front(),
            }
        };
        match fault? {
            Fault::Status(status) => Some(error(status, "Server Error")),
            Fault::RateLimitedUntil(reset) => {
                let mut r = error(403, "API rate limit exceeded for user ID 1.");
                let h = r.headers_mut();
                h.insert("x-ratelimit-limit", "5000".parse().unwrap());
                h.insert("x-ratelimit-remaining", "0".parse().unwrap());
                h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
                Some(r)
            }
            Fault::RetryAfter(secs) => {
                let mut r = error(429, "You have exceeded a secondary rate limit.");
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
                Some(r)
            }
            Fault::Slow(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

fn error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        axum::Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_str(),
        })),
    )
        .into_response()
}

async fn get_repo(
    State(fake): State<Arc<Fake>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = fake.gate(&format!("/repos/{owner}/{repo}"), &headers).await {
        return r;
    }
    let full_name = format!("{owner}/{repo}");
    match fake.repos.get(&full_name) {
        Some(archived) => axum::Json(json!({
            "id": 1296269,
            "name": repo,
            "full_name": full_name,
            "private": false,
            "archived": archived,
            "disabled": false,
        }))
        .into_response(),
        None => error(404, "Not Found"),
    }
}

async fn get_user(
    State(fake): State<Arc<Fake>>,
    UrlPath(login): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = fake.gate(&format!("/users/{login}"), &headers).await {
        return r;
    }
    match fake.users.get(&login.to_lowercase()) {
        Some(id) => axum::Json(json!({ "login": login, "id": id, "type": "User" })).into_response(),
        None => error(404, "Not Found"),
    }
}

/// Starts the fake on 127.0.0.1 in a thread of its own; returns its base URL.
fn serve(fake: Fake) -> (String, Arc<Fake>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/users/{login}", get(get_user))
        .with_state(fake.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (base, fake)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// The access repository and the binary

/// An access repository with a grant of `gpu` for each project and one ToS entry,
/// `alice` with id 1.
fn access_repo(projects: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        (
            "gatehouse.yml".to_string(),
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\n\
             providers: { cirun: { kind: cirun, access_repo: .cirun } }\n"
                .to_string(),
        ),
        (
            "resources/gpu.yml".to_string(),
            "name: gpu\nprovider: cirun\nlabels: [gpu]\n".to_string(),
        ),
        (
            "people/tos.yml".to_string(),
            "- { github: alice, id: 1 }\n".to_string(),
        ),
    ];
    for p in projects {
        files.push((
            format!("grants/{p}.yml"),
            format!("project: {p}\ngrants: [{{ resource: gpu, granted: 2026-01-01 }}]\n"),
        ));
    }
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    fn diagnostics(&self) -> Vec<Value> {
        self.json()["diagnostics"].as_array().unwrap().clone()
    }

    /// The one diagnostic with `code`.
    fn finding(&self, code: &str) -> Value {
        let found: Vec<_> = self
            .diagnostics()
            .into_iter()
            .filter(|d| d["code"] == code)
            .collect();
        assert_eq!(found.len(), 1, "expected one `{code}`:\n{self}");
        found[0].clone()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `check --online --format json` on `dir` against `api` with `token`, retrying fast.
fn check(dir: &Path, api: &str, token: Option<&str>, extra: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args([
        "check",
        "--online",
        "--today",
        "2026-11-28",
        "--format",
        "json",
    ])
    .args(extra)
    .arg(dir)
    .env("GATEHOUSE_GITHUB_API", api)
    .env("GATEHOUSE_HTTP_BACKOFF_MS", "10")
    .env("GATEHOUSE_HTTP_TIMEOUT_MS", "2000")
    .env_remove("GATEHOUSE_HTTP_MAX_WAIT_SECS")
    .env_remove("GATEHOUSE_TODAY")
    // The most verbose logging, so a token that reached any log line would show.
    .env("GATEHOUSE_LOG", "trace")
    .env("NO_COLOR", "1");
    match token {
        Some(t) => cmd.env("GITHUB_TOKEN", t),
        None => cmd.env_remove("GITHUB_TOKEN"),
    };
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    for secret in [Some(TOKEN), token].into_iter().flatten() {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "the token leaked:\n{run}"
        );
    }
    run
}

const REPO_X: &str = "/repos/conda-forge/x-feedstock";
const USER_ALICE: &str = "/users/alice";

// ---------------------------------------------------------------------------------------------
// Findings

#[test]
fn all_good_exits_zero_and_asks_each_question_once() {
    let (api, fake) = serve(Fake::default().repo("x", false).user("alice", 1));
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.diagnostics().is_empty(), "{run}");
    assert_eq!((fake.calls(REPO_X), fake.calls(USER_ALICE)), (1, 1));
}

#[test]
fn a_missing_repository_is_an_error_at_the_project_line() {
    let (api, _fake) = serve(Fake::default().repo("x", false).user("alice", 1));
    let dir = access_repo(&["x", "gone"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let d = run.finding("repo-missing");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "grants/gone.yml");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(10))
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("conda-forge/gone-feedstock"),
        "{run}"
    );
    assert_eq!(run.diagnostics().len(), 1, "{run}");
}

#[test]
fn an_archived_repository_is_an_error() {
    let (api, _fake) = serve(Fake::default().repo("x", true).user("alice", 1));
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let d = run.finding("repo-archived");
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64()),
        (Some("grants/x.yml"), Some(1))
    );
}

#[test]
fn a_tos_login_that_changed_hands_is_an_error() {
    let (api, _fake) = serve(Fake::default().repo("x", false).user("alice", 2));
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let d = run.finding("tos-id-mismatch");
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64()),
        (Some("people/tos.yml"), Some(1))
    );
}

#[test]
fn a_tos_login_that_no_longer_exists_is_an_error() {
    let (api, _fake) = serve(Fake::default().repo("x", false));
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let d = run.finding("tos-login-gone");
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64()),
        (Some("people/tos.yml"), Some(1))
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn server_errors_are_retried() {
    let fake = Fake::default()
        .repo("x", false)
        .user("alice", 1)
        .fault(REPO_X, &[Fault::Status(502), Fault::Status(502)]);
    let (api, fake) = serve(fake);
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.diagnostics().is_empty(), "{run}");
    assert_eq!(fake.calls(REPO_X), 3);
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let fake = Fake::default()
        .repo("x", false)
        .user("alice", 1)
        .fault(USER_ALICE, &[Fault::Slow(Duration::from_secs(30))]);
    let (api, fake) = serve(fake);
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.diagnostics().is_empty(), "{run}");
    assert_eq!(fake.calls(USER_ALICE), 2);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn an_exhausted_rate_limit_is_waited_out() {
    let reset = now_secs() + 1;
    let fake = Fake::default()
        .repo("x", false)
        .user("alice", 1)
        .fault(REPO_X, &[Fault::RateLimitedUntil(reset)]);
    let (api, fake) = serve(fake);
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.diagnostics().is_empty(), "{run}");
    // The fake refuses until the reset, so the second call succeeding proves the wait.
    assert_eq!(fake.calls(REPO_X), 2);
}

#[test]
fn retry_after_is_honoured() {
    let fake = Fake::default()
        .repo("x", false)
        .user("alice", 1)
        .fault(USER_ALICE, &[Fault::RetryAfter(1)]);
    let (api, fake) = serve(fake);
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(fake.calls(USER_ALICE), 2);
    assert!(
        run.elapsed >= Duration::from_secs(1),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn a_rate_limit_beyond_the_cap_gives_up_with_when_it_resets() {
    let fake = Fake::default()
        .repo("x", false)
        .user("alice", 1)
        .fault(REPO_X, &[Fault::RateLimitedUntil(now_secs() + 3600)]);
    let (api, _fake) = serve(fake);
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    // The login may or may not have been asked before the limit was seen; the repository
    // certainly met it.
    let diags = run.diagnostics();
    assert!(
        diags.iter().all(|d| d["code"] == "online-unverified"),
        "{run}"
    );
    let d = diags.iter().find(|d| d["file"] == "grants/x.yml").unwrap();
    assert_eq!(d["severity"], "warning");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("rate limit is used up until")
            && message.contains("GATEHOUSE_HTTP_MAX_WAIT_SECS"),
        "{run}"
    );
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn a_failing_github_gives_warnings_not_a_crash() {
    let (api, fake) = serve(Fake {
        always: Some(500),
        ..Fake::default()
    });
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, Some(TOKEN), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let json = run.json();
    assert_eq!(
        (json["errors"].as_u64(), json["warnings"].as_u64()),
        (Some(0), Some(2))
    );
    for d in run.diagnostics() {
        assert_eq!(d["code"], "online-unverified", "{run}");
        assert!(d["message"].as_str().unwrap().contains("500"), "{run}");
    }
    // Retried, but boundedly.
    assert!(
        (2..=4).contains(&fake.calls(REPO_X)),
        "{}",
        fake.calls(REPO_X)
    );
}

#[test]
fn a_rejected_token_fails_the_run_and_names_github_token() {
    let (api, fake) = serve(Fake::default().repo("x", false).user("alice", 1));
    let dir = access_repo(&["x"]);
    let wrong = "ghp_wrongTokenThatMustNotBePrintedEither";
    let run = check(dir.path(), &api, Some(wrong), &[]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("GITHUB_TOKEN") && run.stderr.contains("401"),
        "{run}"
    );
    // A rejected token is not retried.
    assert!(fake.total_calls() <= 2, "{}", fake.total_calls());
}

#[test]
fn without_a_token_online_checks_are_skipped_with_a_warning() {
    let (api, fake) = serve(Fake::default());
    let dir = access_repo(&["x"]);
    let run = check(dir.path(), &api, None, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.finding("online-skipped")["severity"], "warning");

    let strict = check(dir.path(), &api, None, &["--strict"]);
    assert_eq!(strict.code, Some(1), "{strict}");
    assert_eq!(strict.finding("online-skipped")["severity"], "error");
    assert_eq!(fake.total_calls(), 0);
}
