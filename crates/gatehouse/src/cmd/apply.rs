//! `gatehouse apply`, `expire` and `doctor`.
//!
//! `apply` and `expire` share one pipeline: plan the ledger changes (merged requests, or
//! expiry), refuse a mass revocation, write the grant files and commit them, then reconcile
//! every provider from the new ledger. The ledger step is done once: a rerun finds nothing left
//! to commit and only retries the providers, whose failures are remembered in
//! `.gatehouse/state.json` (and, after six hours, reported in one GitHub issue).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::ledger::{LedgerChange, RequestOrigin, plan_expiry, plan_requests};
use gatehouse_core::repo::load_dir;
use gatehouse_core::{Repo, Severity};
use jiff::civil::Date;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::cli::{ApplyArgs, DoctorArgs};
use crate::fsutil::{safe_join, write_atomic};
use crate::github::{Client, Method, Service};
use crate::providers::{self, Clients, RemovalLimit};

/// How long a provider may keep failing before `apply` opens an issue about it.
const REPORT_AFTER: Duration = Duration::from_secs(6 * 3600);
const STATE_DIR: &str = ".gatehouse";
const STATE_FILE: &str = ".gatehouse/state.json";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Expire,
}

pub fn run_apply(args: ApplyArgs, today: Date) -> anyhow::Result<ExitCode> {
    run(args, today, Mode::Apply)
}

pub fn run_expire(args: ApplyArgs, today: Date) -> anyhow::Result<ExitCode> {
    run(args, today, Mode::Expire)
}

