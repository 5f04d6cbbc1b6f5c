//! `gatehouse check --online` end to end: the binary against the loopback GitHub
//! (`gatehouse-fake`) that answers like GitHub's REST API and injects faults (server errors,
//! rate limits, slow answers, a rejected token).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gatehouse_fake::{FakeGitHub, Fault};
use serde_json::Value;

/// The token the fake accepts. No run may ever print it.
const TOKEN: &str = "ghp_gatehouseTestToken_MustNeverBePrinted_0123";

// ---------------------------------------------------------------------------------------------
// The fake GitHub

/// A GitHub where only the repositories and accounts a test names exist.
struct Fake(FakeGitHub);

impl Default for Fake {
    fn default() -> Self {
        let github = FakeGitHub::with_token(TOKEN);
        github.state.lock().unwrap().known_only = true;
        Fake(github)
    }
}

impl Fake {
    fn repo(self, project: &str, archived: bool) -> Self {
        self.0
            .add_repo(&format!("conda-forge/{project}-feedstock"), archived);
        self
    }

    fn user(self, login: &str, id: i64) -> Self {
        self.0
            .state
            .lock()
            .unwrap()
            .accounts
            .insert(login.to_lowercase(), id);
        self
    }

    /// Faults for `GET path`.
    fn fault(self, path: &str, faults: &[Fault]) -> Self {
        self.0.gate.fault(&format!("GET {path}"), faults);
        self
    }

    /// Every call answers `status`.
    fn always(self, status: u16) -> Self {
        self.0.gate.fail_all(Some(status));
        self
    }
}

/// Starts the fake on 127.0.0.1; returns its base URL.
fn serve(fake: Fake) -> (String, Arc<FakeGitHub>) {
    gatehouse_fake::serve_github(fake.0)
}

/// How often `GET path` was called.
fn calls(fake: &FakeGitHub, path: &str) -> usize {
    fake.gate.count_exact(&format!("GET {path}"))
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
    assert_eq!((calls(&fake, REPO_X), calls(&fake, USER_ALICE)), (1, 1));
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
    assert_eq!(calls(&fake, REPO_X), 3);
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
    assert_eq!(calls(&fake, USER_ALICE), 2);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn an_exhausted_rate_limit_is_waited_out() {
    // Far enough ahead that the limit still holds when the first call arrives (the command
    // starts in a fresh process, which takes a while on a loaded machine).
    let reset = now_secs() + 3;
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
    assert_eq!(calls(&fake, REPO_X), 2);
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
    assert_eq!(calls(&fake, USER_ALICE), 2);
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
    let (api, fake) = serve(Fake::default().always(500));
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
        (2..=4).contains(&calls(&fake, REPO_X)),
        "{}",
        calls(&fake, REPO_X)
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
    assert!(fake.gate.total() <= 2, "{}", fake.gate.total());
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
    assert_eq!(fake.gate.total(), 0);
}
