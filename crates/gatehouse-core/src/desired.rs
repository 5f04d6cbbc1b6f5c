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

/// The most machines of one GitHub-hosted larger runner that provider `provider` (a runner
/// group) should let GitHub start at once, from the ledger's caps: `apply` sets it as the
/// runner's `maximum_runners`.
///
/// A larger runner's label is its name (GitHub gives it no other), so the runner serves the
/// provider's resources that list its name among their labels (compared ignoring case, as
/// GitHub compares labels). Their jobs all land on it, so the caps add up: the sum of those
/// resources' `quota.concurrency`, no more than the provider's `max_concurrency`. A resource
/// without a cap leaves only the provider's. `None`: gatehouse has no cap for the runner (no
/// resource names it, or nothing caps them), and `apply` leaves its limit alone.
pub fn runner_limit(repo: &Repo, provider: &str, runner: &str) -> Option<RunnerLimit> {
    let serving: Vec<&crate::model::Resource> = repo
        .resources
        .iter()
        .map(|r| &r.value)
        .filter(|r| {
            r.provider.value == provider
                && r.labels
                    .iter()
                    .any(|l| l.value.eq_ignore_ascii_case(runner))
        })
        .collect();
    if serving.is_empty() {
        return None;
    }
    let caps: Option<u32> = serving
        .iter()
        .map(|r| r.quota.as_ref()?.concurrency.as_ref().map(|c| c.value))
        .try_fold(0u32, |sum, cap| Some(sum.saturating_add(cap?)));
    let max_concurrency = repo
        .settings
        .as_ref()
        .and_then(|s| s.value.providers.get(provider))
        .and_then(|p| p.max_concurrency())
        .map(|c| c.value);
    let maximum = match (caps, max_concurrency) {
        (Some(c), Some(m)) => c.min(m),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => return None,
    };
    Some(RunnerLimit {
        maximum,
        resources: serving.iter().map(|r| r.name.value.clone()).collect(),
        by_max_concurrency: caps.is_none_or(|c| c > maximum),
    })
}

/// What [`runner_limit`] found for one larger runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerLimit {
    /// Its `maximum_runners`.
    pub maximum: u32,
    /// The resources it serves, by name.
    pub resources: Vec<String>,
    /// The provider's `max_concurrency` is what sets it (rather than the resources' caps).
    pub by_max_concurrency: bool,
}

/// [`runner_limit`] for every runner provider `provider`'s resources name (each of their
/// labels, lower-cased) that gatehouse has a cap for. Empty: `apply` has no limit to set there
/// and need not read the provider's larger runners.
pub fn runner_limits(repo: &Repo, provider: &str) -> BTreeMap<String, RunnerLimit> {
    repo.resources
        .iter()
        .filter(|r| r.value.provider.value == provider)
        .flat_map(|r| r.value.labels.iter())
        .map(|l| l.value.to_ascii_lowercase())
        .filter_map(|label| Some((label.clone(), runner_limit(repo, provider, &label)?)))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(max: &str, resources: &[(&str, &str)]) -> Repo {
        Repo::of_resources(
            &format!(
                "org: o\nreviewers: {{ teams: [core] }}\nproviders:\n  big: {{ kind: runner-group, group: big{max} }}\n  other: {{ kind: runner-group, group: other }}\n"
            ),
            resources,
        )
    }

    #[test]
    fn a_runner_s_limit_is_the_cap_of_the_resource_its_name_labels() {
        let r = repo(
            "",
            &[(
                "gpu",
                "provider: big\nlabels: [GPU-16core]\nquota: { concurrency: 4 }\n",
            )],
        );
        let limit = runner_limit(&r, "big", "gpu-16core").unwrap();
        assert_eq!((limit.maximum, limit.by_max_concurrency), (4, false));
        assert_eq!(limit.resources, ["gpu"]);
        // Another provider's runner of that name, or a runner no resource names: not ours.
        assert_eq!(runner_limit(&r, "other", "gpu-16core"), None);
        assert_eq!(runner_limit(&r, "big", "cpu-64core"), None);
    }

    #[test]
    fn shared_runners_add_their_caps_and_the_provider_s_bounds_them() {
        let two = [
            (
                "a",
                "provider: big\nlabels: [shared]\nquota: { concurrency: 4 }\n",
            ),
            (
                "b",
                "provider: big\nlabels: [shared]\nquota: { concurrency: 3 }\n",
            ),
        ];
        assert_eq!(
            runner_limit(&repo("", &two), "big", "shared")
                .unwrap()
                .maximum,
            7
        );
        let bounded = runner_limit(&repo(", max_concurrency: 5", &two), "big", "shared").unwrap();
        assert_eq!((bounded.maximum, bounded.by_max_concurrency), (5, true));
        // One of them uncapped: only the provider's cap holds, and without one, none.
        let open = [
            (
                "a",
                "provider: big\nlabels: [shared]\nquota: { concurrency: 4 }\n",
            ),
            ("b", "provider: big\nlabels: [shared]\n"),
        ];
        assert_eq!(runner_limit(&repo("", &open), "big", "shared"), None);
        assert!(runner_limits(&repo("", &open), "big").is_empty());
        let limit = runner_limit(&repo(", max_concurrency: 9", &open), "big", "shared").unwrap();
        assert_eq!((limit.maximum, limit.by_max_concurrency), (9, true));
        let both = repo(", max_concurrency: 9", &open);
        assert_eq!(
            runner_limits(&both, "big").keys().collect::<Vec<_>>(),
            ["shared"]
        );
    }
}
