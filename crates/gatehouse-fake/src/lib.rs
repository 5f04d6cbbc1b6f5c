//! Loopback stand-ins for GitHub's and Cirun's APIs, shared by every test that talks to them
//! (the command line's `apply`, `doctor`, `approvals`, `check --online`, ...; the guard's
//! end-to-end tests) and by the guard's load generator. Not for production: nothing here is
//! hardened, and every answer is made up from the state a test sets.
//!
//! GitHub's answers follow its OpenAPI description (npm `@octokit/openapi`,
//! `generated/api.github.com.json`); each handler names the operation id it stands in for.
//! Cirun's follow its official client, cirun-py (see [`FakeCirun`]). Each fake keeps state
//! like the real service, serves it over a real TCP socket on 127.0.0.1, logs every call
//! (method, path, query and body) and injects faults on demand ([`Gate`]): a status (with
//! GitHub's rate-limit headers for 403 and 429 when asked), `Retry-After`, a primary rate
//! limit used up until a given time, a slow answer, a dropped connection, a status for every
//! call, a delay per endpoint, and small pages so that listings need a second page.
//!
//! The endpoints the runtime guard calls (collaborators, workflow-run attempts, cancels, check
//! runs, team repositories, webhook deliveries) are in `guard_api.rs`; the builders of
//! GitHub's answer shapes both use (`simple-user`, `repository`, `pull-request`, ...) in
//! `shapes.rs`.

mod guard_api;
mod shapes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::{Value, json};

pub use guard_api::Delivery;

pub const GITHUB_TOKEN: &str = "ghp_applyTestToken_MustNeverBePrinted_4567";
pub const CIRUN_KEY: &str = "cirun_applyTestKey_MustNeverBePrinted_8901";

/// An answer given instead of the real one.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status, with GitHub's error body (`basic-error`).
    Status(u16),
    /// This status (403 or 429) with GitHub's primary rate-limit headers: the limit used up
    /// (`x-ratelimit-remaining: 0`) until the next second (`x-ratelimit-reset`).
    RateLimited(u16),
    /// 403 with `x-ratelimit-remaining: 0` until the given epoch second has passed: every
    /// call until then gets it, the first one after passes.
    RateLimitedUntil(u64),
    /// 429 with `retry-after`.
    RetryAfter(u64),
    /// The answer comes only after this long (the call is logged when it arrives).
    Slow(Duration),
    /// The connection is closed without an answer.
    Drop,
}

/// One call as it reached a fake.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The query string, when there is one.
    pub query: Option<String>,
    /// The headers as sent (credentials included: this is a test's log).
    pub headers: Vec<(String, String)>,
    /// The body, when it is JSON.
    pub body: Option<Value>,
}

impl Call {
    /// The request line and headers, as text.
    pub fn head(&self) -> String {
        let target = match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        };
        let mut head = format!("{} {target} HTTP/1.1\r\n", self.method);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head
    }
}

/// What every fake shares: the token it accepts, faults, delays and the call log.
///
/// Faults and delays are chosen by a pattern over `"METHOD /path"`: the call itself, or with
/// `*` standing for any text (`"GET /repos*"`, `"POST */cancel"`).
#[derive(Default)]
pub struct Gate {
    token: String,
    /// Whether a call must carry the headers GitHub's REST API asks for (`Accept:
    /// application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28`, a `User-Agent`, here
    /// gatehouse's): 400 otherwise.
    github_headers: bool,
    /// Every call answers this status until cleared.
    sticky: Mutex<Option<u16>>,
    /// Every call, whatever its credentials, answers these statuses in turn with its own head
    /// in `message` (see [`Gate::echo_all`]); and how many were answered so.
    echo: Mutex<(Vec<u16>, usize)>,
    /// (pattern, fault), given in order, each once (but `RateLimitedUntil`), before real
    /// answers.
    faults: Mutex<Vec<(String, Fault)>>,
    /// (pattern, delay): every matching call waits this long before it is answered.
    delays: Mutex<Vec<(String, Duration)>>,
    calls: Mutex<Vec<Call>>,
}

impl Gate {
    fn new(token: &str) -> Self {
        Gate {
            token: token.to_string(),
            ..Gate::default()
        }
    }

    /// Every call fails with `status` until `fail_all(None)`.
    pub fn fail_all(&self, status: Option<u16>) {
        *self.sticky.lock().unwrap() = status;
    }

    /// Faults for calls matching `pattern` (`"METHOD /path"`, `*` for any text), given before
    /// their real answers.
    pub fn fault(&self, pattern: &str, faults: &[Fault]) {
        self.faults
            .lock()
            .unwrap()
            .extend(faults.iter().map(|f| (pattern.to_string(), f.clone())));
    }

    /// The next calls matching `pattern` answer `statuses`, 403 and 429 with GitHub's
    /// rate-limit headers (the limit used up for a second).
    pub fn fail(&self, pattern: &str, statuses: &[u16]) {
        let faults: Vec<Fault> = statuses
            .iter()
            .map(|s| match s {
                403 | 429 => Fault::RateLimited(*s),
                _ => Fault::Status(*s),
            })
            .collect();
        self.fault(pattern, &faults);
    }

    /// Every call, whatever its credentials, fails with the next of `statuses` (in turn) and
    /// the call's own request line and headers, `Authorization` first, in the answer's
    /// `message`, as some proxies answer: a client that quoted answers without care would
    /// quote its token. Empty: no more.
    pub fn echo_all(&self, statuses: &[u16]) {
        *self.echo.lock().unwrap() = (statuses.to_vec(), 0);
    }

    /// Every call matching `pattern` waits `delay` before it is answered (zero: no more).
    pub fn delay(&self, pattern: &str, delay: Duration) {
        let mut delays = self.delays.lock().unwrap();
        delays.retain(|(p, _)| p != pattern);
        if !delay.is_zero() {
            delays.push((pattern.to_string(), delay));
        }
    }

    /// Calls so far, as `"METHOD /path"`.
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect()
    }

    /// Calls so far, with their queries and bodies.
    pub fn requests(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// How many calls start with `prefix` (`"METHOD /path"`).
    pub fn count(&self, prefix: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// How many calls were exactly `call` (`"METHOD /path"`).
    pub fn count_exact(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| *c == call).count()
    }

    /// How many calls contain `part` (`"/cancel"`).
    pub fn count_containing(&self, part: &str) -> usize {
        self.calls().iter().filter(|c| c.contains(part)).count()
    }

    /// How many calls there were.
    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Calls that change something.
    pub fn mutations(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| !c.starts_with("GET "))
            .count()
    }

    pub fn reset_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// Notes a call as it arrives, then holds it for its delays and a `Slow` fault: before the
    /// handler, so a call the client gives up on is still logged.
    async fn arrive(&self, request: axum::extract::Request) -> axum::extract::Request {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .unwrap_or_default();
        let call = format!("{} {}", parts.method, parts.uri.path());
        self.calls.lock().unwrap().push(Call {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&bytes).ok(),
        });
        let delays: Vec<Duration> = self
            .delays
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| fits(p, &call))
            .map(|(_, d)| *d)
            .collect();
        for d in delays {
            tokio::time::sleep(d).await;
        }
        let slow = {
            let mut faults = self.faults.lock().unwrap();
            match faults.iter().position(|(p, _)| fits(p, &call)) {
                Some(i) if matches!(faults[i].1, Fault::Slow(_)) => Some(faults.remove(i).1),
                _ => None,
            }
        };
        if let Some(Fault::Slow(d)) = slow {
            tokio::time::sleep(d).await;
        }
        axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))
    }

    /// What every call meets first (in [`arrive_layer`], before its route): an echo, the token,
    /// GitHub's headers, a sticky failure or an injected fault; `None` lets it through.
    fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let call = format!("{method} {}", uri.path());
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(status) = self.next_echo() {
            return Some(echo(status, method, uri, headers));
        }
        if header("authorization") != Some(&format!("Bearer {}", self.token)) {
            return Some(error(401, "Bad credentials"));
        }
        if self.github_headers
            && (header("accept") != Some("application/vnd.github+json")
                || header("x-github-api-version") != Some("2022-11-28")
                || !header("user-agent").is_some_and(|ua| ua.starts_with("gatehouse/")))
        {
            return Some(error(
                400,
                "missing or wrong Accept, X-GitHub-Api-Version or User-Agent",
            ));
        }
        if let Some(status) = *self.sticky.lock().unwrap() {
            return Some(error(status, "Server Error"));
        }
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            let i = faults.iter().position(|(p, _)| fits(p, &call))?;
            match faults[i].1 {
                Fault::RateLimitedUntil(reset) if now_secs() >= reset => {
                    faults.remove(i);
                    return None;
                }
                Fault::RateLimitedUntil(_) => faults[i].1.clone(),
                _ => faults.remove(i).1,
            }
        };
        match fault {
            Fault::Status(s) => Some(error(s, "Server Error")),
            Fault::RateLimited(s) => Some(rate_limited(s, now_secs() + 1)),
            Fault::RateLimitedUntil(reset) => Some(rate_limited(403, reset)),
            Fault::RetryAfter(secs) => {
                let mut r = error(429, "You have exceeded a secondary rate limit.");
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
                Some(r)
            }
            // Taken when the call arrived (`arrive`, which runs first): never found here.
            Fault::Slow(_) => None,
            // Unwinding out of the handler ends the connection's task: the client sees the
            // connection closed with no answer.
            Fault::Drop => std::panic::resume_unwind(Box::new("fault: dropped connection")),
        }
    }
}

impl Gate {
    fn next_echo(&self) -> Option<u16> {
        let mut echo = self.echo.lock().unwrap();
        let (statuses, answered) = &mut *echo;
        let status = *statuses.get(*answered % statuses.len().max(1))?;
        *answered += 1;
        Some(status)
    }
}

