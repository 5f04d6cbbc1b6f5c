//! An organisation's runner group whose selected repositories are the projects holding its
//! resources: the group is found by name (`GET /orgs/{org}/actions/runner-groups`), observed
//! with `GET .../runner-groups/{id}/repositories`, and set whole with one `PUT` of
//! `selected_repository_ids`.
//!
//! The group's GitHub-hosted larger runners have a concurrency limit of their own,
//! `maximum_runners`: where the ledger caps the resources a runner serves
//! ([`gatehouse_core::desired::runner_limit`]), `observe` reads the runners (`GET
//! /orgs/{org}/actions/hosted-runners`, only then) and `apply` sets each limit that differs
//! with one `PATCH /orgs/{org}/actions/hosted-runners/{id}`. A runner gatehouse has no cap for
//! is left alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use gatehouse_core::desired::{ProviderChange, RunnerLimit};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Access, LimitChange, Listed, Observed, Provider, all_done, repository_id};
use crate::github::{Client, Method, hosted_runners};

pub struct RunnerGroup {
    client: Arc<Client>,
    org: String,
    group: String,
    desired: Access,
    /// The provider's name in gatehouse.yml.
    name: String,
    /// Lower-cased runner name (a larger runner's label) -> the limit the ledger's caps give
    /// it. Empty: nothing to set, and the larger runners are not read.
    limits: BTreeMap<String, RunnerLimit>,
    /// Found by `observe`: the group's id, and the ids of the repositories it holds.
    seen: Mutex<Option<(u64, HashMap<String, u64>)>>,
}

/// A runner group as `GET /orgs/{org}/actions/runner-groups` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
    /// `all`, `private` or `selected` (the only one gatehouse can manage).
    #[serde(default)]
    pub visibility: Option<String>,
    /// Whether public repositories may run jobs on it (GitHub's default is no).
    #[serde(default)]
    pub allows_public_repositories: bool,
}

/// Every runner group of `org`; an error when the organisation does not exist or the token
/// cannot see its runner groups.
pub async fn runner_groups(client: &Client, org: &str) -> anyhow::Result<Vec<Group>> {
    client
        .get_all(
            &["orgs", org, "actions", "runner-groups"],
            Some("runner_groups"),
        )
        .await?
        .with_context(|| {
            format!(
                "the organisation {org} does not exist or the token cannot see its runner groups"
            )
        })
}

/// The repositories (`owner/name`, as GitHub spells them) selected for runner group `group`.
pub async fn group_repositories(
    client: &Client,
    org: &str,
    group: &Group,
) -> anyhow::Result<Vec<String>> {
    Ok(listed(client, org, group)
        .await?
        .into_iter()
        .map(|r| r.full_name)
        .collect())
}

async fn listed(client: &Client, org: &str, group: &Group) -> anyhow::Result<Vec<Listed>> {
    let id = group.id.to_string();
    client
        .get_all(
            &["orgs", org, "actions", "runner-groups", &id, "repositories"],
            Some("repositories"),
        )
        .await?
        .with_context(|| format!("runner group `{}` vanished while being read", group.name))
}

impl RunnerGroup {
    pub fn new(client: Arc<Client>, org: &str, group: &str, desired: Access) -> Self {
        RunnerGroup {
            client,
            org: org.to_string(),
            group: group.to_string(),
            desired,
            name: group.to_string(),
            limits: BTreeMap::new(),
            seen: Mutex::new(None),
        }
    }

    /// The same provider, called `name` in gatehouse.yml, that sets the `maximum_runners` of
    /// its larger runners to `limits` (see [`gatehouse_core::desired::runner_limits`]).
    pub fn with_limits(mut self, name: &str, limits: BTreeMap<String, RunnerLimit>) -> Self {
        self.name = name.to_string();
        self.limits = limits;
        self
    }

