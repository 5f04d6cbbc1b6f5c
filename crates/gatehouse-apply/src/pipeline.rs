//! `gatehouse apply`, `expire` and `doctor`.
//!
//! `apply` and `expire` share one pipeline: plan the ledger changes (merged requests, or
//! expiry), refuse a mass revocation, write the grant files and commit them, then reconcile
//! every provider from the new ledger, then the configuration pull requests of `send_pr`
//! grants. The ledger step is done once: a rerun finds nothing left to commit and only retries
//! the providers, whose failures are remembered in `.gatehouse/state.json` (and, after six
//! hours, reported in one GitHub issue). The same file records which configuration pull
//! requests were sent (so that a revocation sends the reverse) and which expiry notices were
//! opened; both are also found on GitHub when the file is lost, so nothing is sent twice.
//! `expire` also opens one issue on each project whose grant ends within two weeks.
//!
//! On a terminal the providers show as a progress bar; anywhere else (CI, a pipe) as plain
//! log lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::ledger::{LedgerChange, plan_expiry, plan_requests};
use gatehouse_core::repo::load_dir;
use gatehouse_core::{Repo, Severity};
use jiff::civil::Date;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::cli::{ApplyArgs, DoctorArgs};
use crate::fsutil::{safe_join, write_atomic};
use crate::github::{Client, Method, Service};
use crate::providers::{self, Clients, FeedstockConfig, RemovalLimit};

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
            // Only requests whose merged pull request is judged approved go on (see
            // `apply_review`); the rest stay in requests/ and are reported.
            let judged = super::apply_review::judge_requests(dir, &repo);
            let mut approved = repo.clone();
            approved
                .requests
                .retain(|r| !judged.held.iter().any(|(p, _)| *p == r.path));
            let requests = plan_requests(&approved, today, &judged.origins);
            let mut skipped = judged.held;
            skipped.extend(requests.skipped);
            skipped.sort();
            super::plan::plan_from(&repo, today, requests.changes, requests.consumed, skipped)
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
    // Recorded before the ledger commit: a revoked grant's configuration pull request must be
    // undone even if this run is stopped right after the commit that forgets the grant.
    let mut state = State::load(dir);
    remember_config_removals(&repo, &plan.ledger, &mut state);
    state.save(dir)?;
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
    let mut held_reported = true;
    if mode == Mode::Apply
        && let Err(e) = report_held(&plan.skipped)
    {
        eprintln!("warning: could not report the held requests in an issue: {e:#}");
        held_reported = false;
    }

    // The providers follow the ledger as written, read back from disk.
    let repo = load_dir(dir)?;
    let mut ok = reconcile_all(
        dir,
        &repo,
        today,
        limit,
        args.deactivate_ungranted,
        &mut state,
    )?;
    ok &= close_renewed_notices(dir, &repo, &mut state)?;
    if mode == Mode::Expire {
        ok &= notify_expiring(dir, &repo, today, &mut state)?;
    }
    ok &= held_reported;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reconciles every provider, each independently, then the configuration pull requests of