/// `status` with the request's line and headers (`Authorization` first, so that cutting the
/// message short cannot hide it) in `message`.
fn echo(status: u16, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let mut head = format!("{method} {uri} HTTP/1.1\r\n");
    let mut names: Vec<_> = headers.keys().collect();
    names.sort_by_key(|n| *n != "authorization");
    for name in names {
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    error(status, &head)
}

/// GitHub's answer to a call over its primary rate limit: `status` (403 or 429) with the limit
/// used up until `reset` (epoch seconds).
fn rate_limited(status: u16, reset: u64) -> Response {
    let mut r = error(status, "API rate limit exceeded for user ID 1.");
    let h = r.headers_mut();
    h.insert("x-ratelimit-limit", "5000".parse().unwrap());
    h.insert("x-ratelimit-remaining", "0".parse().unwrap());
    h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
    r
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whether `call` fits `pattern`, where `*` stands for any text.
fn fits(pattern: &str, call: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = call.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The layer that logs a call to `gate` as it arrives and holds it for its delays.
async fn arrive_layer<F: AsGate>(
    State(fake): State<Arc<F>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request = fake.gate().arrive(request).await;
    // Every route's first step: the token, GitHub's headers and the faults injected.
    if let Some(resp) = fake
        .gate()
        .check(request.method(), request.uri(), request.headers())
    {
        return resp;
    }
    next.run(request).await
}

/// A fake with a [`Gate`].
trait AsGate: Send + Sync + 'static {
    fn gate(&self) -> &Gate;
}

impl AsGate for FakeGitHub {
    fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl AsGate for FakeCirun {
    fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// Stops the fakes at a chosen call, so that a test can kill the client there: every call
/// after the first `n` is held (before the fake acts on it, or after) until [`Hold::release`].
/// Shared by the fakes of one test, so `n` counts the calls to all of them in order.
#[derive(Default)]
pub struct Hold {
    calls: AtomicUsize,
    /// (n, act first).
    at: Mutex<Option<(usize, bool)>>,
    held: AtomicUsize,
    released: std::sync::atomic::AtomicBool,
    /// Every answer waits this long (a slow service).
    pub delay: Mutex<Duration>,
}

impl Hold {
    pub fn new() -> Arc<Hold> {
        Arc::new(Hold::default())
    }

    /// Holds every call after the first `n`; with `act_first`, the fake makes the change and
    /// then holds the answer (the client never learns it was made).
    pub fn after(&self, n: usize, act_first: bool) {
        *self.at.lock().unwrap() = Some((n, act_first));
    }

    /// Whether a call is being held now.
    pub fn holding(&self) -> bool {
        self.held.load(Ordering::SeqCst) > 0
    }

    /// Lets held calls go: one held before acting fails (503) without acting; one held after
    /// acting is answered.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        *self.at.lock().unwrap() = None;
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn hold_layer(
    State(hold): State<Arc<Hold>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let delay = *hold.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let n = hold.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let at = *hold.at.lock().unwrap();
    let tripped = at.filter(|(limit, _)| n > *limit);
    let wait = || async {
        hold.held.fetch_add(1, Ordering::SeqCst);
        while !hold.released.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        hold.held.fetch_sub(1, Ordering::SeqCst);
    };
    match tripped {
        Some((_, false)) => {
            wait().await;
            error(503, "held, then dropped")
        }
        Some((_, true)) => {
            let response = next.run(request).await;
            wait().await;
            response
        }
        None => next.run(request).await,
    }
}

/// GitHub's `basic-error` body (Cirun's errors carry a `message` too).
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

// ---------------------------------------------------------------------------------------------
// GitHub

#[derive(Default)]
pub struct GitHubState {
    /// Lower-cased `owner/name` -> (id, name as GitHub spells it). Created on first sight
    /// unless listed in `missing`.
    repos: HashMap<String, (u64, String)>,
    pub missing: BTreeSet<String>,
    /// Installation id -> repository ids.
    pub installations: BTreeMap<u64, BTreeSet<u64>>,
    /// Runner group id -> (name, repository ids).
    pub runner_groups: BTreeMap<u64, (String, BTreeSet<u64>)>,
    /// Runner groups (by id) that allow public repositories; the others do not.
    pub public_groups: BTreeSet<u64>,
    /// GitHub-hosted larger runners by id: (name, runner group id, `maximum_runners`).
    pub hosted_runners: BTreeMap<u64, (String, u64, u32)>,
    /// Issue number -> the issue as last written.
    pub issues: BTreeMap<u64, Value>,
    /// What `GET /repos/{o}/{r}/commits/{sha}/pulls` answers for every commit, and the
    /// reviews of that pull request.
    pub merged_pull: Option<(u64, Vec<&'static str>)>,
    /// Open pull requests by number: author, head, changed files and reviews.
    pub pulls: BTreeMap<u64, FakePull>,
    /// Team slug -> member logins. A team not listed answers 404.
    pub teams: BTreeMap<String, Vec<String>>,
    /// Issue and pull request comments by id, each with its `issue_number`.
    pub comments: BTreeMap<u64, Value>,
    /// Commit statuses in the order they were set: (sha, the status as posted).
    pub statuses: Vec<(String, Value)>,
    /// (lower-cased `owner/name`, lower-cased login) -> role; anyone else has `none`.
    pub permissions: BTreeMap<(String, String), String>,
    /// Lower-cased `owner/name` -> branch -> path -> text. A repository's `main` exists (empty)
    /// from its first sight.
    pub files: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Commits made through the contents API: (repository, branch, path, message).
    pub commits: Vec<(String, String, String, String)>,
    /// Pull requests opened through the API, by (lower-cased repository, number).
    pub opened: BTreeMap<(String, u64), Value>,
    /// Lower-cased repositories where the token may not merge pull requests (`pulls/merge`
    /// answers 403).
    pub merge_forbidden: BTreeSet<String>,
    /// Pull requests merged through the API: (lower-cased repository, number).
    pub merged_by_api: Vec<(String, u64)>,
    /// Lower-cased login -> account id; a login not listed has an id made from its name.
    pub accounts: BTreeMap<String, i64>,
    /// Commits pushed with no pull request: sha -> (author, committer) logins, as
    /// `repos/get-commit` names their GitHub accounts.
    pub direct_commits: BTreeMap<String, (String, String)>,
    /// Only repositories added with [`FakeGitHub::add_repo`] exist (the others answer 404);
    /// otherwise any repository not `missing` exists from its first sight.
    pub known_only: bool,
    /// Lower-cased `owner/name` of archived repositories.
    pub archived: BTreeSet<String>,
    /// Account id -> (login, role name: `read`, `triage`, `write`, `maintain`, `admin`): the
    /// collaborators of every repository, as `repos/list-collaborators` lists them.
    pub collaborators: BTreeMap<i64, (String, String)>,
    /// (run id, attempt) -> the run as `actions/get-workflow-run-attempt` answers it.
    pub runs: BTreeMap<(i64, i64), Value>,
    /// When set, every run attempt not in `runs` exists: a `push` run of the repository's
    /// `main` by this account (login, id).
    pub runs_by: Option<(String, i64)>,
    /// Run id -> when its first `actions/cancel-workflow-run` arrived.
    pub cancels: BTreeMap<i64, Instant>,
    /// Job id -> its `status` (`queued`, `in_progress`, `completed`, ...), as
    /// `actions/get-job-for-workflow-run` answers it. A job not listed answers 404.
    pub jobs: BTreeMap<i64, String>,
    /// Bodies of `checks/create`, in order.
    pub check_runs: Vec<Value>,
    /// Runs re-run through `actions/re-run-workflow-failed-jobs`: (`owner/name`, run id).
    pub reruns: Vec<(String, i64)>,
    /// Reactions left through `reactions/create-for-issue-comment`: (comment id, content).
    pub reactions: Vec<(u64, String)>,
    /// Team slug -> the `owner/name` of its repositories (`teams/list-repos-in-org`). A team
    /// not listed answers 404.
    pub team_repos: BTreeMap<String, Vec<String>>,
    /// The organisation webhook's deliveries, newest first, as `orgs/list-webhook-deliveries`
    /// lists them, each with what a redelivery sends.
    pub hook_deliveries: Vec<Delivery>,
    /// Where redeliveries go: the receiver's base URL (`{base}/webhook`) and the webhook's
    /// secret they are signed with.
    pub redeliver_to: Option<(String, String)>,
    /// When set: the status listing the hook's deliveries answers (403 without admin rights).
    pub hook_status: Option<u16>,
}

impl GitHubState {
    /// The account id of `login`: GitHub's numeric id, which stays when a login is renamed.
    pub fn id_of(&self, login: &str) -> i64 {
        let key = login.to_ascii_lowercase();
        self.accounts.get(&key).copied().unwrap_or_else(|| {
            let digest = hash(&key);
            1_000 + i64::from_str_radix(&digest[..6], 16).unwrap()
        })
    }

    /// `login`'s account, a `simple-user`.
    pub fn user(&self, login: &str) -> Value {
        shapes::account(login, self.id_of(login))
    }

    /// Repository `owner/name` as GitHub gives it in answers (`repository`): its id if the fake
    /// knows it (one made from its name if not), owned by the organisation `owner`.
    fn repository(&self, full: &str) -> Value {
        let key = full.to_ascii_lowercase();
        let (id, name) = match self.repos.get(&key) {
            Some((id, name)) => (*id, name.as_str()),
            None => (
                500_000 + u64::from_str_radix(&hash(&key)[..5], 16).unwrap(),
                full,
            ),
        };
        shapes::repository(id, name, self.owner(name), self.archived.contains(&key))
    }

    /// The organisation owning `owner/name`, a `simple-user` of type `Organization`.
    fn owner(&self, full: &str) -> Value {
        let org = full.split('/').next().unwrap_or(full);
        shapes::account_of_type(org, self.id_of(org), "Organization")
    }
}

/// A pull request as the fake serves it.
#[derive(Clone, Debug, Default)]
pub struct FakePull {
    pub author: String,
    pub head_sha: String,
    /// Changed paths.
    pub files: Vec<String>,
    /// Reviews, oldest first.
    pub reviews: Vec<Value>,
    /// The base commit (`base.sha`).
    pub base_sha: String,
    /// Merged (`merged_at` set), and the commits GitHub links to it
    /// (`repos/list-pull-requests-associated-with-commit`).
    pub merged: bool,
    pub merged_commits: Vec<String>,
    /// Its commits' (author, committer) logins; empty: one commit by the author.
    pub commits: Vec<(String, String)>,
    /// `changed_files` when it is more than `files` lists (GitHub lists at most 3,000).
    pub changed_files: Option<u64>,
    /// The `owner/name` its head branch lives in, when a fork; `None`: the repository itself.
    pub head_repo: Option<String>,
}

impl FakePull {
    pub fn new(author: &str, head_sha: &str, files: &[&str]) -> Self {
        FakePull {
            author: author.to_string(),
            head_sha: head_sha.to_string(),
            files: files.iter().map(|f| f.to_string()).collect(),
            ..FakePull::default()
        }
    }
}

pub struct FakeGitHub {
    pub gate: Gate,
    pub state: Mutex<GitHubState>,
    /// Listings answer at most this many items a page.
    pub page_size: Mutex<usize>,
}

impl Default for FakeGitHub {
    fn default() -> Self {
        FakeGitHub::new()
    }
}

impl FakeGitHub {
    /// A GitHub that accepts [`GITHUB_TOKEN`].
    pub fn new() -> Self {
        FakeGitHub::with_token(GITHUB_TOKEN)
    }

    /// A GitHub that accepts `token` (`Authorization: Bearer <token>`) and nothing else.
    pub fn with_token(token: &str) -> Self {
        let mut gate = Gate::new(token);
        gate.github_headers = true;
        FakeGitHub {
            gate,
            state: Mutex::new(GitHubState::default()),
            page_size: Mutex::new(100),
        }
    }

    /// Adds repository `owner/name` (archived or not); with `known_only`, the only ones that
    /// exist are those added.
    pub fn add_repo(&self, full: &str, archived: bool) {
        let mut s = self.state.lock().unwrap();
        let key = full.to_ascii_lowercase();
        let next = 1000 + s.repos.len() as u64;
        s.repos
            .entry(key.clone())
            .or_insert((next, full.to_string()));
        if archived {
            s.archived.insert(key);
        }
    }

    /// Sets the role of account `(login, id)` on every repository (seen at the next listing
    /// of collaborators).
    pub fn role(&self, (login, id): (&str, i64), role: &str) {
        self.state
            .lock()
            .unwrap()
            .collaborators
            .insert(id, (login.to_string(), role.to_string()));
    }

    /// Takes account `(login, id)` off every repository's collaborators.
    pub fn no_role(&self, (_, id): (&str, i64)) {
        self.state.lock().unwrap().collaborators.remove(&id);
    }

    /// `owner/name` of every repository the installation holds, sorted.
    pub fn installation(&self, id: u64) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let ids = s.installations.get(&id).cloned().unwrap_or_default();
        names(&s, &ids)
    }

    /// `owner/name` of every repository the runner group holds, sorted.
    pub fn runner_group(&self, name: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let ids = s
            .runner_groups
            .values()
            .find(|(n, _)| n == name)
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default();
        names(&s, &ids)
    }

    /// Adds `owner/name` to runner group `name` by hand, as an organisation owner could in
    /// GitHub's settings, bypassing gatehouse.
    pub fn add_to_runner_group(&self, name: &str, full: &str) {
        let mut s = self.state.lock().unwrap();
        let id = repo_id(&mut s, full).unwrap();
        let group = s
            .runner_groups
            .values_mut()
            .find(|(n, _)| n == name)
            .unwrap();
        group.1.insert(id);
    }

    /// Adds a GitHub-hosted larger runner named `name` to runner group `group` with
    /// `maximum_runners` `maximum`, as an organisation owner creates one in GitHub's settings;
    /// returns its id.
    pub fn add_hosted_runner(&self, name: &str, group: u64, maximum: u32) -> u64 {
        let mut s = self.state.lock().unwrap();
        let id = 1 + s.hosted_runners.keys().last().copied().unwrap_or(0);
        s.hosted_runners
            .insert(id, (name.to_string(), group, maximum));
        id
    }

    /// Sets the `maximum_runners` of larger runner `id`, as an owner does by hand in GitHub's
    /// settings.
    pub fn set_hosted_runner_maximum(&self, id: u64, maximum: u32) {
        let mut s = self.state.lock().unwrap();
        let runner = s
            .hosted_runners
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no larger runner {id}"));
        runner.2 = maximum;
    }

    /// The `maximum_runners` of the larger runner named `name`.
    pub fn hosted_runner_maximum(&self, name: &str) -> Option<u32> {
        let s = self.state.lock().unwrap();
        s.hosted_runners
            .values()
            .find(|(n, ..)| n == name)
            .map(|(_, _, maximum)| *maximum)
    }

    /// Adds a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`) of `commit`.
    pub fn review(&self, pull: u64, login: &str, state: &str, commit: &str) {
        let mut s = self.state.lock().unwrap();
        let p = s
            .pulls
            .get_mut(&pull)
            .expect("no such pull request in the fake");
        let id = p.reviews.len() as u64 + 1;
        let account = s.id_of(login);
        let p = s.pulls.get_mut(&pull).unwrap();
        p.reviews.push(json!({
            "id": id,
            "user": { "login": login, "id": account, "type": "User" },
            "state": state,
            "commit_id": commit,
            "submitted_at": format!("2026-11-27T10:{id:02}:00Z"),
        }));
    }

    /// The comments on issue or pull request `number`, oldest first.
    pub fn comments(&self, number: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .comments
            .values()
            .filter(|c| c["issue_number"] == number)
            .cloned()
            .collect()
    }

    /// The statuses set on `sha` with `context`, oldest first.
    pub fn statuses(&self, sha: &str, context: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .statuses
            .iter()
            .filter(|(s, v)| s == sha && v["context"] == context)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Sets `path` on the default branch of `repo` (`owner/name`).
    pub fn set_file(&self, repo: &str, path: &str, text: &str) {
        let mut s = self.state.lock().unwrap();
        branch_mut(&mut s, repo, "main").insert(path.to_string(), text.to_string());
    }

    /// `path` on `branch` of `repo`.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.files
            .get(&repo.to_ascii_lowercase())?
            .get(branch)?
            .get(path)
            .cloned()
    }

    /// The pull requests opened in `repo`, oldest first.
    pub fn pulls_in(&self, repo: &str) -> Vec<Value> {
        let key = repo.to_ascii_lowercase();
        self.state
            .lock()
            .unwrap()
            .opened
            .iter()
            .filter(|((r, _), _)| *r == key)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Merges pull request `number` of `repo`: its branch's files become the base's.
    pub fn merge(&self, repo: &str, number: u64) {
        let key = repo.to_ascii_lowercase();
        let mut s = self.state.lock().unwrap();
        let pull = s
            .opened
            .get_mut(&(key.clone(), number))
            .expect("no such pull request");
        assert_eq!(pull["state"], "open", "merging a closed pull request");
        pull["state"] = "closed".into();
        pull["merged"] = true.into();
        let head = pull["head"]["ref"].as_str().unwrap().to_string();
        let base = pull["base"]["ref"].as_str().unwrap().to_string();
        let files = s.files[&key][&head].clone();
        s.files.get_mut(&key).unwrap().insert(base, files);
    }

    /// The commits made through the contents API to `repo` (any branch): (branch, path,
    /// message), oldest first.
    pub fn commits_to(&self, repo: &str) -> Vec<(String, String, String)> {
        self.state
            .lock()
            .unwrap()
            .commits
            .iter()
            .filter(|(r, ..)| r.eq_ignore_ascii_case(repo))
            .map(|(_, b, p, m)| (b.clone(), p.clone(), m.clone()))
            .collect()
    }

    /// The comments on issue or pull request `number` of `repo`, oldest first.
    pub fn comments_on(&self, repo: &str, number: u64) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .comments
            .values()
            .filter(|c| {
                c["issue_number"] == number
                    && c["repo"]
                        .as_str()
                        .is_some_and(|r| r.eq_ignore_ascii_case(repo))
            })
            .cloned()
            .collect()
    }

    /// The issues of `repo`.
    pub fn issues_in(&self, repo: &str) -> Vec<Value> {
        self.issues()
            .into_iter()
            .filter(|i| {
                i["repo"]
                    .as_str()
                    .is_some_and(|r| r.eq_ignore_ascii_case(repo))
            })
            .collect()
    }

    pub fn issues(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .issues
            .values()
            .cloned()
            .collect()
    }
}

fn names(s: &GitHubState, ids: &BTreeSet<u64>) -> Vec<String> {
    let mut out: Vec<String> = s
        .repos
        .values()
        .filter(|(id, _)| ids.contains(id))
        .map(|(_, name)| name.clone())
        .collect();
    out.sort();
    out
}

fn branch_mut<'a>(
    s: &'a mut GitHubState,
    repo: &str,
    branch: &str,
) -> &'a mut BTreeMap<String, String> {
    s.files
        .entry(repo.to_ascii_lowercase())
        .or_default()
        .entry(branch.to_string())
        .or_default()
}

fn hash(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// A branch's head: a digest of everything on it.
fn head_sha(files: &BTreeMap<String, String>) -> String {
    hash(&format!("{files:?}"))
}

fn repo_id(s: &mut GitHubState, full: &str) -> Option<u64> {
    let key = full.to_ascii_lowercase();
    if s.missing.contains(&key) {
        return None;
    }
    if s.known_only {
        return s.repos.get(&key).map(|(id, _)| *id);
    }
    let next = 1000 + s.repos.len() as u64;
    Some(s.repos.entry(key).or_insert((next, full.to_string())).0)
}

type Gh = State<Arc<FakeGitHub>>;
type Q = Query<HashMap<String, String>>;

/// One page of `items`, with a `Link` header to the next when there is one.
fn page(
    fake: &FakeGitHub,
    uri: &Uri,
    headers: &HeaderMap,
    q: &Q,
    field: Option<&str>,
    items: Vec<Value>,
) -> Response {
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let per_page = per_page.min(*fake.page_size.lock().unwrap()).max(1);
    let n: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let total = items.len();
    let chunk: Vec<Value> = items
        .into_iter()
        .skip((n - 1) * per_page)
        .take(per_page)
        .collect();
    let mut resp = match field {
        Some(field) => axum::Json(json!({ "total_count": total, field: chunk })).into_response(),
        None => axum::Json(chunk).into_response(),
    };
    if n * per_page < total {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let link = format!(
            "<http://{host}{}?per_page={per_page}&page={}>; rel=\"next\"",
            uri.path(),
            n + 1
        );
        resp.headers_mut().insert("link", link.parse().unwrap());
    }
    resp
}

/// `repos/get` (GET /repos/{owner}/{repo}): a `full-repository`.
async fn gh_repo(State(f): Gh, Path((o, r)): Path<(String, String)>) -> Response {
    let full = format!("{o}/{r}");
    let mut s = f.state.lock().unwrap();
    match repo_id(&mut s, &full) {
        Some(id) => {
            let archived = s.archived.contains(&full.to_ascii_lowercase());
            axum::Json(shapes::full_repository(id, &full, s.owner(&full), archived)).into_response()
        }
        None => error(404, "Not Found"),
    }
}

/// `users/get-by-username` (GET /users/{username}): a `public-user` (login, id, type) for the
/// logins in `accounts`; 404 for any other (a deleted or renamed account).
async fn gh_user(State(f): Gh, Path(login): Path<String>) -> Response {
    match f
        .state
        .lock()
        .unwrap()
        .accounts
        .get(&login.to_ascii_lowercase())
    {
        Some(id) => axum::Json(json!({ "login": login, "id": id, "type": "User" })).into_response(),
        None => error(404, "Not Found"),
    }
}

/// `apps/list-installation-repos-for-authenticated-user` (GET
/// /user/installations/{installation_id}/repositories): `{total_count, repositories}` of
/// `repository`, paged.
async fn gh_installation_repos(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path(id): Path<u64>,
) -> Response {
    let items: Vec<Value> = {
        let s = f.state.lock().unwrap();
        let Some(ids) = s.installations.get(&id) else {
            return error(404, "Not Found");
        };
        listed(&s, ids, true)
    };
    page(&f, &uri, &h, &q, Some("repositories"), items)
}

/// The repositories `ids`, by id: each a `repository` when `whole`, a `minimal-repository` if
/// not.
fn listed(s: &GitHubState, ids: &BTreeSet<u64>, whole: bool) -> Vec<Value> {
    let mut items: Vec<(u64, String)> = s
        .repos
        .values()
        .filter(|(id, _)| ids.contains(id))
        .cloned()
        .collect();
    items.sort();
    items
        .into_iter()
        .map(|(id, full_name)| {
            let archived = s.archived.contains(&full_name.to_ascii_lowercase());
            let owner = s.owner(&full_name);
            if whole {
                shapes::repository(id, &full_name, owner, archived)
            } else {
                shapes::minimal_repository(id, &full_name, owner)
            }
        })
        .collect()
}

/// `apps/add-repo-to-installation-for-authenticated-user` (PUT) and
/// `apps/remove-repo-from-installation-for-authenticated-user` (DELETE)
/// /user/installations/{installation_id}/repositories/{repository_id}: 204.
async fn gh_installation_repo(
    State(f): Gh,
    m: Method,
    Path((id, repo)): Path<(u64, u64)>,
) -> Response {
    let mut s = f.state.lock().unwrap();
    if !s.repos.values().any(|(r, _)| *r == repo) {
        return error(404, "Not Found");
    }
    let Some(set) = s.installations.get_mut(&id) else {
        return error(404, "Not Found");
    };
    if m == Method::PUT {
        set.insert(repo);
    } else {
        set.remove(&repo);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `actions/list-self-hosted-runner-groups-for-org` (GET /orgs/{org}/actions/runner-groups):
/// `{total_count, runner_groups}` of `runner-groups-org`.
async fn gh_runner_groups(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path(org): Path<String>,
) -> Response {
    let s = f.state.lock().unwrap();
    let items: Vec<Value> = s
        .runner_groups
        .iter()
        .map(|(id, (name, _))| shapes::runner_group(&org, *id, name, s.public_groups.contains(id)))
        .collect();
    drop(s);
    page(&f, &uri, &h, &q, Some("runner_groups"), items)
}

/// `actions/list-repo-access-to-self-hosted-runner-group-in-org` (GET) and
/// `actions/set-repo-access-to-self-hosted-runner-group-in-org` (PUT, `selected_repository_ids`,
/// 204) /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories: the GET lists
/// `minimal-repository` items.
async fn gh_group_repos(
    State(f): Gh,
    m: Method,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((_org, id)): Path<(String, u64)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if m == Method::PUT {
        let Some(ids) = body.and_then(|b| {
            b.0["selected_repository_ids"].as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .collect::<BTreeSet<u64>>()
            })
        }) else {
            return error(422, "selected_repository_ids is required");
        };
        let mut s = f.state.lock().unwrap();
        if ids.iter().any(|i| !s.repos.values().any(|(r, _)| r == i)) {
            return error(422, "unknown repository id");
        }
        return match s.runner_groups.get_mut(&id) {
            Some((_, set)) => {
                *set = ids;
                StatusCode::NO_CONTENT.into_response()
            }
            None => error(404, "Not Found"),
        };
    }
    let items = {
        let s = f.state.lock().unwrap();
        let Some((_, ids)) = s.runner_groups.get(&id) else {
            return error(404, "Not Found");
        };
        listed(&s, ids, false)
    };
    page(&f, &uri, &h, &q, Some("repositories"), items)
}

/// `actions/list-hosted-runners-for-org` (GET /orgs/{org}/actions/hosted-runners):
/// `{total_count, runners}` of `actions-hosted-runner`, paged.
async fn gh_hosted_runners(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path(_org): Path<String>,
) -> Response {
    let items: Vec<Value> = f
        .state
        .lock()
        .unwrap()
        .hosted_runners
        .iter()
        .map(|(id, (name, group, maximum))| shapes::hosted_runner(*id, name, *group, *maximum))
        .collect();
    page(&f, &uri, &h, &q, Some("runners"), items)
}

/// `actions/update-hosted-runner-for-org` (PATCH
/// /orgs/{org}/actions/hosted-runners/{hosted_runner_id}): 200 with the `actions-hosted-runner`
/// as changed; 404 for a runner that does not exist. The body's fields are all optional; of
/// them the fake keeps `name`, `runner_group_id` and `maximum_runners` ("the maximum amount of
/// runners to scale up to", an integer: anything else is 422, as GitHub validates a body
/// against its schema).
async fn gh_update_hosted_runner(
    State(f): Gh,
    Path((_org, id)): Path<(String, u64)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let body = body.map(|b| b.0).unwrap_or_default();
    let Some(fields) = body.as_object() else {
        return error(422, "the body must be an object");
    };
    let integer = |field: &'static str| fields.get(field).map(|v| v.as_u64().ok_or(field));
    let (maximum_runners, runner_group_id) = match (
        integer("maximum_runners").transpose(),
        integer("runner_group_id").transpose(),
    ) {
        (Ok(m), Ok(g)) => (m, g),
        (Err(field), _) | (_, Err(field)) => {
            return error(422, &format!("{field} must be an integer"));
        }
    };
    let new_name = match fields.get("name").map(Value::as_str) {
        Some(None) => return error(422, "name must be a string"),
        other => other.flatten(),
    };
    let mut s = f.state.lock().unwrap();
    let Some((name, group, maximum)) = s.hosted_runners.get_mut(&id) else {
        return error(404, "Not Found");
    };
    if let Some(m) = maximum_runners {
        *maximum = u32::try_from(m).unwrap_or(u32::MAX);
    }
    if let Some(g) = runner_group_id {
        *group = g;
    }
    if let Some(n) = new_name {
        *name = n.to_string();
    }
    axum::Json(shapes::hosted_runner(id, name, *group, *maximum)).into_response()
}

/// `rate-limit/get` (GET /rate_limit): `rate-limit-overview`, the budget reset in an hour.
async fn gh_rate_limit() -> Response {
    axum::Json(shapes::rate_limit_overview(5000, 4999, now_secs() + 3600)).into_response()
}

/// `issues/list-for-repo` (GET /repos/{owner}/{repo}/issues): the open issues, paged.
async fn gh_list_issues(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r)): Path<(String, String)>,
) -> Response {
    let repo = format!("{o}/{r}");
    let items: Vec<Value> = f
        .issues_in(&repo)
        .into_iter()
        .filter(|i| i["state"] == "open")
        .collect();
    page(&f, &uri, &h, &q, None, items)
}

/// `issues/create` (POST /repos/{owner}/{repo}/issues): 201 with the `issue`.
async fn gh_create_issue(
    State(f): Gh,
    Path((o, r)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = f.state.lock().unwrap();
    let number = s.issues.len() as u64 + 1;
    let full_name = format!("{o}/{r}");
    let mut issue = shapes::issue(&full_name, number, &body["title"], &body["body"], "open");
    // Not GitHub's: which repository it is in, for `issues_in`.
    issue["repo"] = json!(full_name);
    s.issues.insert(number, issue.clone());
    (StatusCode::CREATED, axum::Json(issue)).into_response()
}

/// `issues/update` (PATCH /repos/{owner}/{repo}/issues/{issue_number}): `body`, `state`,
/// `title`.
async fn gh_edit_issue(
    State(f): Gh,
    Path((_o, _r, n)): Path<(String, String, u64)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = f.state.lock().unwrap();
    let Some(issue) = s.issues.get_mut(&n) else {
        return error(404, "Not Found");
    };
    for field in ["body", "state", "title"] {
        if let Some(v) = body.get(field) {
            issue[field] = v.clone();
        }
    }
    axum::Json(issue.clone()).into_response()
}

/// `repos/list-pull-requests-associated-with-commit` (GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls):
/// `pull-request-simple` items, the merged pull requests that GitHub links to the commit.
async fn gh_commit_pulls(
    State(f): Gh,
    Path((o, r, _sha)): Path<(String, String, String)>,
) -> Response {
    {
        let s = f.state.lock().unwrap();
        let linked: Vec<Value> = s
            .pulls
            .iter()
            .filter(|(_, p)| p.merged_commits.contains(&_sha))
            .map(|(n, p)| pull_json(&s, &o, &r, *n, p))
            .collect();
        if !linked.is_empty() || s.merged_pull.is_none() {
            return axum::Json(linked).into_response();
        }
    }
    let s = f.state.lock().unwrap();
    let pulls: Vec<Value> = s
        .merged_pull
        .iter()
        .map(|(n, _)| merged_pull_json(&s, &o, &r, *n))
        .collect();
    axum::Json(pulls).into_response()
}

/// `pulls/list-reviews`: `pull-request-review` items, oldest first: the reviews set (each laid
/// over GitHub's whole shape, its reviewer's account completed), or the approvals of
/// `merged_pull`, each of the pull request's first commit.
async fn gh_reviews(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r, n)): Path<(String, String, u64)>,
) -> Response {
    let full = format!("{o}/{r}");
    let s = f.state.lock().unwrap();
    if let Some(pull) = s.pulls.get(&n) {
        let reviews = pull
            .reviews
            .iter()
            .enumerate()
            .map(|(i, given)| {
                let login = given["user"]["login"].as_str().unwrap_or("ghost");
                let mut review = shapes::pull_request_review(
                    &full,
                    n,
                    given["id"].as_u64().unwrap_or(i as u64 + 1),
                    s.user(login),
                    given["state"].as_str().unwrap_or("COMMENTED"),
                    // A review without its commit: one of an older commit.
                    given["commit_id"].as_str().unwrap_or(&pull.base_sha),
                );
                shapes::overlay(&mut review, given);
                review
            })
            .collect();
        drop(s);
        return page(&f, &uri, &h, &q, None, reviews);
    }
    let first_commit = hash(&format!("{n}/0"));
    let reviews: Vec<Value> = s
        .merged_pull
        .iter()
        .flat_map(|(_, logins)| logins.iter())
        .enumerate()
        .map(|(i, login)| {
            let user = s.user(login);
            shapes::pull_request_review(&full, n, i as u64 + 1, user, "APPROVED", &first_commit)
        })
        .collect();
    axum::Json(reviews).into_response()
}

/// `pulls/get`: a `pull-request`.
async fn gh_pull(State(f): Gh, Path((o, r, n)): Path<(String, String, u64)>) -> Response {
    let s = f.state.lock().unwrap();
    match s.pulls.get(&n) {
        Some(p) => {
            let commits = p.commits.len().max(1) as u64;
            let changed = p.changed_files.unwrap_or(p.files.len() as u64);
            axum::Json(shapes::pull_request(
                pull_json(&s, &o, &r, n, p),
                changed,
                commits,
            ))
            .into_response()
        }
        None => error(404, "Not Found"),
    }
}

/// A pull request set up by a test as listings give it (`pull-request-simple`: `pulls/list`,
/// `repos/list-pull-requests-associated-with-commit`); `pulls/get` adds the counts
/// ([`shapes::pull_request`]).
fn pull_json(s: &GitHubState, o: &str, r: &str, n: u64, p: &FakePull) -> Value {
    let repo = s.repository(&format!("{o}/{r}"));
    let head = match &p.head_repo {
        Some(fork) => shapes::pull_side(&s.repository(fork), "request", &p.head_sha),
        None => shapes::pull_side(&repo, "request", &p.head_sha),
    };
    let base = shapes::pull_side(&repo, "main", &p.base_sha);
    let mut pull = shapes::pull_request_simple(&repo, n, s.user(&p.author), head, base);
    if p.merged {
        shapes::overlay(
            &mut pull,
            &json!({
                "state": "closed", "merged_at": "2026-11-27T10:00:00Z",
                "closed_at": "2026-11-27T10:00:00Z",
            }),
        );
    }
    pull
}

/// `merged_pull`'s pull request (`pull-request-simple`): merged, its author unknown (GitHub's
/// `ghost`, the placeholder of a deleted account).
fn merged_pull_json(s: &GitHubState, o: &str, r: &str, n: u64) -> Value {
    let fake = FakePull {
        merged: true,
        ..FakePull::new("ghost", &hash(&format!("{n}/0")), &[])
    };
    pull_json(s, o, r, n, &fake)
}

/// `pulls/list-commits`: `commit` items, each with the GitHub accounts of its author and
/// committer.
async fn gh_pull_commits(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r, n)): Path<(String, String, u64)>,
) -> Response {
    let full = format!("{o}/{r}");
    let items: Vec<Value> = {
        let s = f.state.lock().unwrap();
        let Some(pull) = s.pulls.get(&n) else {
            return error(404, "Not Found");
        };
        let commits = if pull.commits.is_empty() {
            vec![(pull.author.clone(), pull.author.clone())]
        } else {
            pull.commits.clone()
        };
        commits
            .iter()
            .enumerate()
            .map(|(i, (author, committer))| {
                let sha = hash(&format!("{n}/{i}"));
                shapes::commit(&full, &sha, s.user(author), s.user(committer))
            })
            .collect()
    };
    page(&f, &uri, &h, &q, None, items)
}

