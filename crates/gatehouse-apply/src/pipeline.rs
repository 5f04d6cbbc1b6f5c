//! `gatehouse apply` and `expire`: one pipeline.
//!
//! Plan the ledger changes (merged requests, or expiry), refuse a mass revocation, write the
//! grant files and commit them ([`crate::ledger_commit`]), then reconcile every provider from
//! the new ledger, then the configuration pull requests of `send_pr` grants. The ledger step is
//! done once: a rerun finds nothing left to commit and only retries the providers, whose
//! failures are remembered in `.gatehouse/state.json` (and, after six hours, reported in one
//! GitHub issue: [`crate::failures`]). The same file records which configuration pull requests
//! were sent (so that a revocation sends the reverse) and which expiry notices were opened
//! ([`crate::notices`]); both are also found on GitHub when the file is lost, so nothing is
//! sent twice. `expire` also opens one issue on each project whose grant ends within two
//! weeks.
//!
//! On a terminal the providers show as a progress bar; anywhere else (CI, a pipe) as plain
//! log lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::ledger::{LedgerChange, plan_expiry, plan_requests};
use gatehouse_core::repo::load_dir;
use gatehouse_core::{Repo, Severity};
use gatehouse_history::git;
use gatehouse_providers::{self as providers, Clients, FeedstockConfig, RemovalLimit};
use jiff::civil::Date;

use crate::failures::{State, now, recover_sent_configuration, report};
use crate::issues::report_held;
use crate::ledger_commit::{commit_message, write_ledger};
use crate::notices::{close_renewed_notices, notify_expiring, warn_expiring_soon};

/// Which of the two commands runs the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Merged requests into the ledger, then the providers.
    Apply,
    /// Grants past their expiry out of the ledger, then the providers; and notices of what
    /// ends soon.
    Expire,
}

/// What `apply` and `expire` are asked to do (the command line's flags).
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The access repository's top folder, a git clone.
    pub dir: PathBuf,
    /// Without it only the plan is shown.
    pub confirm: bool,
    pub allow_mass_revoke: bool,
    /// The share of active grants one run may revoke without `allow_mass_revoke`.
    pub max_revoke_share: f64,
    /// Switch Cirun off on installed repositories that hold no grant.
    pub deactivate_ungranted: bool,
}

/// `apply` or `expire`, as the module's documentation says.
pub fn run(
    args: &ApplyOptions,
    today: Date,
    mode: Mode,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
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
            // `crate::origins`); the rest stay in requests/ and are reported.
            let judged = crate::origins::judge_requests(dir, &repo, rt);
            let mut approved = repo.clone();
            approved
                .requests
                .retain(|r| !judged.held.iter().any(|(p, _)| *p == r.path));
            let requests = plan_requests(&approved, today, &judged.origins);
            let mut skipped = judged.held;
            skipped.extend(requests.skipped);
            skipped.sort();
            crate::plan::plan_from(
                &repo,
                today,
                requests.changes,
                requests.tos,
                requests.consumed,
                skipped,
            )
        }
        Mode::Expire => {
            warn_expiring_soon(&repo, today);
            crate::plan::plan_from(
                &repo,
                today,
                plan_expiry(&repo, today),
                vec![],
                vec![],
                vec![],
            )
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
        print!("{}", crate::plan::text(&plan));
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

    git::toplevel(dir)?;
    // Recorded before the ledger commit: a revoked grant's configuration pull request must be
    // undone even if this run is stopped right after the commit that forgets the grant.
    let mut state = State::load(dir);
    remember_config_removals(&repo, &plan.ledger, &mut state);
    state.save(dir)?;
    write_ledger(dir, &repo, &plan.ledger, &plan.tos, &plan.consumed)?;
    for (request, why) in plan.skipped.iter().map(|s| (&s.request, &s.why)) {
        eprintln!("skipped {request}: {why}");
    }
    let subject = match mode {
        Mode::Apply => "apply",
        Mode::Expire => "expire",
    };
    match git::commit(
        dir,
        &commit_message(subject, &plan.ledger, &plan.tos, &plan.consumed),
    )? {
        Some(sha) => eprintln!("ledger: committed {sha}"),
        None => eprintln!("ledger: up to date, nothing to commit"),
    }
    let mut held_reported = true;
    if mode == Mode::Apply
        && let Err(e) = report_held(&plan.skipped, rt)
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
        rt,
    )?;
    ok &= close_renewed_notices(dir, &repo, &mut state, rt)?;
    if mode == Mode::Expire {
        ok &= notify_expiring(dir, &repo, today, &mut state, rt)?;
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
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<bool> {
    let settings = &repo.settings.as_ref().context("no gatehouse.yml")?.value;
    let clients = Clients::from_env();
    let now = now()?;
    let progress = Progress::new(settings.providers.len() as u64 + 1);
    for (name, provider) in &settings.providers {
        let kind = provider.kind().as_str();
        progress.start(name);
        let result = providers::configure(repo, name, provider, today, &clients)
            .and_then(|p| rt.block_on(providers::reconcile(repo, name, &p, limit)))
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
                let plan = rt.block_on(switch.reconcile(&granted, deactivate_ungranted, limit))?;
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
            let result = rt.block_on(providers::reconcile_config(repo, &config, limit));
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
    if let Err(e) = rt.block_on(report(state, &clients, now)) {
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
    match provider {
        gatehouse_core::model::ProviderSettings::Cirun(cirun) => {
            cirun.installation_id.as_ref().map(|i| i.value)
        }
        _ => None,
    }
}

/// `owner/name` of every repository holding a grant of provider `name`'s resources.
pub fn granted_at(repo: &Repo, name: &str, today: Date) -> BTreeSet<String> {
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
    for l in &done.limits {
        progress.log(l.to_string());
    }
    if done.rewritten {
        progress.log(format!(
            "{name} ({kind}): rewritten (it differed from the ledger in more than who is in)"
        ));
    } else if done.changes.is_empty() && done.limits.is_empty() {
        progress.log(format!("{name} ({kind}): up to date"));
    } else if done.changes.is_empty() {
        progress.log(format!(
            "{name} ({kind}): {} limit(s) set",
            done.limits.len()
        ));
    } else {
        for c in &done.changes {
            progress.log(c.to_string());
        }
        progress.log(format!(
            "{name} ({kind}): {} change(s) made{}",
            done.changes.len(),
            match done.limits.len() {
                0 => String::new(),
                n => format!(", {n} limit(s) set"),
            }
        ));
    }
}

/// A progress bar on a terminal; plain log lines anywhere else (CI, a pipe, a file), so logs
/// stay readable.
pub(crate) struct Progress {
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

    pub(crate) fn log(&self, line: String) {
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
