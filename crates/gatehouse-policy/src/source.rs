//! What the decision engine reads from the access repository, and nothing else: the
//! organisation, each resource (first definition) with its routing labels and who may use it,
//! each grant with what it allows (a grant's `forks` resolved against its resource's default,
//! its user list resolved to account ids), and the account ids of the terms of service.
//!
//! [`compile`](crate::compile) reads a repository through it, and a signed policy snapshot
//! (the gate's, for runners that cannot reach the guard) carries it, so the two compile the
//! same policy. It is plain data, serialisable, with no YAML to parse.

use gatehouse_core::Repo;
use gatehouse_core::model::{ProviderSettings, Quota, Role};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::job::Permission;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySource {
    /// As written in `gatehouse.yml`.
    pub org: String,
    pub repo_suffix: String,
    /// The first definition of each resource, in catalogue order.
    pub resources: Vec<ResourceSource>,
    /// In ledger order.
    pub grants: Vec<GrantSource>,
    /// Account ids of everyone who accepted the terms of service.
    pub tos: Vec<i64>,
    /// Account ids of the bots of `gatehouse.yml` (never maintainers). Not in a runner's
    /// snapshot (its format is unchanged): offline, the gate does not know them, and the
    /// guard's webhook path judges the job again.
    #[serde(skip)]
    pub bots: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSource {
    pub name: String,
    /// `runs-on` labels and label patterns, as written.
    pub labels: Vec<String>,
    /// The roles that may trigger jobs.
    pub roles: Vec<Permission>,
    pub require_tos: bool,
    pub project_minutes_per_month: Option<u64>,
    pub minutes_per_month: Option<u64>,
    /// The runner group that serves it, when its provider is a `runner-group`.
    pub runner_group: Option<String>,
    /// `bots: trusted`. Not in a runner's snapshot (its format is unchanged): offline, the
    /// gate trusts no bot.
    #[serde(skip)]
    pub bots_trusted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSource {
    pub project: String,
    pub resource: String,
    pub pull_request: bool,
    /// Whether forks' pull requests may use it (the grant's `forks`, else its resource's
    /// default, else yes).
    pub forks: bool,
    #[serde(with = "day")]
    pub granted: Date,
    #[serde(with = "maybe_day")]
    pub expires: Option<Date>,
    /// The account ids of its user list, when it narrows who may trigger jobs (entries nothing
    /// resolves are left out: they match nobody).
    pub users: Option<Vec<i64>>,
    /// The teams its user list names too (Cirun's `teams`): their members are let in when
    /// whoever decides knows who they are (the snapshot does not carry team members, so
    /// offline a person not listed by name is refused for want of the fact).
    pub teams: Vec<String>,
    pub request: Option<String>,
}

/// A day as (year, month, day) numbers: a snapshot is read once per job, and numbers read
/// faster than dates written out.
mod day {
    use jiff::civil::Date;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        (d.year(), d.month(), d.day()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let (y, m, day) = <(i16, i8, i8)>::deserialize(d)?;
        Date::new(y, m, day).map_err(serde::de::Error::custom)
    }
}

mod maybe_day {
    use jiff::civil::Date;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| (d.year(), d.month(), d.day())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<(i16, i8, i8)>::deserialize(d)?
            .map(|(y, m, day)| Date::new(y, m, day).map_err(serde::de::Error::custom))
            .transpose()
    }
}

fn permission(role: Role) -> Permission {
    match role {
        Role::Admin => Permission::Admin,
        Role::Maintain => Permission::Maintain,
        Role::Write => Permission::Write,
        Role::Triage => Permission::Triage,
        Role::Read => Permission::Read,
    }
}

impl PolicySource {
    /// What the decision engine reads from `repo`: the first definition of a resource counts,
    /// grants of unknown resources are kept (and grant nothing), files that failed to load are
    /// absent.
    pub fn from_repo(repo: &Repo) -> PolicySource {
        let (org, repo_suffix) = repo.settings.as_ref().map_or_else(
            || (String::new(), String::new()),
            |s| (s.value.org.value.clone(), s.value.repo_suffix.clone()),
        );
        let group_of =
            |provider: &str| match repo.settings.as_ref()?.value.providers.get(provider)? {
                ProviderSettings::RunnerGroup(p) => Some(p.group.value.clone()),
                _ => None,
            };
        let mut resources: Vec<ResourceSource> = Vec::with_capacity(repo.resources.len());
        for loaded in &repo.resources {
            let r = &loaded.value;
            if resources.iter().any(|s| s.name == r.name.value) {
                continue; // a duplicate definition; `check` reports it, the first one counts
            }
            let quota = r.quota.clone().unwrap_or(Quota::default());
            let mut roles: Vec<Permission> = r
                .users
                .roles
                .iter()
                .map(|role| permission(role.value))
                .collect();
            roles.dedup();
            resources.push(ResourceSource {
                name: r.name.value.clone(),
                labels: r.labels.iter().map(|l| l.value.clone()).collect(),
                roles,
                require_tos: r.users.require_tos,
                project_minutes_per_month: quota.project_minutes_per_month,
                minutes_per_month: quota.minutes_per_month,
                runner_group: group_of(r.provider.as_str()),
                bots_trusted: r.bots.is_some(),
            });
        }
        let grants = repo
            .grants
            .iter()
            .flat_map(|file| {
                file.value.grants.iter().map(move |g| GrantSource {
                    project: file.value.project.value.clone(),
                    resource: g.resource.value.clone(),
                    pull_request: g.pull_request,
                    // The first definition of the resource, as `resources` holds.
                    forks: repo
                        .resource(g.resource.as_str())
                        .is_none_or(|r| g.allows_forks(r)),
                    granted: g.granted.value.0,
                    expires: g.expires.as_ref().map(|d| d.value.0),
                    users: g
                        .users
                        .as_ref()
                        .map(|u| u.users.iter().filter_map(|e| repo.account_of(e)).collect()),
                    teams: g
                        .users
                        .iter()
                        .flat_map(|u| u.teams.iter())
                        .map(|t| t.value.clone())
                        .collect(),
                    request: g.request.as_ref().map(|r| r.value.clone()),
                })
            })
            .collect();
        let tos = repo
            .tos
            .iter()
            .flat_map(|t| t.value.iter())
            .map(|e| e.id.value.0)
            .collect();
        let bots = repo
            .settings
            .iter()
            .flat_map(|s| s.value.bots.iter())
            .filter_map(|b| b.value.id())
            .collect();
        PolicySource {
            org,
            repo_suffix,
            resources,
            grants,
            tos,
            bots,
        }
    }
}