/// `repos/get-commit`: a commit pushed with no pull request, with its author's and
/// committer's GitHub accounts.
async fn gh_get_commit(
    State(f): Gh,
    Path((_o, _r, sha)): Path<(String, String, String)>,
) -> Response {
    let s = f.state.lock().unwrap();
    match s.direct_commits.get(&sha) {
        Some((author, committer)) => axum::Json(json!({
            "sha": sha,
            "author": s.user(author),
            "committer": s.user(committer),
        }))
        .into_response(),
        None => error(404, "Not Found"),
    }
}

/// `issues/get`.
async fn gh_get_issue(State(f): Gh, Path((_o, _r, n)): Path<(String, String, u64)>) -> Response {
    match f.state.lock().unwrap().issues.get(&n) {
        Some(issue) => axum::Json(issue.clone()).into_response(),
        None => error(404, "Not Found"),
    }
}

/// `pulls/list-files`: `diff-entry` items, each `modified`; GitHub lists at most 3,000.
async fn gh_pull_files(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r, n)): Path<(String, String, u64)>,
) -> Response {
    // A pull request opened through the API: the paths its branch changes against its base.
    let full = format!("{o}/{r}");
    let key = (full.to_ascii_lowercase(), n);
    if let Some(changed) = {
        let s = f.state.lock().unwrap();
        s.opened.get(&key).map(|p| {
            let branches = &s.files[&key.0];
            let empty = BTreeMap::new();
            let head = branches
                .get(p["head"]["ref"].as_str().unwrap())
                .unwrap_or(&empty);
            let base = branches
                .get(p["base"]["ref"].as_str().unwrap())
                .unwrap_or(&empty);
            let paths: BTreeSet<&String> = head.keys().chain(base.keys()).collect();
            let head_commit = head_sha(head);
            paths
                .into_iter()
                .filter(|path| head.get(*path) != base.get(*path))
                .map(|path| {
                    let blob = hash(head.get(path).map_or("", String::as_str));
                    shapes::diff_entry(&full, &head_commit, path, &blob)
                })
                .collect::<Vec<Value>>()
        })
    } {
        return page(&f, &uri, &h, &q, None, changed);
    }
    let Some(pull) = f.state.lock().unwrap().pulls.get(&n).cloned() else {
        return error(404, "Not Found");
    };
    let items = pull
        .files
        .iter()
        .map(|name| {
            let blob = hash(&format!("{}/{name}", pull.head_sha));
            shapes::diff_entry(&full, &pull.head_sha, name, &blob)
        })
        .collect();
    page(&f, &uri, &h, &q, None, items)
}

