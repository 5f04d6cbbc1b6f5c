//! Desired provider state: which repositories each provider must let in, derived from the
//! ledger alone. `plan` compares the state before and after the ledger changes; providers
//! compare it with what they observe.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::civil::Date;
use serde::Serialize;

use crate::model::{Grant, GrantFile};
use crate::repo::Repo;

/// Provider name -> resource -> repositories (`org/<project><suffix>`) holding an active grant.
pub type DesiredState = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Which of the ledger's grants a state counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counting {
    /// Those in force on the day ([`crate::model::Grant::is_active`]): what providers should
    /// hold.
    ActiveOn(Date),
    /// Those started by the day, expired or not: what providers may still hold when nobody
    /// has removed the expired ones yet.
    StartedBy(Date),
}

impl Counting {
    fn counts(self, g: &Grant) -> bool {
        match self {
            Counting::ActiveOn(day) => g.is_active(day),
            Counting::StartedBy(day) => !g.is_pending(day),
        }
    }
}

fn counted(repo: &Repo, counting: Counting) -> impl Iterator<Item = (&GrantFile, &Grant)> {
    repo.grants.iter().flat_map(move |f| {
        f.value
            .grants
            .iter()
            .filter(move |g| counting.counts(g))
            .map(move |g| (&f.value, g))
    })
}

/// What every provider should grant, as of `today` (expired grants grant nothing).
pub fn desired_state(repo: &Repo, today: Date) -> DesiredState {
    state_of(repo, Counting::ActiveOn(today))
}

/// Provider name -> resource -> repositories, counting the grants `counting` says.
pub fn state_of(repo: &Repo, counting: Counting) -> DesiredState {
    let mut out = DesiredState::new();
    let Some(settings) = &repo.settings else {
        return out;
    };
    for (file, g) in counted(repo, counting) {
        let Some(res) = repo.resource(&g.resource) else {
            continue;
        };
        out.entry(res.provider.value.clone())
            .or_default()
            .entry(res.name.value.clone())
            .or_default()
            .insert(settings.value.repository_of(&file.project));
    }
    out
}

/// The name under which configuration pull requests to the projects (`send_pr`) are planned
/// and reconciled. Not a provider of gatehouse.yml: every grant with `send_pr` uses it,
/// whichever provider serves the resource.
pub const FEEDSTOCK_CONFIG: &str = "feedstock-config";

/// Resource -> repositories whose active grant asked for a pull request that adds the
/// resource's label to their configuration (`send_pr`), as of `today`.
pub fn feedstock_config_state(repo: &Repo, today: Date) -> BTreeMap<String, BTreeSet<String>> {
    config_state_of(repo, Counting::ActiveOn(today))
}

/// [`feedstock_config_state`], counting the grants `counting` says.
pub fn config_state_of(repo: &Repo, counting: Counting) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Some(settings) = &repo.settings else {
        return out;
    };
    for (file, g) in counted(repo, counting) {
        if !g.send_pr || repo.resource(&g.resource).is_none() {
            continue;
        }
        out.entry(g.resource.value.clone())
            .or_default()
            .insert(settings.value.repository_of(&file.project));
    }
    out
}

/// One repository gaining or losing one resource at one provider.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProviderChange {
    pub provider: String,
    pub kind: &'static str,
    pub resource: String,
    pub repository: String,
    pub add: bool,
}

impl fmt::Display for ProviderChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == FEEDSTOCK_CONFIG {
            return write!(
                f,
                "{} {}: open a pull request that {} {}'s label {} the configuration of {}",
                if self.add { "+" } else { "-" },
                self.provider,
                if self.add { "adds" } else { "removes" },
                self.resource,
                if self.add { "to" } else { "from" },
                self.repository
            );
        }
        let what = match self.kind {
            "cirun" => "access policy",
            "github-app" => "app installation",
            "runner-group" => "runner group",
            _ => "access",
        };
        write!(
            f,
            "{} {}: {} {} {} the {what} of {}",
            if self.add { "+" } else { "-" },
            self.provider,
            if self.add { "add" } else { "remove" },
            self.repository,
            if self.add { "to" } else { "from" },
            self.resource
        )
    }
}

/// The changes that turn `before` into `after`, sorted.
pub fn diff(repo: &Repo, before: &DesiredState, after: &DesiredState) -> Vec<ProviderChange> {
    let kind = |provider: &str| {
        repo.settings
            .as_ref()
            .and_then(|s| s.value.providers.get(provider))
            .map_or(
                if provider == FEEDSTOCK_CONFIG {
                    FEEDSTOCK_CONFIG
                } else {
                    "unknown"
                },
                |p| p.kind().as_str(),
            )
    };
    let empty = BTreeMap::new();
    let none = BTreeSet::new();
    let providers: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut out = Vec::new();
    for provider in providers {
        let b = before.get(provider).unwrap_or(&empty);
        let a = after.get(provider).unwrap_or(&empty);
        let resources: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for resource in resources {
            let rb = b.get(resource).unwrap_or(&none);
            let ra = a.get(resource).unwrap_or(&none);
            for (set, other, add) in [(ra, rb, true), (rb, ra, false)] {
                for repository in set.difference(other) {
                    out.push(ProviderChange {
                        provider: provider.clone(),
                        kind: kind(provider),
                        resource: resource.clone(),
                        repository: repository.clone(),
                        add,
                    });
                }
            }
        }
    }
    out.sort();
    out
}