fn run(args: ApplyArgs, today: Date, mode: Mode) -> anyhow::Result<ExitCode> {
    let dir = args.dir.as_path();
    let repo = load_dir(dir)?;
    // Errors in requests only hold those requests back (`plan_requests` skips them); errors
    // anywhere else could make the providers grant the wrong thing.
    let blocking: Vec<_> = gatehouse_core::check::run_all(&repo, today)
        .sorted()
        .into_iter()
        .filter(|d| d.severity == Severity::Error && !d.file.starts_with("requests/"))
        .collect();
    if let Some(first) = blocking.first() {
        eprintln!(
            "error: {} has {} error(s) outside requests/ (the first: {}: {}); nothing was changed. \
             Run `gatehouse check {}` and fix them first",
            dir.display(),
            blocking.len(),
            first.location(),
            first.message,
            dir.display()
        );
        return Ok(ExitCode::from(1));
    }

    let plan = match mode {
        Mode::Apply => {
            let origins = request_origins(dir, &repo);
            let requests = plan_requests(&repo, today, &origins);
            super::plan::plan_from(
                &repo,
                today,
                requests.changes,
                requests.consumed,
                requests.skipped,
            )
        }
        Mode::Expire => {
            warn_expiring_soon(&repo, today);
            super::plan::plan_from(&repo, today, plan_expiry(&repo, today), vec![], vec![])
        }
    };
    let limit = RemovalLimit {
        max_share: (!args.allow_mass_revoke).then_some(args.max_revoke_share),
    };
    let mass = limit.exceeded(plan.revocations, plan.active_grants);
    let refusal = format!(
        "this would revoke {} of {} active grants, more than {}% in one run. If that is \
         intended, run again with --allow-mass-revoke",
        plan.revocations,
        plan.active_grants,
        args.max_revoke_share * 100.0
    );
    if !args.confirm {
        print!("{}", super::plan::text(&plan));
        if mass {
            eprintln!("note: --confirm would refuse: {refusal}");
        }
        eprintln!("dry run: nothing was changed; pass --confirm to apply");
        return Ok(ExitCode::SUCCESS);
    }
    if mass {
        eprintln!("error: {refusal}; nothing was changed");
        return Ok(ExitCode::from(1));
    }

    git_toplevel(dir)?;
    write_ledger(dir, &repo, &plan.ledger, &plan.consumed)?;
    for (request, why) in plan.skipped.iter().map(|s| (&s.request, &s.why)) {
        eprintln!("skipped {request}: {why}");
    }
    let subject = match mode {
        Mode::Apply => "apply",
        Mode::Expire => "expire",
    };
    match commit(dir, &commit_message(subject, &plan.ledger, &plan.consumed))? {
        Some(sha) => eprintln!("ledger: committed {sha}"),
        None => eprintln!("ledger: up to date, nothing to commit"),
    }

    // The providers follow the ledger as written, read back from disk.
    let repo = load_dir(dir)?;
    let ok = reconcile_all(dir, &repo, today, limit)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reconciles every provider, each independently; records failures. `Ok(false)` when any
/// provider failed.
fn reconcile_all(
    dir: &Path,
    repo: &Repo,
    today: Date,
    limit: RemovalLimit,
) -> anyhow::Result<bool> {
    let settings = &repo.settings.as_ref().context("no gatehouse.yml")?.value;
    let clients = Clients::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut state = State::load(dir);
    let now = now()?;
    for (name, provider) in &settings.providers {
        let kind = provider.kind.value.as_str();
        let result = providers::configure(repo, name, provider, today, &clients)
            .and_then(|p| runtime.block_on(providers::reconcile(repo, name, &p, limit)));
        match result {
            Ok(done) if done.rewritten => {
                eprintln!(
                    "{name} ({kind}): rewritten (it differed from the ledger in more than who is in)"
                )
            }
            Ok(done) if done.changes.is_empty() => eprintln!("{name} ({kind}): up to date"),
            Ok(done) => {
                for c in &done.changes {
                    eprintln!("{c}");
                }
                eprintln!("{name} ({kind}): {} change(s) made", done.changes.len());
            }
            Err(e) => {
                let error = format!("{e:#}");
                eprintln!("{name} ({kind}): failed: {error}");
                state.failed(name, error, now);
                continue;
            }
        }
        state.recovered(name);
    }
    let failed = !state.failing.is_empty();
    if let Err(e) = runtime.block_on(report(&mut state, &clients, now)) {
        eprintln!("warning: could not report the failures in an issue: {e:#}");
    }
    state.save(dir)?;
    if failed {
        eprintln!(
            "{} provider(s) failing; the ledger is committed, and the next run retries them",
            state.failing.len()
        );
    }
    Ok(!failed)
}

// ---------------------------------------------------------------------------------------------
// The ledger on disk and in git

/// Writes the new grant files (each atomically) and deletes the consumed requests.
fn write_ledger(
    dir: &Path,
    repo: &Repo,
    changes: &[LedgerChange],
    consumed: &[String],
) -> anyhow::Result<()> {
    for (path, file) in gatehouse_core::ledger::apply_changes(repo, changes) {
        let full = safe_join(dir, &path)?;
        match file {
            Some(file) => {
                let yaml =
                    serde_saphyr::to_string(&file).context("writing a grant file as YAML")?;
                write_atomic(&full, yaml.as_bytes())?;
            }
            None => remove(&full)?,
        }
    }
    for path in consumed {
        remove(&safe_join(dir, path)?)?;
    }
    Ok(())
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("deleting {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `gatehouse apply: grant x: gpu (requests/x.yml)`, one body line per change when several.
fn commit_message(verb: &str, changes: &[LedgerChange], consumed: &[String]) -> String {
    let line = |c: &LedgerChange| match c {
        LedgerChange::Grant {
            project,
            resource,
            request,
            ..
        } => format!("grant {project}: {resource} ({request})"),
        LedgerChange::Renew {
            project,
            resource,
            request,
            to,
            ..
        } => format!(
            "renew {project}: {resource} until {} ({request})",
            to.as_deref().unwrap_or("no expiry")
        ),
        LedgerChange::Revoke {
            project,
            resource,
            why,
        } => format!("revoke {project}: {resource} ({why})"),
    };
    let mut message = match changes {
        [one] => format!("gatehouse {verb}: {}\n", line(one)),
        [] => format!("gatehouse {verb}: consume {} request(s)\n", consumed.len()),
        many => format!("gatehouse {verb}: {} ledger changes\n", many.len()),
    };
    if changes.len() > 1 {
        message.push('\n');
        for c in changes {
            message.push_str(&format!("- {}\n", line(c)));
        }
    }
    if !consumed.is_empty() {
        message.push_str(&format!("\nconsumed: {}\n", consumed.join(", ")));
    }
    message
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")
}

/// Fails unless `dir` is inside a git work tree: the ledger is recorded by a commit.
fn git_toplevel(dir: &Path) -> anyhow::Result<()> {
    let out = git(dir, &["rev-parse", "--show-toplevel"])?;
    if !out.status.success() {
        bail!(
            "{} is not a git repository; apply records every ledger change in a commit. \
             Run it in a clone of the access repository. Nothing was changed",
            dir.display()
        );
    }
    Ok(())
}

/// Commits what changed in `grants/` and `requests/` (nothing else); the new commit's id, or
/// `None` when there was nothing to commit.
fn commit(dir: &Path, message: &str) -> anyhow::Result<Option<String>> {
    let paths: Vec<&str> = ["grants", "requests"]
        .into_iter()
        .filter(|p| dir.join(p).is_dir())
        .collect();
    if paths.is_empty() {
        return Ok(None);
    }
    let run = |args: &[&str]| -> anyhow::Result<std::process::Output> {
        let out = git(dir, args)?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    };
    let mut add = vec!["add", "-A", "--"];
    add.extend(&paths);
    run(&add)?;
    // Only paths with staged changes: git refuses a path it has never tracked (an empty
    // `requests/`).
    let mut changed = Vec::new();
    for p in paths {
        if !git(dir, &["diff", "--cached", "--quiet", "--", p])?
            .status
            .success()
        {
            changed.push(p);
        }
    }
    if changed.is_empty() {
        return Ok(None);
    }
    // CI checkouts often have no identity configured; a commit must not fail for that.
    let mut args: Vec<&str> = Vec::new();
    if !git(dir, &["var", "GIT_COMMITTER_IDENT"])?.status.success() {
        args.extend([
            "-c",
            "user.name=gatehouse",
            "-c",
            "user.email=gatehouse@localhost",
        ]);
    }
    args.extend(["commit", "-q", "-m", message, "--"]);
    args.extend(&changed);
    run(&args)?;
    let sha = run(&["rev-parse", "--short", "HEAD"])?;
    Ok(Some(
        String::from_utf8_lossy(&sha.stdout).trim().to_string(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Where requests came from

/// Each request's pull request and approvers, when they can be found: the access repository
/// is named by `GITHUB_REPOSITORY` (set in GitHub Actions), the token by `GITHUB_TOKEN`, and
/// the commit that added the file by git. Otherwise the request's path stands in for its URL.
fn request_origins(dir: &Path, repo: &Repo) -> HashMap<String, RequestOrigin> {
    let mut origins = HashMap::new();
    if repo.requests.is_empty() {
        return origins;
    }
    let access_repo = std::env::var("GITHUB_REPOSITORY").ok();
    let Some((owner, name)) = access_repo.as_deref().and_then(|r| r.split_once('/')) else {
        eprintln!(
            "note: GITHUB_REPOSITORY is not set; grants record the request file, not its pull request"
        );
        return origins;
    };
    let client = match providers::client_from_env(Service::GitHub) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("note: {e:#}; grants record the request file, not its pull request");
            return origins;
        }
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return origins;
    };
    for request in &repo.requests {
        let sha = git(
            dir,
            &[
                "log",
                "--diff-filter=A",
                "--format=%H",
                "-1",
                "--",
                &request.path,
            ],
        )
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
        let Some(sha) = sha else { continue };
        match runtime.block_on(origin_of(&client, owner, name, &sha)) {
            Ok(Some(origin)) => {
                origins.insert(request.path.clone(), origin);
            }
            Ok(None) => {}
            Err(e) => eprintln!(
                "note: could not find the pull request of {} ({e:#}); its grants record the file",
                request.path
            ),
        }
    }
    origins
}

/// The merged pull request that brought commit `sha`, and who approved it.
async fn origin_of(
    client: &Client,
    owner: &str,
    name: &str,
    sha: &str,
) -> anyhow::Result<Option<RequestOrigin>> {
    #[derive(Deserialize)]
    struct Pull {
        number: u64,
        html_url: String,
        merged_at: Option<String>,
    }
    #[derive(Deserialize)]
    struct Review {
        state: String,
        user: Option<User>,
    }
    #[derive(Deserialize)]
    struct User {
        login: String,
    }
    let pulls: Vec<Pull> = client
        .get(&["repos", owner, name, "commits", sha, "pulls"])
        .await?
        .unwrap_or_default();
    let Some(pull) = pulls.into_iter().find(|p| p.merged_at.is_some()) else {
        return Ok(None);
    };
    let number = pull.number.to_string();
    let reviews: Vec<Review> = client
        .get_all(&["repos", owner, name, "pulls", &number, "reviews"], None)
        .await?
        .unwrap_or_default();
    let mut approved_by: Vec<String> = Vec::new();
    for r in reviews {
        if let (true, Some(user)) = (r.state == "APPROVED", r.user)
            && !approved_by.contains(&user.login)
        {
            approved_by.push(user.login);
        }
    }
    Ok(Some(RequestOrigin {
        url: Some(pull.html_url),
        approved_by,
    }))
}

/// `expire` tells what ends within two weeks, so that it is no surprise.
fn warn_expiring_soon(repo: &Repo, today: Date) {
    let soon = today.saturating_add(jiff::Span::new().days(14));
    for f in &repo.grants {
        for g in &f.value.grants {
            if let Some(e) = &g.expires
                && e.value.0 >= today
                && e.value.0 <= soon
            {
                eprintln!(
                    "note: {}: {} expires on {}; a `renew` request keeps it",
                    f.value.project.value, g.resource.value, e.value
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failures across runs

/// What outlives a run: which providers are failing, since when, and the issue about them.
/// Not part of the ledger, so it is kept out of git.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    failing: BTreeMap<String, Failure>,
    /// The open issue that reports the failures, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issue: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    /// Seconds since the epoch of the first failing run, and of the last.
    since: i64,
    last: i64,
    runs: u32,
    error: String,
}

impl State {
    fn load(dir: &Path) -> State {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                eprintln!(
                    "warning: ignoring {} ({e}); starting afresh",
                    path.display()
                );
                State::default()
            }),
            Err(_) => State::default(),
        }
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let ignore = dir.join(STATE_DIR).join(".gitignore");
        if !ignore.exists() {
            write_atomic(&ignore, b"*\n")?;
        }
        let json = serde_json::to_string_pretty(self)? + "\n";
        write_atomic(&dir.join(STATE_FILE), json.as_bytes())
    }

    fn failed(&mut self, provider: &str, error: String, now: i64) {
        let f = self.failing.entry(provider.to_string()).or_insert(Failure {
            since: now,
            last: now,
            runs: 0,
            error: String::new(),
        });
        f.last = now;
        f.runs += 1;
        f.error = error;
    }

    fn recovered(&mut self, provider: &str) {
        self.failing.remove(provider);
    }
}

/// Seconds since the epoch; `GATEHOUSE_NOW` stands in for the clock in tests.
fn now() -> anyhow::Result<i64> {
    match std::env::var("GATEHOUSE_NOW") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("GATEHOUSE_NOW must be seconds since the epoch, got `{v}`")),
        Err(_) => Ok(jiff::Timestamp::now().as_second()),
    }
}

/// Opens one issue in the access repository when a provider has failed for six hours, updates
/// that same issue while failures go on, and closes it when every provider works again.
async fn report(state: &mut State, clients: &Clients, now: i64) -> anyhow::Result<()> {
    let overdue = state
        .failing
        .values()
        .any(|f| now - f.since >= REPORT_AFTER.as_secs() as i64);
    if !overdue && state.issue.is_none() {
        return Ok(());
    }
    let Some((owner, name)) = std::env::var("GITHUB_REPOSITORY").ok().and_then(|r| {
        r.split_once('/')
            .map(|(o, n)| (o.to_string(), n.to_string()))
    }) else {
        bail!("GITHUB_REPOSITORY (the access repository, `owner/name`) is not set");
    };
    let client = clients.github()?;
    let body = issue_body(state, now);
    match state.issue {
        None => {
            #[derive(Deserialize)]
            struct Created {
                number: u64,
            }
            let payload = serde_json::json!({
                "title": "gatehouse: a provider keeps failing",
                "body": body,
            });
            let created: Created = client
                .mutate(
                    Method::POST,
                    &["repos", &owner, &name, "issues"],
                    Some(&payload),
                )
                .await?;
            eprintln!(
                "opened issue #{} about the failing provider(s)",
                created.number
            );
            state.issue = Some(created.number);
        }
        Some(number) => {
            let resolved = state.failing.is_empty();
            let mut payload = serde_json::json!({ "body": body });
            if resolved {
                payload["state"] = "closed".into();
            }
            let n = number.to_string();
            let _: IgnoredAny = client
                .mutate(
                    Method::PATCH,
                    &["repos", &owner, &name, "issues", &n],
                    Some(&payload),
                )
                .await?;
            if resolved {
                eprintln!("closed issue #{number}: every provider works again");
                state.issue = None;
            }
        }
    }
    Ok(())
}

fn issue_body(state: &State, now: i64) -> String {
    if state.failing.is_empty() {
        return "Every provider works again; gatehouse closed this issue.\n".into();
    }
    let mut body = String::from(
        "`gatehouse apply` cannot bring these providers in line with the ledger. It retries on \
         every run and edits this issue; it closes it once they work again.\n\n\
         | provider | failing for | runs | last error |\n| --- | --- | --- | --- |\n",
    );
    for (provider, f) in &state.failing {
        body.push_str(&format!(
            "| `{provider}` | {}h | {} | {} |\n",
            (now - f.since) / 3600,
            f.runs,
            f.error.replace('|', "\\|").replace('\n', " ")
        ));
    }
    body
}

// ---------------------------------------------------------------------------------------------
// doctor

pub fn run_doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let repo = load_dir(&args.dir)?;
    let settings = &repo
        .settings
        .as_ref()
        .with_context(|| format!("{} has no gatehouse.yml", args.dir.display()))?
        .value;
    let mut needed: Vec<(Service, Vec<&str>)> = Vec::new();
    for (name, p) in &settings.providers {
        let service = providers::service_of(p.kind.value);
        match needed.iter_mut().find(|(s, _)| *s == service) {
            Some((_, names)) => names.push(name),
            None => needed.push((service, vec![name])),
        }
    }
    if needed.is_empty() {
        println!("no providers are configured in gatehouse.yml; there is no credential to check");
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut all_ok = true;
    for (service, names) in needed {
        let var = service.token_var();
        let used_by = format!("used by {}", names.join(", "));
        let verdict = match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            None => format!("missing   {var} ({service}, {used_by}): set it in the environment"),
            Some(_) => match providers::client_from_env(service) {
                Err(e) => format!("error     {var} ({service}, {used_by}): {e:#}"),
                Ok(client) => probe(&runtime, &client, var, &used_by),
            },
        };
        all_ok &= verdict.starts_with("ok");
        println!("{verdict}");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Asks the service one cheap question that needs the credential.
fn probe(runtime: &tokio::runtime::Runtime, client: &Client, var: &str, used_by: &str) -> String {
    let service = client.service();
    let path: &[&str] = match service {
        Service::GitHub => &["rate_limit"],
        Service::Cirun => &["access-control"],
    };
    match runtime.block_on(client.get::<IgnoredAny>(path)) {
        Ok(Some(_)) => format!("ok        {var} ({service}, {used_by})"),
        // Cirun answers 404 while no policy was ever written; the key was accepted.
        Ok(None) if service == Service::Cirun => format!("ok        {var} ({service}, {used_by})"),
        Ok(None) => format!(
            "error     {var} ({service}, {used_by}): /{} was not found; check {}",
            path.join("/"),
            service.api_var()
        ),
        Err(e) if e.is_refusal() => format!("rejected  {var} ({service}, {used_by}): {e}"),
        Err(e) if e.is_unavailable() => format!("unreachable {var} ({service}, {used_by}): {e}"),
        Err(e) => format!("error     {var} ({service}, {used_by}): {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_message_names_project_resource_and_request() {
        let change = LedgerChange::Revoke {
            project: "x".into(),
            resource: "gpu".into(),
            why: "requests/x.yml".into(),
        };
        let m = commit_message("apply", &[change], &["requests/x.yml".into()]);
        assert!(
            m.starts_with("gatehouse apply: revoke x: gpu (requests/x.yml)\n"),
            "{m}"
        );
    }

    #[test]
    fn failures_keep_their_first_time() {
        let mut s = State::default();
        s.failed("cirun", "500".into(), 10);
        s.failed("cirun", "502".into(), 20);
        let f = &s.failing["cirun"];
        assert_eq!(
            (f.since, f.last, f.runs, f.error.as_str()),
            (10, 20, 2, "502")
        );
        s.recovered("cirun");
        assert!(s.failing.is_empty());
    }
}