    /// The group's larger runners whose `maximum_runners` differs from the ledger's caps.
    async fn limits_to_set(&self, group: u64) -> anyhow::Result<Vec<LimitChange>> {
        if self.limits.is_empty() {
            return Ok(Vec::new());
        }
        let org = self.org.as_str();
        let runners = hosted_runners::list(&self.client, org)
            .await
            .with_context(|| {
                format!("reading {org}'s GitHub-hosted runners to set their maximum_runners")
            })?
            .with_context(|| {
                format!(
                    "the token cannot see {org}'s GitHub-hosted runners, whose maximum_runners the \
                     ledger's caps set (it needs the `manage_runners:org` scope or an owner's \
                     rights)"
                )
            })?;
        Ok(runners
            .into_iter()
            .filter(|r| r.runner_group_id == Some(group))
            .filter_map(|r| {
                let limit = self.limits.get(&r.name.to_ascii_lowercase())?;
                (limit.maximum != r.maximum_runners).then(|| LimitChange {
                    provider: self.name.clone(),
                    runner: r.name,
                    id: r.id,
                    from: r.maximum_runners,
                    to: limit.maximum,
                    resources: limit.resources.clone(),
                    by_max_concurrency: limit.by_max_concurrency,
                })
            })
            .collect())
    }
}

impl Provider for RunnerGroup {
    fn desired(&self) -> &Access {
        &self.desired
    }

    async fn observe(&self) -> anyhow::Result<Observed> {
        let org = self.org.as_str();
        let group = runner_groups(&self.client, org)
            .await?
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(&self.group))
            .with_context(|| format!("{org} has no runner group named `{}`", self.group))?;
        if group.visibility.as_deref().is_some_and(|v| v != "selected") {
            bail!(
                "runner group `{}` is open to {} repositories; set it to selected repositories so that gatehouse can manage who uses it",
                self.group,
                group.visibility.as_deref().unwrap_or("")
            );
        }
        let listed = listed(&self.client, org, &group).await?;
        let ids = listed
            .iter()
            .map(|r| (r.full_name.to_ascii_lowercase(), r.id))
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((group.id, ids));
        let limits = self.limits_to_set(group.id).await?;
        let key = self.desired.keys().next().cloned().unwrap_or_default();
        let repos = listed.into_iter().map(|r| r.full_name).collect();
        Ok(Observed {
            access: Access::from([(key, repos)]),
            stale: false,
            limits,
        })
    }

    async fn set_limits(&self, limits: &[LimitChange]) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for l in limits {
            if let Err(e) = hosted_runners::set_maximum(&self.client, &self.org, l.id, l.to).await {
                failures.push(format!(
                    "GitHub-hosted runner `{}` (id {}): maximum_runners not set from {} to {}: {e:#}",
                    l.runner, l.id, l.from, l.to
                ));
            }
        }
        all_done(&failures, limits.len())
    }

    async fn apply(&self, _changes: &[ProviderChange]) -> anyhow::Result<()> {
        let (group, known) = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .context("the runner group was not observed before being changed")?;
        let mut selected = Vec::new();
        let mut missing = Vec::new();
        // Only repositories new to the group are looked up: calls grow with the changes.
        for repository in self.desired.values().flatten() {
            match known.get(&repository.to_ascii_lowercase()) {
                Some(id) => selected.push(*id),
                None => match repository_id(&self.client, repository).await {
                    Ok(id) => selected.push(id),
                    Err(e) => missing.push(format!("{e:#}")),
                },
            }
        }
        selected.sort_unstable();
        selected.dedup();
        let group = group.to_string();
        let path = [
            "orgs",
            &self.org,
            "actions",
            "runner-groups",
            &group,
            "repositories",
        ];
        let body = serde_json::json!({ "selected_repository_ids": selected });
        let _: IgnoredAny = self.client.mutate(Method::PUT, &path, Some(&body)).await?;
        if !missing.is_empty() {
            bail!("set the others, but left out: {}", missing.join("; "));
        }
        Ok(())
    }
}
