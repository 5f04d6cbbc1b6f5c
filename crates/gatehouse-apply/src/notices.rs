//! Expiry notices: `expire` opens one issue on each project whose grant ends within two weeks,
//! and `apply` closes it again when the grant is renewed. What was opened is remembered in the
//! state file ([`crate::failures`]) and found on GitHub by its title when the file is lost.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_github::Service;
use gatehouse_providers as providers;
use jiff::civil::Date;

use crate::failures::State;
use crate::issues::{close_issue, open_issue_once};

/// `expire` tells what ends within two weeks ([`expiring_soon`]), so that it is no surprise.
pub(crate) fn warn_expiring_soon(repo: &Repo, today: Date) {
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
pub(crate) fn notify_expiring(
    dir: &Path,
    repo: &Repo,
    today: Date,
    state: &mut State,
    rt: &tokio::runtime::Runtime,
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
    let access_repo = std::env::var("GITHUB_REPOSITORY").ok();
    let mut ok = true;
    for (project, resource, expires) in pending {
        let full = settings.repository_of(&project);
        let title = notice_title(&resource, expires);
        let body = notice_body(&project, &resource, expires, access_repo.as_deref());
        match rt.block_on(open_issue_once(&client, &full, &title, &body)) {
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
pub(crate) fn close_renewed_notices(
    dir: &Path,
    repo: &Repo,
    state: &mut State,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<bool> {
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
    let mut ok = true;
    for (key, (project, resource, old, new)) in renewed {
        let full = settings.repository_of(&project);
        let until = new.map_or("with no end date".to_string(), |d| format!("until {d}"));
        let comment = format!(
            "The grant of `{resource}` was renewed {until}, so it no longer ends on {old}. \
             Closed by gatehouse."
        );
        let title = notice_title(&resource, old);
        match rt.block_on(close_issue(&client, &full, &title, &comment)) {
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