/// `teams/list-members-in-org`: `team-member` items (`simple-user`s).
async fn gh_team_members(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((_org, team)): Path<(String, String)>,
) -> Response {
    let s = f.state.lock().unwrap();
    let Some(members) = s.teams.get(&team).cloned() else {
        return error(404, "Not Found");
    };
    let items = members.iter().map(|login| s.user(login)).collect();
    drop(s);
    page(&f, &uri, &h, &q, None, items)
}

/// `repos/create-commit-status`: state one of error/failure/pending/success; a description
/// longer than 140 characters is refused (422).
async fn gh_create_status(
    State(f): Gh,
    Path((_o, _r, sha)): Path<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let valid_state = matches!(
        body["state"].as_str(),
        Some("error" | "failure" | "pending" | "success")
    );
    let description = body["description"].as_str().unwrap_or("");
    if !valid_state || description.chars().count() > 140 {
        return error(422, "Validation Failed");
    }
    f.state.lock().unwrap().statuses.push((sha, body.clone()));
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `issues/list-comments` and `issues/create-comment`: `issue-comment` items, each with the
/// `simple-user` who wrote it.
async fn gh_issue_comments(
    State(f): Gh,
    m: Method,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r, n)): Path<(String, String, u64)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    if m == Method::POST {
        let Some(text) = body.and_then(|b| b.0["body"].as_str().map(str::to_string)) else {
            return error(422, "body is required");
        };
        let mut s = f.state.lock().unwrap();
        let id = 9000 + s.comments.len() as u64;
        // An `issue-comment`, plus the fake's own `issue_number` and `repo`.
        let comment = json!({
            "id": id,
            "node_id": format!("IC_{id}"),
            "url": format!("https://api.github.com/repos/{o}/{r}/issues/comments/{id}"),
            "issue_url": format!("https://api.github.com/repos/{o}/{r}/issues/{n}"),
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "author_association": "NONE",
            "issue_number": n,
            "repo": format!("{o}/{r}"),
            "body": text,
            // github-actions[bot], the account the workflow's token writes as.
            "user": shapes::account_of_type("github-actions[bot]", 41898282, "Bot"),
            "html_url": format!("https://github.com/{o}/{r}/pull/{n}#issuecomment-{id}"),
        });
        s.comments.insert(id, comment.clone());
        return (StatusCode::CREATED, axum::Json(comment)).into_response();
    }
    let items = f.comments_on(&format!("{o}/{r}"), n);
    page(&f, &uri, &h, &q, None, items)
}

