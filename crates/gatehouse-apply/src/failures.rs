//! Failures across runs, and what else outlives a run: `.gatehouse/state.json` (kept out of
//! git) records which providers are failing and since when, the one issue that reports them
//! after six hours, the configuration pull requests sent, and the expiry notices opened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_github::Method;
use gatehouse_providers::{self as providers, Clients};
use jiff::civil::Date;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::pipeline::Progress;

/// How long a provider may keep failing before `apply` opens an issue about it.
const REPORT_AFTER: Duration = Duration::from_secs(6 * 3600);
const STATE_DIR: &str = ".gatehouse";
const STATE_FILE: &str = ".gatehouse/state.json";

/// Without a state file (a CI cache lost, a new checkout) `apply` does not know which
/// configuration pull requests it sent. The ledger's history does: every project whose grant
/// once said `send_pr` and no longer holds one is counted as sent, so that the pull request
/// removing the label goes out (when the project's configuration still has it; otherwise
/// nothing is sent). Grants that still want one are left out: adding is checked anyway.
pub(crate) fn recover_sent_configuration(
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
pub(crate) struct State {
    #[serde(default)]
    pub(crate) failing: BTreeMap<String, Failure>,
    /// The open issue that reports the failures, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issue: Option<u64>,
    /// Resource -> repositories that were sent a configuration pull request (`send_pr`), so
    /// that the one that removes it is sent when the grant ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) feedstock_config: providers::Access,
    /// `project/resource/expires` of the expiry notices already opened.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) notified: BTreeSet<String>,
    /// Whether this was read from a state file (rather than started afresh).
    #[serde(skip)]
    pub(crate) found: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Failure {
    /// Seconds since the epoch of the first failing run, and of the last.
    since: i64,
    last: i64,
    runs: u32,
    error: String,
}

impl State {
    pub(crate) fn load(dir: &Path) -> State {
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

    pub(crate) fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let ignore = dir.join(STATE_DIR).join(".gitignore");
        if !ignore.exists() {
            write_atomic(&ignore, b"*\n")?;
        }
        let json = serde_json::to_string_pretty(self)? + "\n";
        write_atomic(&dir.join(STATE_FILE), json.as_bytes())
    }

    pub(crate) fn failed(&mut self, provider: &str, error: String, now: i64) {
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

    pub(crate) fn recovered(&mut self, provider: &str) {
        self.failing.remove(provider);
    }
}

/// Seconds since the epoch; `GATEHOUSE_NOW` stands in for the clock in tests.
pub(crate) fn now() -> anyhow::Result<i64> {
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
pub(crate) async fn report(state: &mut State, clients: &Clients, now: i64) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
