//! The guard's role facts: who holds which role on each granted project's repository, one
//! collaborator list per repository, kept as every fact is ([`crate::fact_cache`]).
//!
//! They are fetched ahead of time, at start, on reload, periodically before they go stale, and
//! when a webhook (`member`, `membership`, `team`, `organization`, `repository`) says they
//! changed; a list GitHub says has not changed (its ETag) is only marked fetched again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gatehouse_github::collaborators::{Collaborator, Role};
use gatehouse_github::{Client, Conditional};
use gatehouse_policy::{Permission, Policy};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fact_cache::{Fact, FactCache, Fetch, Stored as StoredList, stored_entries};
use crate::store::{FactRow, FactTable, Store, Write, now_text, time_text};

/// Every repository's role facts, keyed by lower-cased `owner/name`.
pub type RoleFacts = FactCache<People>;

/// One repository's collaborator list as the guard holds it.
pub type RepoRoles = Fact<People>;

/// A repository's collaborators, and the ETag GitHub gave with them.
#[derive(Clone, Debug, Default)]
pub struct People {
    etag: Option<String>,
    /// Account id -> (login, role). Anyone absent has no role.
    people: HashMap<i64, (String, Permission)>,
}

impl RepoRoles {
    /// The role of the person with this account id: `None` for none.
    pub fn role_of(&self, id: i64) -> Option<Permission> {
        self.list.people.get(&id).map(|(_, role)| *role)
    }
}

/// A collaborator as stored (JSON in `role_facts.people`).
#[derive(Serialize, Deserialize)]
struct Stored {
    login: String,
    id: i64,
    role: Option<String>,
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

fn people_json(people: &[Collaborator]) -> String {
    let stored: Vec<Stored> = people
        .iter()
        .map(|c| Stored {
            login: c.login.clone(),
            id: c.id,
            role: c.role.map(|r| r.as_str().to_string()),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

fn people_map(
    people: impl IntoIterator<Item = (i64, String, Option<Role>)>,
) -> HashMap<i64, (String, Permission)> {
    people
        .into_iter()
        .filter_map(|(id, login, role)| Some((id, (login, permission(role?)))))
        .collect()
}

impl StoredList for People {
    const TABLE: FactTable = FactTable::Roles;

    fn from_row(row: &FactRow) -> People {
        let people: Vec<Stored> = stored_entries(row);
        People {
            etag: row.etag.clone(),
            people: people_map(
                people
                    .into_iter()
                    .map(|p| (p.id, p.login, p.role.as_deref().and_then(Role::parse))),
            ),
        }
    }
}

/// A repository's collaborators, asked of GitHub with the ETag of the list held.
struct Collaborators<'a> {
    github: &'a Client,
    store: &'a Store,
}

impl Fetch for Collaborators<'_> {
    type List = People;
    type Answer = Conditional<Vec<Collaborator>>;

    fn what(&self, key: &str) -> String {
        format!("the roles on {key}")
    }

    async fn ask(
        &self,
        key: &str,
        held: Option<&RepoRoles>,
    ) -> Result<Option<Self::Answer>, gatehouse_github::Error> {
        let etag = held
            .filter(|h| h.fetched_at.is_some())
            .and_then(|h| h.list.etag.clone());
        self.github.collaborators(key, etag.as_deref()).await
    }

    fn unknown(&self, key: &str) -> anyhow::Error {
        // Not a repository the token can see: nobody's role can be known there.
        anyhow::anyhow!("GitHub has no repository {key}, or the token may not see it")
    }

    async fn keep(
        &self,
        key: &str,
        answer: Self::Answer,
        started: Timestamp,
        held: Option<&RepoRoles>,
    ) -> anyhow::Result<People> {
        match answer {
            Conditional::NotModified => {
                let held = held.context("304 without a list held")?;
                // The stored list stays as it is: only its fetch time moves.
                self.store
                    .commit(vec![Write::RoleFactsFetched {
                        repository: key.to_string(),
                        fetched_at: time_text(started),
                        changed_at: now_text(),
                    }])
                    .await?;
                Ok(held.list.clone())
            }
            Conditional::Modified { value, etag } => {
                let people = People {
                    etag: etag.clone(),
                    people: people_map(value.iter().map(|c| (c.id, c.login.clone(), c.role))),
                };
                self.store
                    .commit(vec![Write::RoleFacts {
                        repository: key.to_string(),
                        people: people_json(&value),
                        etag,
                        fetched_at: time_text(started),
                        changed_at: now_text(),
                    }])
                    .await?;
                Ok(people)
            }
        }
    }
}

impl RoleFacts {
    /// The repository's list, fetched from GitHub unless it is fresh, waiting for a fetch
    /// already under way. Retries until `deadline`; an error says why it could not be had.
    pub async fn refresh(
        &self,
        github: &Client,
        store: &Store,
        repository: &str,
        ttl: Duration,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<RepoRoles>> {
        let fetch = Collaborators { github, store };
        self.obtain(&fetch, store, repository, ttl, deadline).await
    }

    /// The repositories (lower-cased) whose list names the person with this id.
    pub fn repositories_of(&self, id: i64) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, r)| r.list.people.contains_key(&id))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every list held, as a snapshot carries them. Lists never fetched, and lists a webhook
    /// said changed since their fetch, are left out: offline, their repositories' jobs are
    /// refused for want of the fact rather than decided on an old list.
    pub fn export(&self) -> Vec<gatehouse_gate::snapshot::RepoRoles> {
        let mut out: Vec<_> = self
            .read()
            .iter()
            .filter_map(|(repository, r)| {
                let fetched = r.fetched_at?;
                if r.invalidated_at.is_some_and(|i| i >= fetched) {
                    return None;
                }
                let mut people: Vec<(i64, String, Permission)> = r
                    .list
                    .people
                    .iter()
                    .map(|(id, (login, role))| (*id, login.clone(), *role))
                    .collect();
                people.sort_by_key(|p| p.0);
                Some(gatehouse_gate::snapshot::RepoRoles {
                    repository: repository.clone(),
                    fetched_at: fetched.as_second(),
                    people,
                })
            })
            .collect();
        out.sort_by(|a, b| a.repository.cmp(&b.repository));
        out
    }
}

/// The repositories (lower-cased `owner/name`) of the projects that hold grants: whose roles
/// the guard keeps.
pub fn granted_repositories(policy: &Policy) -> Vec<String> {
    let mut repos: Vec<String> = policy
        .grants()
        .map(|(_, g)| {
            format!("{}/{}{}", policy.org(), g.project, policy.repo_suffix()).to_ascii_lowercase()
        })
        .collect();
    repos.sort();
    repos.dedup();
    repos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_from_the_list_is_no_role() {
        let r = RepoRoles {
            fetched_at: Some("2026-12-06T11:30:00Z".parse().unwrap()),
            invalidated_at: None,
            list: People {
                etag: None,
                people: HashMap::from([(1, ("a".to_string(), Permission::Write))]),
            },
        };
        assert_eq!(r.role_of(1), Some(Permission::Write));
        assert_eq!(r.role_of(2), None);
    }
}