/// `issues/update-comment`.
async fn gh_edit_comment(
    State(f): Gh,
    Path((_o, _r, id)): Path<(String, String, u64)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut s = f.state.lock().unwrap();
    let Some(comment) = s.comments.get_mut(&id) else {
        return error(404, "Not Found");
    };
    if let Some(text) = body.get("body") {
        comment["body"] = text.clone();
    }
    axum::Json(comment.clone()).into_response()
}

/// `repos/get-collaborator-permission-level` (GET
/// /repos/{owner}/{repo}/collaborators/{username}/permission): `repository-collaborator-permission`.
async fn gh_permission(
    State(f): Gh,
    Path((o, r, login)): Path<(String, String, String)>,
) -> Response {
    let key = (
        format!("{o}/{r}").to_ascii_lowercase(),
        login.to_ascii_lowercase(),
    );
    let permission = f
        .state
        .lock()
        .unwrap()
        .permissions
        .get(&key)
        .cloned()
        .unwrap_or_else(|| "none".to_string());
    axum::Json(json!({ "permission": permission, "user": { "login": login } })).into_response()
}

/// `repos/get-content` (GET) and `repos/create-or-update-file-contents` (PUT)
/// /repos/{owner}/{repo}/contents/{path}: a `content-file` (base64, wrapped as GitHub wraps
/// it), and a `file-commit` for a write (the commit's sha the branch's new head); a write
/// needs the current blob's `sha` (409 when it is not, 422 when missing).
async fn gh_contents(
    State(f): Gh,
    m: Method,
    q: Q,
    Path((o, r, path)): Path<(String, String, String)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    use base64::Engine;
    let repo = format!("{o}/{r}");
    let mut s = f.state.lock().unwrap();
    if repo_id(&mut s, &repo).is_none() {
        return error(404, "Not Found");
    }
    branch_mut(&mut s, &repo, "main");
    let b64 = base64::engine::general_purpose::STANDARD;
    if m == Method::PUT {
        let Some(axum::Json(body)) = body else {
            return error(422, "a body is required");
        };
        let branch = body["branch"].as_str().unwrap_or("main").to_string();
        let Some(files) = s
            .files
            .get_mut(&repo.to_ascii_lowercase())
            .and_then(|b| b.get_mut(&branch))
        else {
            return error(404, "Branch not found");
        };
        let Some(text) = body["content"]
            .as_str()
            .and_then(|c| b64.decode(c).ok())
            .and_then(|c| String::from_utf8(c).ok())
        else {
            return error(422, "content is not base64");
        };
        match (files.get(&path), body["sha"].as_str()) {
            (Some(old), Some(sha)) if hash(old) == sha => {}
            (Some(_), None) => return error(422, "\"sha\" wasn't supplied."),
            (Some(_), Some(_)) => return error(409, "does not match"),
            (None, Some(_)) => return error(409, "does not match"),
            (None, None) => {}
        }
        let (sha, size) = (hash(&text), text.len());
        files.insert(path.clone(), text);
        let commit = head_sha(files);
        let message = body["message"].as_str().unwrap_or("").to_string();
        let answer = shapes::file_commit(&repo, &branch, &path, (&sha, size), &commit, &message);
        s.commits.push((repo, branch, path.clone(), message));
        return (StatusCode::OK, axum::Json(answer)).into_response();
    }
    // `ref` names a branch or a commit (a branch's head, here).
    let git_ref = q.get("ref").cloned().unwrap_or_else(|| "main".to_string());
    let branches = s.files.get(&repo.to_ascii_lowercase());
    let Some(text) = branches
        .and_then(|b| {
            b.get(&git_ref)
                .or_else(|| b.values().find(|files| head_sha(files) == git_ref))
        })
        .and_then(|files| files.get(&path))
    else {
        return error(404, "Not Found");
    };
    // GitHub wraps its base64 at 60 characters.
    let encoded = b64.encode(text);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    axum::Json(shapes::content_file(
        &repo,
        &git_ref,
        &path,
        &hash(text),
        text.len(),
        wrapped.join("\n") + "\n",
    ))
    .into_response()
}