/// `send_pr` grants; records failures. `Ok(false)` when any failed.
fn reconcile_all(
    dir: &Path,
    repo: &Repo,
    today: Date,
    limit: RemovalLimit,
    deactivate_ungranted: bool,
    state: &mut State,
) -> anyhow::Result<bool> {
    let settings = &repo.settings.as_ref().context("no gatehouse.yml")?.value;
    let clients = Clients::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let now = now()?;
    let progress = Progress::new(settings.providers.len() as u64 + 1);
    for (name, provider) in &settings.providers {
        let kind = provider.kind.value.as_str();
        progress.start(name);
        let result = providers::configure(repo, name, provider, today, &clients)
            .and_then(|p| runtime.block_on(providers::reconcile(repo, name, &p, limit)))
            .and_then(|done| {
                // Cirun's own switch, once its policy is what the ledger says: on where a
                // grant was gained, off where none is held (only on request).
                let Some(installation) = cirun_installation(provider) else {
                    return Ok((done, None));
                };
                let switch = providers::cirun_app::Switch {
                    admin: clients.admin()?,
                    cirun: clients.cirun(),
                    installation,
                };
                let granted = granted_at(repo, name, today);
                let plan =
                    runtime.block_on(switch.reconcile(&granted, deactivate_ungranted, limit))?;
                Ok((done, Some(plan)))
            });
        match result {
            Ok((done, switch)) => {
                report_done(&progress, name, kind, &done);
                if let Some(plan) = switch {
                    report_switch(&progress, name, &plan);
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                progress.log(format!("{name} ({kind}): failed: {error}"));
                state.failed(name, error, now);
                continue;
            }
        }
        state.recovered(name);
    }

    // Configuration pull requests: only when some grant asks for one, or one must be undone.
    let name = providers::feedstock_config::NAME;
    progress.start(name);
    if !state.found {
        recover_sent_configuration(dir, repo, today, state, &progress);
    }
    let config = clients
        .github()
        .map(|client| FeedstockConfig::new(client, repo, today, state.feedstock_config.clone()));
    match config {
        Ok(config) if config.is_idle() => state.recovered(name),
        // No token, and nothing that needs one.
        Err(_)
            if state.feedstock_config.is_empty()
                && gatehouse_core::desired::feedstock_config_state(repo, today).is_empty() =>
        {
            state.recovered(name)
        }
        Err(e) => {
            let error = format!("{e:#}");
            progress.log(format!("{name}: failed: {error}"));
            state.failed(name, error, now);
        }
        Ok(config) => {
            let result = runtime.block_on(providers::reconcile_config(repo, &config, limit));
            for note in config.take_notes() {
                progress.log(note);
            }
            // What succeeded is kept even when another change failed.
            state.feedstock_config = config.configured();
            match result {
                Ok(done) => {
                    report_done(&progress, name, name, &done);
                    state.recovered(name);
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    progress.log(format!("{name}: failed: {error}"));
                    state.failed(name, error, now);
                }
            }
        }
    }
    progress.finish();

    let failed = !state.failing.is_empty();
    if let Err(e) = runtime.block_on(report(state, &clients, now)) {
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

/// The app installation of a Cirun provider that names one (Cirun's own).
fn cirun_installation(provider: &gatehouse_core::model::ProviderSettings) -> Option<u64> {
    match provider.kind.value {
        gatehouse_core::model::ProviderKind::Cirun => {
            provider.installation_id.as_ref().map(|i| i.value)
        }
        _ => None,
    }
}

/// `owner/name` of every repository holding a grant of provider `name`'s resources.
pub(crate) fn granted_at(repo: &Repo, name: &str, today: Date) -> BTreeSet<String> {
    gatehouse_core::desired::desired_state(repo, today)
        .get(name)
        .into_iter()
        .flat_map(|a| a.values().flatten().cloned())
        .collect()
}

fn report_switch(progress: &Progress, name: &str, plan: &providers::cirun_app::SwitchPlan) {
    for r in &plan.activate {
        progress.log(format!(
            "{name}: Cirun switched on at {r} (set_repo, app installation)"
        ));
    }
    for r in &plan.deactivate {
        progress.log(format!(
            "{name}: Cirun switched off at {r}, which holds no grant (set_repo, app installation)"
        ));
    }
    for r in &plan.ungranted {
        progress.log(format!(
            "{name}: warning: Cirun is installed on {r}, which holds no grant; \
             --deactivate-ungranted switches it off"
        ));
    }
}

fn report_done(progress: &Progress, name: &str, kind: &str, done: &providers::Reconciled) {
    if done.rewritten {
        progress.log(format!(
            "{name} ({kind}): rewritten (it differed from the ledger in more than who is in)"
        ));
    } else if done.changes.is_empty() {
        progress.log(format!("{name} ({kind}): up to date"));
    } else {
        for c in &done.changes {
            progress.log(c.to_string());
        }
        progress.log(format!(
            "{name} ({kind}): {} change(s) made",
            done.changes.len()
        ));
    }
}

/// A progress bar on a terminal; plain log lines anywhere else (CI, a pipe, a file), so logs
/// stay readable.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(steps: u64) -> Progress {
        use std::io::IsTerminal;
        let bar =
            (std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()).then(|| {
                let bar = indicatif::ProgressBar::new(steps);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
        Progress { bar }
    }

    /// Provider `name` is next.
    fn start(&self, name: &str) {
        if let Some(bar) = &self.bar {
            if bar.position() > 0 || !bar.message().is_empty() {
                bar.inc(1);
            }
            bar.set_message(name.to_string());
        }
    }

    fn log(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Records the repositories whose configuration pull request a revocation must undo.
fn remember_config_removals(repo: &Repo, changes: &[LedgerChange], state: &mut State) {
    let Some(settings) = &repo.settings else {
        return;
    };
    for change in changes {
        let LedgerChange::Revoke {
            project, resource, ..
        } = change
        else {
            continue;
        };
        let sent = repo
            .grant_file(project)
            .into_iter()
            .flat_map(|f| f.value.grants.iter())
            .any(|g| g.resource.as_str() == resource && g.send_pr);
        if sent {
            state
                .feedstock_config
                .entry(resource.clone())
                .or_default()
                .insert(settings.value.repository_of(project));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger on disk and in git

/// Writes the new grant files (each atomically) and deletes the consumed requests. Each grant
/// file is written where it was read (`apply_changes` keeps the loaded path), never at a path
/// rebuilt from the project's name.
fn write_ledger(
    dir: &Path,
    repo: &Repo,
    changes: &[LedgerChange],
    consumed: &[String],
) -> anyhow::Result<()> {
    // A run killed between writing a temporary file and renaming it leaves the temporary file
    // (`.tmpXXXXXX`); it must not be committed with the ledger.
    for folder in ["grants", "requests"] {
        let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(".tmp") && entry.path().is_file() {
                remove(&entry.path())?;
            }
        }
    }
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

/// The title of the one issue that lists the merged requests `apply` holds back.
pub const HELD_TITLE: &str = "gatehouse: merged requests held back";

/// Keeps one open issue in the access repository listing the requests held back (not
/// approved, or rejected by `check`), edited when the list changes and closed when it is
/// empty. Without GITHUB_REPOSITORY or a token there is nowhere to report, and the log says it.
fn report_held(held: &[super::plan::Skipped]) -> anyhow::Result<()> {
    let access = std::env::var("GITHUB_REPOSITORY").unwrap_or_default();
    if access.trim().is_empty() || providers::client_from_env(Service::GitHub).is_err() {
        if !held.is_empty() {
            eprintln!(
                "note: {} request(s) held back; with GITHUB_REPOSITORY and GITHUB_TOKEN set, \
                 apply reports them in one issue",
                held.len()
            );
        }
        return Ok(());
    }
    let client = providers::client_from_env(Service::GitHub)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let open = find_open_issue(&client, &access, HELD_TITLE).await?;
        let (owner, name) = providers::split_repository(&access)?;
        if held.is_empty() {
            if let Some(n) = open {
                let n = n.to_string();
                let _: IgnoredAny = client
                    .mutate(
                        Method::PATCH,
                        &["repos", owner, name, "issues", &n],
                        Some(&serde_json::json!({
                            "body": "Every merged request was applied; gatehouse closed this issue.\n",
                            "state": "closed",
                        })),
                    )
                    .await?;
            }
            return Ok(());
        }
        let mut body = String::from(
            "`gatehouse apply` holds these requests back: they stay in `requests/`, nothing is \
             granted for them, and this issue is edited on every run until the list is empty.\n\n\
             | request | why |\n| --- | --- |\n",
        );
        for s in held {
            body.push_str(&format!(
                "| `{}` | {} |\n",
                s.request,
                s.why.replace('|', "\\|").replace('\n', " ")
            ));
        }
        match open {
            None => {
                let _: IgnoredAny = client
                    .mutate(
                        Method::POST,
                        &["repos", owner, name, "issues"],
                        Some(&serde_json::json!({ "title": HELD_TITLE, "body": body })),
                    )
                    .await?;
            }
            Some(n) => {
                #[derive(Deserialize)]
                struct Issue {
                    body: Option<String>,
                }
                let n = n.to_string();
                let path = ["repos", owner, name, "issues", &n];
                let now: Option<Issue> = client.get(&path).await?;
                if now.and_then(|i| i.body).as_deref() != Some(body.as_str()) {
                    let _: IgnoredAny = client
                        .mutate(
                            Method::PATCH,
                            &path,
                            Some(&serde_json::json!({ "body": body })),
                        )
                        .await?;
                }
            }
        }
        anyhow::Ok(())
    })
}

/// `expire` tells what ends within two weeks ([`expiring_soon`]), so that it is no surprise.
fn warn_expiring_soon(repo: &Repo, today: Date) {
    for (project, resource, expires) in expiring_soon(repo, today) {
        eprintln!("note: {project}: {resource} expires on {expires}; a `renew` request keeps it");
    }
}

/// How long before `expires` a project is told.
const NOTICE_DAYS: i64 = 14;

/// A grant that ends within [`NOTICE_DAYS`]: (project, resource, expires).
fn expiring_soon(repo: &Repo, today: Date) -> Vec<(String, String, Date)> {
    let soon = today.saturating_add(jiff::Span::new().days(NOTICE_DAYS));
    let mut out = Vec::new();
    for f in &repo.grants {
        for g in &f.value.grants {
            if let Some(e) = &g.expires
                && e.value.0 >= today
                && e.value.0 <= soon
            {
                out.push((
                    f.value.project.value.clone(),
                    g.resource.value.clone(),
                    e.value.0,
                ));
            }
        }
    }
    out
}

/// The title of the notice; also how an open one is found, so that it is never opened twice.
fn notice_title(resource: &str, expires: Date) -> String {
    format!("gatehouse: {resource} access expires on {expires}")
}

fn notice_body(project: &str, resource: &str, expires: Date, access_repo: Option<&str>) -> String {
    let where_ = access_repo.map_or("the access repository".to_string(), |r| {
        format!("[{r}](https://github.com/{r})")
    });
    format!(
        "This project's grant of `{resource}` ends on **{expires}**. After that day its jobs on          `{resource}` are no longer allowed, and a grant that sent a configuration pull request          is followed by one that removes it.\n\n         To keep it, open a pull request in {where_} that adds a request file, for example          `requests/{project}-{resource}-renew.yml`:\n\n         ```yaml\naction: renew\nprojects: [{project}]\nresources: [{resource}]\n         reason: why the project still needs it\n```\n\n         Once it is approved and merged, the grant runs until the new date (at most the          resource's `max_duration`). If the project no longer needs it, nothing needs doing;          close this issue. Opened by gatehouse, once.\n"
    )
}

/// Opens one issue on the repository of each project whose grant ends within two weeks
/// (never a second: one already open with the same title is found first). `Ok(false)` when
/// some could not be opened; the next run tries them again.
fn notify_expiring(
    dir: &Path,
    repo: &Repo,
    today: Date,
    state: &mut State,
) -> anyhow::Result<bool> {
    let settings = &repo.settings.as_ref().context("no gatehouse.yml")?.value;
    let soon = expiring_soon(repo, today);
    let keys: BTreeSet<String> = soon
        .iter()
        .map(|(p, r, e)| format!("{p}/{r}/{e}"))
        .collect();
    // Forget notices about grants that were revoked or have ended; those about renewed grants
    // are kept until [`close_renewed_notices`] has closed them.
    state
        .notified
        .retain(|k| keys.contains(k) || renewal(repo, k).is_some());
    let pending: Vec<_> = soon
        .into_iter()
        .filter(|(p, r, e)| !state.notified.contains(&format!("{p}/{r}/{e}")))
        .collect();
    if pending.is_empty() {
        state.save(dir)?;
        return Ok(true);
    }
    let client = match providers::client_from_env(Service::GitHub) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warning: {} expiry notice(s) not sent: {e:#}",
                pending.len()
            );
            return Ok(false);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let access_repo = std::env::var("GITHUB_REPOSITORY").ok();
    let mut ok = true;
    for (project, resource, expires) in pending {
        let full = settings.repository_of(&project);
        let title = notice_title(&resource, expires);
        let body = notice_body(&project, &resource, expires, access_repo.as_deref());
        match runtime.block_on(open_issue_once(&client, &full, &title, &body)) {
            Ok(Some(n)) => eprintln!("{full}: told of the expiry of {resource} (issue #{n})"),
            Ok(None) => eprintln!("{full}: already told of the expiry of {resource}"),
            Err(e) => {
                eprintln!("warning: {full}: could not tell of the expiry of {resource}: {e:#}");
                ok = false;
                continue;
            }
        }
        state
            .notified
            .insert(format!("{project}/{resource}/{expires}"));
        // Saved after each one: a run stopped half way does not tell anyone twice.
        state.save(dir)?;
    }
    Ok(ok)
}

/// The notice recorded as `project/resource/expires`, when its grant has since been renewed:
/// (project, resource, the old end, the new end or `None` for no end).
fn renewal(repo: &Repo, key: &str) -> Option<(String, String, Date, Option<Date>)> {
    let mut parts = key.rsplitn(3, '/');
    let old: Date = parts.next()?.parse().ok()?;
    let resource = parts.next()?;
    let project = parts.next()?;
    let grant = repo
        .grants
        .iter()
        .filter(|f| f.value.project.value == project)
        .flat_map(|f| &f.value.grants)
        .find(|g| g.resource.value == resource)?;
    let new = grant.expires.as_ref().map(|e| e.value.0);
    match new {
        Some(day) if day <= old => None,
        _ => Some((project.to_string(), resource.to_string(), old, new)),
    }
}

/// Closes the expiry notices of grants renewed since they were opened, each with a comment
/// saying until when the grant now runs, so that a project is not left with an issue warning
/// of an end that no longer comes. `Ok(false)` when some could not be closed; they stay in the
/// state and the next run tries again.
fn close_renewed_notices(dir: &Path, repo: &Repo, state: &mut State) -> anyhow::Result<bool> {
    let renewed: Vec<_> = state
        .notified
        .iter()
        .filter_map(|k| renewal(repo, k).map(|r| (k.clone(), r)))
        .collect();
    if renewed.is_empty() {
        return Ok(true);
    }
    let settings = &repo.settings.as_ref().context("no gatehouse.yml")?.value;
    let client = match providers::client_from_env(Service::GitHub) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warning: {} notice(s) of renewed grants not closed: {e:#}",
                renewed.len()
            );
            return Ok(false);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut ok = true;
    for (key, (project, resource, old, new)) in renewed {
        let full = settings.repository_of(&project);
        let until = new.map_or("with no end date".to_string(), |d| format!("until {d}"));
        let comment = format!(
            "The grant of `{resource}` was renewed {until}, so it no longer ends on {old}. \
             Closed by gatehouse."
        );
        let title = notice_title(&resource, old);
        match runtime.block_on(close_issue(&client, &full, &title, &comment)) {
            Ok(Some(n)) => eprintln!(
                "{full}: closed the expiry notice of {resource} (issue #{n}): renewed {until}"
            ),
            Ok(None) => eprintln!("{full}: the expiry notice of {resource} is no longer open"),
            Err(e) => {
                eprintln!(
                    "warning: {full}: could not close the expiry notice of {resource}: {e:#}"
                );
                ok = false;
                continue;
            }
        }
        state.notified.remove(&key);
        state.save(dir)?;
    }
    Ok(ok)
}

/// Comments on the open issue `title` of `full` and closes it; its number, or `None` when no
/// open issue has that title (closed by hand, say). The comment is not repeated when a run
/// that left it failed to close the issue.
async fn close_issue(
    client: &Client,
    full: &str,
    title: &str,
    comment: &str,
) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Comment {
        body: Option<String>,
    }
    let Some(issue) = find_open_issue(client, full, title).await? else {
        return Ok(None);
    };
    let (owner, name) = providers::split_repository(full)?;
    let number = issue.to_string();
    let comments = ["repos", owner, name, "issues", &number, "comments"];
    let said: Vec<Comment> = client.get_all(&comments, None).await?.unwrap_or_default();
    if !said.iter().any(|c| c.body.as_deref() == Some(comment)) {
        let _: serde::de::IgnoredAny = client
            .mutate(
                Method::POST,
                &comments,
                Some(&serde_json::json!({ "body": comment })),
            )
            .await?;
    }
    let _: serde::de::IgnoredAny = client
        .mutate(
            Method::PATCH,
            &["repos", owner, name, "issues", &number],
            Some(&serde_json::json!({ "state": "closed", "state_reason": "completed" })),
        )
        .await?;
    Ok(Some(issue))
}

/// The number of the open issue (or pull request) of `full` titled `title`, if there is one.
async fn find_open_issue(client: &Client, full: &str, title: &str) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Issue {
        number: u64,
        title: String,
    }
    let (owner, name) = providers::split_repository(full)?;
    // The listing's default is the open issues (pull requests included).
    let open: Vec<Issue> = client
        .get_all(&["repos", owner, name, "issues"], None)
        .await?
        .with_context(|| format!("the repository {full} does not exist on GitHub"))?;
    Ok(open
        .into_iter()
        .find(|i| i.title == title)
        .map(|i| i.number))
}

/// Opens issue `title` on `full` unless an open one has that title; its number when opened.
async fn open_issue_once(
    client: &Client,
    full: &str,
    title: &str,
    body: &str,
) -> anyhow::Result<Option<u64>> {
    if find_open_issue(client, full, title).await?.is_some() {
        return Ok(None);
    }
    let (owner, name) = providers::split_repository(full)?;
    #[derive(Deserialize)]
    struct Created {
        number: u64,
    }
    let created: Created = client
        .mutate(
            Method::POST,
            &["repos", owner, name, "issues"],
            Some(&serde_json::json!({ "title": title, "body": body })),
        )
        .await?;
    Ok(Some(created.number))
}

// ---------------------------------------------------------------------------------------------
// Failures across runs

/// Without a state file (a CI cache lost, a new checkout) `apply` does not know which
/// configuration pull requests it sent. The ledger's history does: every project whose grant
/// once said `send_pr` and no longer holds one is counted as sent, so that the pull request
/// removing the label goes out (when the project's configuration still has it; otherwise
/// nothing is sent). Grants that still want one are left out: adding is checked anyway.
fn recover_sent_configuration(
    dir: &Path,
    repo: &Repo,
    today: Date,
    state: &mut State,
    progress: &Progress,
) {
    let Some(settings) = &repo.settings else {
        return;
    };
    let ever = match gatehouse_history::ever_sent_configuration(dir) {
        Ok(ever) => ever,
        Err(e) => {
            progress.log(format!(
                "warning: no {STATE_FILE} and the ledger's history cannot be read ({e:#}): \
                 configuration pull requests of grants revoked earlier are not checked"
            ));
            return;
        }
    };
    let desired = gatehouse_core::desired::feedstock_config_state(repo, today);
    let mut recovered = 0;
    for (resource, projects) in ever {
        for project in projects {
            let full = settings.value.repository_of(&project);
            if desired.get(&resource).is_some_and(|r| r.contains(&full)) {
                continue;
            }
            recovered += usize::from(
                state
                    .feedstock_config
                    .entry(resource.clone())
                    .or_default()
                    .insert(full),
            );
        }
    }
    if recovered > 0 {
        progress.log(format!(
            "no {STATE_FILE}: {recovered} configuration pull request(s) of revoked grants found \
             in the ledger's history are checked again"
        ));
    }
}

/// What earlier `apply` runs recorded sending as configuration pull requests (`send_pr`):
/// resource -> repositories. Empty when nothing was recorded.
pub fn sent_configuration(dir: &Path) -> providers::Access {
    State::load(dir).feedstock_config
}

/// What outlives a run: which providers are failing, since when, and the issue about them.
/// Not part of the ledger, so it is kept out of git.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    failing: BTreeMap<String, Failure>,
    /// The open issue that reports the failures, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issue: Option<u64>,
    /// Resource -> repositories that were sent a configuration pull request (`send_pr`), so
    /// that the one that removes it is sent when the grant ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    feedstock_config: providers::Access,
    /// `project/resource/expires` of the expiry notices already opened.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    notified: BTreeSet<String>,
    /// Whether this was read from a state file (rather than started afresh).
    #[serde(skip)]
    found: bool,
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
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(state) => State {
                    found: true,
                    ..state
                },
                Err(e) => {
                    eprintln!(
                        "warning: ignoring {} ({e}); starting afresh",
                        path.display()
                    );
                    State::default()
                }
            },
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
        if p.kind.value == gatehouse_core::model::ProviderKind::GithubApp {
            continue; // checked below, with its own token
        }
        for service in providers::services_for(p) {
            match needed.iter_mut().find(|(s, _)| *s == service) {
                Some((_, names)) => names.push(name),
                None => needed.push((service, vec![name])),
            }
        }
    }
    // ... and so is Cirun's own installation, when a Cirun provider names it.
    let apps: Vec<&str> = settings
        .providers
        .iter()
        .filter(|(_, p)| {
            p.kind.value == gatehouse_core::model::ProviderKind::GithubApp
                || (p.kind.value == gatehouse_core::model::ProviderKind::Cirun
                    && p.installation_id.is_some())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if needed.is_empty() && apps.is_empty() {
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
                Ok(client) => probe(&runtime, &client, &settings.org.value, var, &used_by),
            },
        };
        all_ok &= verdict.starts_with("ok");
        println!("{verdict}");
    }
    // GitHub App installations are changed with an organisation owner's token.
    if !apps.is_empty() {
        let var = providers::ADMIN_TOKEN_VAR;
        let used_by = format!("used by {}", apps.join(", "));
        let verdict = match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            None => format!(
                "missing   {var} (GitHub, {used_by}): set it to a user token of an organisation owner (an App token cannot change another App's installation); until then GITHUB_TOKEN is used"
            ),
            Some(_) => match providers::admin_client_from_env() {
                Err(e) => format!("error     {var} (GitHub, {used_by}): {e:#}"),
                Ok(client) => probe(&runtime, &client, &settings.org.value, var, &used_by),
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
fn probe(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    org: &str,
    var: &str,
    used_by: &str,
) -> String {
    let service = client.service();
    let path: &[&str] = match service {
        Service::GitHub => &["rate_limit"],
        Service::Cirun => &["access-control"],
    };
    let answer = match service {
        Service::GitHub => runtime.block_on(client.get::<IgnoredAny>(path)),
        // As cirun-py's `get_access_control` asks: the organisation in a JSON body.
        Service::Cirun => runtime
            .block_on(client.get_with_body::<IgnoredAny>(path, &serde_json::json!({ "org": org }))),
    };
    match answer {
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