/// `git/get-ref` (GET /repos/{owner}/{repo}/git/ref/{ref}): a `git-ref`.
async fn gh_get_ref(
    State(f): Gh,
    Path((o, r, branch)): Path<(String, String, String)>,
) -> Response {
    let repo = format!("{o}/{r}");
    let mut s = f.state.lock().unwrap();
    if repo_id(&mut s, &repo).is_none() {
        return error(404, "Not Found");
    }
    branch_mut(&mut s, &repo, "main");
    match s.files[&repo.to_ascii_lowercase()].get(&branch) {
        Some(files) => axum::Json(json!({
            "ref": format!("refs/heads/{branch}"),
            "object": { "sha": head_sha(files), "type": "commit" },
        }))
        .into_response(),
        None => error(404, "Not Found"),
    }
}

/// `git/create-ref` (POST /repos/{owner}/{repo}/git/refs, 201) creates a branch; `git/update-ref`
/// (PATCH /repos/{owner}/{repo}/git/refs/{ref}) moves one.
async fn gh_refs(
    State(f): Gh,
    m: Method,
    Path(params): Path<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let repo = format!("{}/{}", params["o"], params["r"]);
    let key = repo.to_ascii_lowercase();
    let mut s = f.state.lock().unwrap();
    let branch = match params.get("branch") {
        Some(b) => b.clone(),
        None => match body["ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("refs/heads/"))
        {
            Some(b) => b.to_string(),
            None => return error(422, "ref must start with refs/heads/"),
        },
    };
    let Some(branches) = s.files.get_mut(&key) else {
        return error(404, "Not Found");
    };
    let sha = body["sha"].as_str().unwrap_or("");
    let Some(source) = branches.values().find(|f| head_sha(f) == sha).cloned() else {
        return error(422, "Object does not exist");
    };
    if m == Method::POST && branches.contains_key(&branch) {
        return error(422, "Reference already exists");
    }
    if m == Method::PATCH && !branches.contains_key(&branch) {
        return error(422, "Reference does not exist");
    }
    branches.insert(branch.clone(), source);
    let status = if m == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(json!({ "ref": format!("refs/heads/{branch}"), "object": { "sha": sha } })),
    )
        .into_response()
}

/// `pulls/list` (GET, `head` and `state` filters, paged) and `pulls/create` (POST, 201)
/// /repos/{owner}/{repo}/pulls.
async fn gh_pulls(
    State(f): Gh,
    m: Method,
    uri: Uri,
    h: HeaderMap,
    q: Q,
    Path((o, r)): Path<(String, String)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let repo = format!("{o}/{r}");
    let key = repo.to_ascii_lowercase();
    if m == Method::POST {
        let Some(axum::Json(body)) = body else {
            return error(422, "a body is required");
        };
        let head = body["head"].as_str().unwrap_or("").to_string();
        let base = body["base"].as_str().unwrap_or("").to_string();
        let mut s = f.state.lock().unwrap();
        let branches = s.files.get(&key);
        if !branches.is_some_and(|b| b.contains_key(&head) && b.contains_key(&base)) {
            return error(422, "Validation Failed: head or base does not exist");
        }
        if s.opened
            .iter()
            .any(|((r, _), p)| *r == key && p["head"]["ref"] == head && p["state"] == "open")
        {
            return error(422, "A pull request already exists");
        }
        let number = 100 + s.opened.len() as u64;
        let pull = json!({
            "number": number,
            "html_url": format!("https://github.com/{repo}/pull/{number}"),
            "title": body["title"],
            "body": body["body"],
            "state": "open",
            "merged": false,
            "head": { "ref": head, "label": format!("{o}:{head}") },
            "base": { "ref": base },
        });
        s.opened.insert((key, number), pull.clone());
        return (StatusCode::CREATED, axum::Json(pull)).into_response();
    }
    let head = q.get("head").cloned();
    let state = q.get("state").cloned().unwrap_or_else(|| "open".into());
    // `pulls/list`: the ones opened through the API, and the request pull requests set up by
    // a test (`pulls`).
    let mut listed = f.pulls_in(&repo);
    {
        let s = f.state.lock().unwrap();
        // Opened through the API: what was stored, laid over GitHub's whole shape, by the
        // account the workflow's token writes as (as comments are).
        let shape = s.repository(&repo);
        let bot = shapes::account_of_type("github-actions[bot]", 41898282, "Bot");
        for p in &mut listed {
            let side = |end: &str| {
                let branch = p[end]["ref"].as_str().unwrap_or("");
                let sha = s.files.get(&key).and_then(|b| b.get(branch)).map(head_sha);
                shapes::pull_side(&shape, branch, &sha.unwrap_or_default())
            };
            let (head, base) = (side("head"), side("base"));
            let number = p["number"].as_u64().unwrap_or(0);
            let mut whole = shapes::pull_request_simple(&shape, number, bot.clone(), head, base);
            shapes::overlay(&mut whole, p);
            *p = whole;
        }
        listed.extend(s.pulls.iter().map(|(n, p)| pull_json(&s, &o, &r, *n, p)));
    }
    let mut items: Vec<Value> = listed
        .into_iter()
        .filter(|p| head.as_ref().is_none_or(|h| p["head"]["label"] == *h))
        .filter(|p| state == "all" || p["state"] == state)
        .collect();
    // `head.sha`: the branch's head now.
    {
        let s = f.state.lock().unwrap();
        for p in &mut items {
            let branch = p["head"]["ref"].as_str().unwrap_or("").to_string();
            if let Some(files) = s.files.get(&key).and_then(|b| b.get(&branch)) {
                p["head"]["sha"] = head_sha(files).into();
            }
        }
    }
    page(&f, &uri, &h, &q, None, items)
}

/// `pulls/update` (PATCH /repos/{owner}/{repo}/pulls/{pull_number}): `state`.
async fn gh_edit_pull(
    State(f): Gh,
    Path((o, r, n)): Path<(String, String, u64)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let key = format!("{o}/{r}").to_ascii_lowercase();
    let mut s = f.state.lock().unwrap();
    let Some(pull) = s.opened.get_mut(&(key, n)) else {
        return error(404, "Not Found");
    };
    if let Some(state) = body.get("state") {
        pull["state"] = state.clone();
    }
    axum::Json(pull.clone()).into_response()
}

/// `PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge` (operation `pulls/merge`): 200
/// `{sha, merged, message}`; 403 when the token may not; 405 when the pull request is not
/// open (not mergeable); 409 when `sha` is given and is not the head; the head branch's files
/// become the base's.
async fn gh_merge_pull(
    State(f): Gh,
    Path((o, r, n)): Path<(String, String, u64)>,
    body: Option<axum::Json<Value>>,
) -> Response {
    let repo = format!("{o}/{r}");
    let key = repo.to_ascii_lowercase();
    let body = body.map(|b| b.0).unwrap_or(Value::Null);
    {
        let s = f.state.lock().unwrap();
        if s.merge_forbidden.contains(&key) {
            return error(403, "Resource not accessible by integration");
        }
        let Some(pull) = s.opened.get(&(key.clone(), n)) else {
            return error(404, "Not Found");
        };
        if pull["state"] != "open" {
            return error(405, "Pull Request is not mergeable");
        }
        let head = pull["head"]["ref"].as_str().unwrap();
        let sha = head_sha(&s.files[&key][head]);
        if let Some(want) = body["sha"].as_str()
            && want != sha
        {
            return error(
                409,
                "Head branch was modified. Review and try the merge again.",
            );
        }
    }
    f.merge(&repo, n);
    let mut s = f.state.lock().unwrap();
    s.merged_by_api.push((key.clone(), n));
    let sha = head_sha(&s.files[&key]["main"]);
    axum::Json(json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }))
        .into_response()
}

/// Anything else GitHub might be asked: logged (by the layer), and not found.
async fn gh_unknown() -> Response {
    error(404, "Not Found")
}

/// Starts a fake GitHub; returns its base URL.
pub fn serve_github(fake: FakeGitHub) -> (String, Arc<FakeGitHub>) {
    serve_github_held(fake, Hold::new())
}

/// Starts a fake GitHub whose calls `hold` can stop.
pub fn serve_github_held(fake: FakeGitHub, hold: Arc<Hold>) -> (String, Arc<FakeGitHub>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/repos/{o}/{r}", get(gh_repo))
        .route(
            "/repos/{o}/{r}/issues",
            get(gh_list_issues).post(gh_create_issue),
        )
        .route(
            "/repos/{o}/{r}/contents/{*path}",
            get(gh_contents).put(gh_contents),
        )
        .route("/repos/{o}/{r}/git/ref/heads/{*branch}", get(gh_get_ref))
        .route("/repos/{o}/{r}/git/refs", post(gh_refs))
        .route("/repos/{o}/{r}/git/refs/heads/{*branch}", patch(gh_refs))
        .route("/repos/{o}/{r}/pulls", get(gh_pulls).post(gh_pulls))
        .route(
            "/repos/{o}/{r}/issues/{n}",
            get(gh_get_issue).patch(gh_edit_issue),
        )
        .route("/repos/{o}/{r}/commits/{sha}/pulls", get(gh_commit_pulls))
        .route("/repos/{o}/{r}/commits/{sha}", get(gh_get_commit))
        .route("/repos/{o}/{r}/pulls/{n}/commits", get(gh_pull_commits))
        .route("/repos/{o}/{r}/pulls/{n}/reviews", get(gh_reviews))
        .route("/repos/{o}/{r}/pulls/{n}", get(gh_pull).patch(gh_edit_pull))
        .route("/repos/{o}/{r}/pulls/{n}/files", get(gh_pull_files))
        .route("/repos/{o}/{r}/pulls/{n}/merge", put(gh_merge_pull))
        .route("/repos/{o}/{r}/statuses/{sha}", post(gh_create_status))
        .route(
            "/repos/{o}/{r}/issues/{n}/comments",
            get(gh_issue_comments).post(gh_issue_comments),
        )
        .route(
            "/repos/{o}/{r}/issues/comments/{id}",
            patch(gh_edit_comment),
        )
        .route(
            "/repos/{o}/{r}/collaborators/{u}/permission",
            get(gh_permission),
        )
        .route("/orgs/{org}/teams/{team}/members", get(gh_team_members))
        .route(
            "/user/installations/{id}/repositories",
            get(gh_installation_repos),
        )
        .route(
            "/user/installations/{id}/repositories/{repo}",
            put(gh_installation_repo).delete(gh_installation_repo),
        )
        .route("/orgs/{org}/actions/runner-groups", get(gh_runner_groups))
        .route(
            "/orgs/{org}/actions/runner-groups/{id}/repositories",
            get(gh_group_repos).put(gh_group_repos),
        )
        .route("/orgs/{org}/actions/hosted-runners", get(gh_hosted_runners))
        .route(
            "/orgs/{org}/actions/hosted-runners/{id}",
            patch(gh_update_hosted_runner),
        )
        .route("/rate_limit", get(gh_rate_limit))
        .route("/users/{login}", get(gh_user))
        .merge(guard_api::routes())
        .fallback(gh_unknown)
        .with_state(fake.clone())
        .layer(axum::middleware::from_fn_with_state(
            fake.clone(),
            arrive_layer::<FakeGitHub>,
        ))
        .layer(axum::middleware::from_fn_with_state(hold, hold_layer));
    (serve(app), fake)
}

// ---------------------------------------------------------------------------------------------
// Cirun

/// Cirun's access-control API as its official client calls it (cirun-py, `cirun/client.py`;
/// conda-forge calls it from conda-smithy's `conda_smithy/cirun_utils.py`):
///
/// - every call carries `Authorization: Bearer <key>` and `Content-Type: application/json`
///   (`Cirun._headers`); the base is `https://api.cirun.io/api/v1` (`API_ENDPOINT`);
/// - `GET access-control` with the JSON body `{"org": ORG}` (`Cirun.get_access_control`)
///   answers `{"access_yml": {...}}`, the policy as merged in `ORG/.cirun` (`get_repo_resources`
///   reads `access_yml["policies"]` and `access_yml["access_control"]`); cirun-py treats any
///   status but 200 as "no policy";
/// - `PUT access-control` with `{"org": ORG, "repository_resource_access": [...]}`
///   (`Cirun.update_access_control`), each entry exactly the keys of
///   `_create_access_control_repo_resource_data`: `repository` (the bare name, as
///   conda-smithy's `add_repo_to_cirun_resource` passes it), `resources`, `action` (`add` or
///   `remove`), `policy_args` (`{"pull_request": bool}` or null), `teams`, `users`, `roles`,
///   `users_from_json` (each a value or null). It changes nothing yet: as the docstrings of
///   `add_repo_to_resources` and `remove_repo_from_resources` say, it "creates a Pull request in
///   the `<org>/.cirun` repository updating the `.access.yml`". Here that pull request is opened
///   in the fake GitHub given to [`FakeCirun::new`], from a branch of its own, by
///   `cirun-application[bot]` (the app slug conda-smithy's `get_cirun_installation_id` looks
///   for); merging it (through GitHub) is what makes the change live.
///
/// What Cirun's server does with an entry is not published; this stand-in reads it the way the
/// policies it has written for conda-forge look (`fixtures/conda-forge/cirun-access.yml`):
/// `add` writes the policy `<repository>-policy` (`repo`, `roles`, `teams`, `users`,
/// `pull_request` from `policy_args`, `users_from_json`; null fields left out) and names it
/// under each resource; `remove` takes every policy of the repository off each named resource,
/// and drops a policy no resource names any more. Entries apply in order.
pub struct FakeCirun {
    pub gate: Gate,
    pub github: Arc<FakeGitHub>,
    /// The organisation whose policy this is, and its access repository.
    pub org: String,
    pub access_repo: String,
    /// Pull requests opened so far (to name their branches).
    opened: AtomicUsize,
    /// Cirun's own switch (`set_repo`): lower-cased `owner/name` -> active. See [`cirun_repo`].
    pub active: Mutex<BTreeMap<String, bool>>,
    /// `POST repo` answers only after this long (a Cirun that hangs).
    pub repo_delay: Mutex<Option<Duration>>,
}

/// Where Cirun keeps the policy in the access repository.
pub const ACCESS_FILE: &str = ".access.yml";
/// Who opens Cirun's pull requests.
pub const CIRUN_BOT: &str = "cirun-application[bot]";

impl FakeCirun {
    /// Cirun for organisation `org`, whose policy lives in `org/.cirun` of `github`.
    pub fn new(github: Arc<FakeGitHub>, org: &str) -> Self {
        FakeCirun {
            gate: Gate::new(CIRUN_KEY),
            github,
            org: org.to_string(),
            access_repo: format!("{org}/.cirun"),
            opened: AtomicUsize::new(0),
            active: Mutex::new(BTreeMap::new()),
            repo_delay: Mutex::new(None),
        }
    }

    /// The policy as merged (the access repository's default branch), `None` when absent.
    pub fn policy(&self) -> Option<Value> {
        let text = self.github.file(&self.access_repo, "main", ACCESS_FILE)?;
        Some(serde_saphyr::from_str(&text).expect("the fake's .access.yml is YAML"))
    }

    /// Repository names (`x-feedstock`) that the merged policy lets use `resource`, sorted.
    pub fn repos_for(&self, resource: &str) -> Vec<String> {
        let policy = self.policy().unwrap_or(Value::Null);
        let ids: Vec<&str> = policy["access_control"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["resource"] == resource)
            .flat_map(|e| e["policies"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let mut repos: Vec<String> = policy["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["id"].as_str().is_some_and(|id| ids.contains(&id)))
            .filter_map(|p| p["repo"].as_str().map(str::to_string))
            .collect();
        repos.sort();
        repos.dedup();
        repos
    }

    /// The pull requests Cirun opened on the access repository, oldest first.
    pub fn pulls(&self) -> Vec<Value> {
        self.github
            .pulls_in(&self.access_repo)
            .into_iter()
            .filter(|p| p["user"]["login"] == CIRUN_BOT)
            .collect()
    }
}

/// The keys of one entry, as `_create_access_control_repo_resource_data` builds it.
const ENTRY_KEYS: [&str; 8] = [
    "repository",
    "resources",
    "action",
    "policy_args",
    "teams",
    "users",
    "roles",
    "users_from_json",
];

/// `policy` (an `.access.yml` as JSON) after `entry`, or why the entry is refused.
fn apply_entry(policy: &mut Value, entry: &Value) -> Result<(), String> {
    let fields = entry.as_object().ok_or("an entry is not an object")?;
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort();
    let mut want = ENTRY_KEYS.to_vec();
    want.sort();
    if keys != want {
        return Err(format!(
            "an entry has keys {keys:?}, not cirun-py's {want:?}"
        ));
    }
    let repo = entry["repository"]
        .as_str()
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .ok_or("`repository` must be a repository name without its owner")?;
    let resources: Vec<&str> = entry["resources"]
        .as_array()
        .ok_or("`resources` must be a list")?
        .iter()
        .map(|r| r.as_str().ok_or("`resources` must list names"))
        .collect::<Result<_, _>>()?;
    for list in ["teams", "users", "roles"] {
        let v = &entry[list];
        if !(v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))) {
            return Err(format!("`{list}` must be null or a list of names"));
        }
    }
    if !(entry["users_from_json"].is_null() || entry["users_from_json"].is_string()) {
        return Err("`users_from_json` must be null or a URL".into());
    }
    if policy["policies"].is_null() {
        policy["policies"] = json!([]);
    }
    if policy["access_control"].is_null() {
        policy["access_control"] = json!([]);
    }
    let ids_of_repo: Vec<String> = policy["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["repo"] == repo)
        .filter_map(|p| p["id"].as_str().map(str::to_string))
        .collect();
    match entry["action"].as_str() {
        Some("remove") => {
            let acl = policy["access_control"].as_array_mut().unwrap();
            for e in acl.iter_mut() {
                if resources.iter().any(|r| e["resource"] == *r)
                    && let Some(ids) = e["policies"].as_array_mut()
                {
                    ids.retain(|id| {
                        !id.as_str()
                            .is_some_and(|id| ids_of_repo.iter().any(|m| m == id))
                    });
                }
            }
            acl.retain(|e| e["policies"].as_array().is_some_and(|ids| !ids.is_empty()));
            let used: BTreeSet<String> = acl
                .iter()
                .flat_map(|e| e["policies"].as_array().into_iter().flatten())
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect();
            policy["policies"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p["id"].as_str().is_some_and(|id| used.contains(id)));
        }
        Some("add") => {
            let id = format!("{repo}-policy");
            let pull_request = match &entry["policy_args"] {
                Value::Null => false,
                Value::Object(args) => args
                    .get("pull_request")
                    .map(|v| {
                        v.as_bool()
                            .ok_or("`policy_args.pull_request` must be a boolean")
                    })
                    .transpose()?
                    .unwrap_or(false),
                _ => return Err("`policy_args` must be null or an object".into()),
            };
            let mut p = serde_json::Map::new();
            p.insert("id".into(), json!(id));
            p.insert("repo".into(), json!(repo));
            for f in ["roles", "teams", "users"] {
                if !entry[f].is_null() {
                    p.insert(f.into(), entry[f].clone());
                }
            }
            p.insert("pull_request".into(), json!(pull_request));
            if !entry["users_from_json"].is_null() {
                p.insert("users_from_json".into(), entry["users_from_json"].clone());
            }
            let list = policy["policies"].as_array_mut().unwrap();
            match list.iter_mut().find(|q| q["id"] == id.as_str()) {
                Some(q) => *q = Value::Object(p),
                None => list.push(Value::Object(p)),
            }
            let acl = policy["access_control"].as_array_mut().unwrap();
            for r in resources {
                match acl.iter_mut().find(|e| e["resource"] == r) {
                    Some(e) => {
                        let ids = e["policies"].as_array_mut().ok_or("a broken entry")?;
                        if !ids.iter().any(|x| *x == id.as_str()) {
                            ids.push(json!(id));
                        }
                    }
                    None => acl.push(json!({ "resource": r, "policies": [id] })),
                }
            }
        }
        _ => return Err("`action` must be `add` or `remove`".into()),
    }
    Ok(())
}

type Ci = State<Arc<FakeCirun>>;

async fn cirun_access(State(f): Ci, m: Method, body: Option<axum::Json<Value>>) -> Response {
    let Some(axum::Json(body)) = body else {
        return error(400, "a JSON body with `org` is required");
    };
    if body["org"] != f.org.as_str() {
        return error(404, "organisation not found");
    }
    if m == Method::GET {
        return match f.policy() {
            Some(p) => axum::Json(json!({ "access_yml": p })).into_response(),
            None => error(404, "no access control configured"),
        };
    }
    let Some(entries) = body["repository_resource_access"].as_array() else {
        return error(400, "`repository_resource_access` must be a list");
    };
    if body.as_object().map(|o| o.len()) != Some(2) {
        return error(400, "only `org` and `repository_resource_access` are taken");
    }
    let mut policy = f
        .policy()
        .unwrap_or_else(|| json!({ "version": 1, "policies": [], "access_control": [] }));
    for entry in entries {
        if let Err(e) = apply_entry(&mut policy, entry) {
            return error(400, &e);
        }
    }
    let text = serde_saphyr::to_string(&policy).unwrap();
    // The pull request, as Cirun's app opens it with its own credentials (not through the
    // gate: these are not gatehouse's calls).
    let n = f.opened.fetch_add(1, Ordering::SeqCst) + 1;
    let branch = format!("cirun/access-control-{n}");
    let number = {
        let mut s = f.github.state.lock().unwrap();
        repo_id(&mut s, &f.access_repo);
        let base = branch_mut(&mut s, &f.access_repo, "main").clone();
        let mut head = base;
        head.insert(ACCESS_FILE.to_string(), text);
        let key = f.access_repo.to_ascii_lowercase();
        s.files.get_mut(&key).unwrap().insert(branch.clone(), head);
        s.commits.push((
            f.access_repo.clone(),
            branch.clone(),
            ACCESS_FILE.to_string(),
            "Update access control".to_string(),
        ));
        let number = 100 + s.opened.len() as u64;
        let (owner, _) = f.access_repo.split_once('/').unwrap();
        s.opened.insert(
            (key, number),
            json!({
                "number": number,
                "html_url": format!("https://github.com/{}/pull/{number}", f.access_repo),
                "title": "Update access control",
                "state": "open",
                "merged": false,
                "user": { "login": CIRUN_BOT, "type": "Bot" },
                "head": { "ref": branch, "label": format!("{owner}:{branch}") },
                "base": { "ref": "main" },
            }),
        );
        number
    };
    axum::Json(json!({ "message": format!("Pull request #{number} created") })).into_response()
}

impl FakeCirun {
    /// Whether Cirun is switched on at `owner/name` (`None`: never set).
    pub fn is_active(&self, full: &str) -> Option<bool> {
        self.active
            .lock()
            .unwrap()
            .get(&full.to_ascii_lowercase())
            .copied()
    }
}

/// Cirun's switch at one repository, as cirun-py's `Cirun.set_repo(name, active)` calls it
/// (`cirun/client.py`, commit 14b7e4a): `POST repo` with the JSON body exactly
/// `{"repository": name, "active": bool}`, where `name` is `owner/name` (cirun-py's CLI help:
/// "for example: cirunlabs/cirun"; conda-smithy's `enable_cirun_for_project` passes
/// `f"{owner}/{repo}"`); 200 or 201 is success, any other status an error
/// (`raise_for_status`). The answer is a JSON object (cirun-py spreads it into a dict) whose
/// fields are not published: this one repeats what was set. cirun-py's `get_repos`
/// (`GET repo`, "List active repositories") is not served: what it answers is not published.
async fn cirun_repo(State(f): Ci, body: Option<axum::Json<Value>>) -> Response {
    let delay = *f.repo_delay.lock().unwrap();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let Some(axum::Json(body)) = body else {
        return error(
            400,
            "a JSON body with `repository` and `active` is required",
        );
    };
    let keys: BTreeSet<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if keys != BTreeSet::from(["active", "repository"]) {
        return error(400, "only `repository` and `active` are taken");
    }
    let (Some(name), Some(active)) = (body["repository"].as_str(), body["active"].as_bool()) else {
        return error(400, "`repository` must be a name and `active` a boolean");
    };
    let well_formed = name
        .split_once('/')
        .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'));
    if !well_formed {
        return error(400, "`repository` must be `owner/name`");
    }
    f.active
        .lock()
        .unwrap()
        .insert(name.to_ascii_lowercase(), active);
    axum::Json(json!({ "repository": name, "active": active })).into_response()
}

/// Starts a fake Cirun; returns its base URL (the fake's `/api/v1`).
pub fn serve_cirun(fake: FakeCirun) -> (String, Arc<FakeCirun>) {
    serve_cirun_held(fake, Hold::new())
}

/// Starts a fake Cirun whose calls `hold` can stop.
pub fn serve_cirun_held(fake: FakeCirun, hold: Arc<Hold>) -> (String, Arc<FakeCirun>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route(
            "/api/v1/access-control",
            get(cirun_access).put(cirun_access),
        )
        .route("/api/v1/repo", post(cirun_repo))
        .with_state(fake.clone())
        .layer(axum::middleware::from_fn_with_state(
            fake.clone(),
            arrive_layer::<FakeCirun>,
        ))
        .layer(axum::middleware::from_fn_with_state(hold, hold_layer));
    (format!("{}/api/v1", serve(app)), fake)
}

/// Serves `app` on 127.0.0.1 in a thread of its own; returns `http://127.0.0.1:port`.
fn serve(app: Router) -> String {
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
    base
}

#[cfg(test)]
mod tests {
    use super::fits;

    /// A pattern is the call itself, or has `*` standing for any text (none included).
    #[test]
    fn patterns_choose_calls() {
        let call = "POST /repos/o/r/actions/runs/7/cancel";
        for yes in [
            call,
            "POST /repos*",
            "POST */cancel",
            "*/runs/*/cancel",
            "*",
            "POST /repos/o/r/actions/runs/7/cancel*",
        ] {
            assert!(fits(yes, call), "{yes}");
        }
        for no in [
            "GET /repos*",
            "POST /repos/o/r",
            "*/cancel/*",
            "POST */attempts",
            "POST /repos/o/r/actions/runs/7/cancel/x",
        ] {
            assert!(!fits(no, call), "{no}");
        }
    }
}
