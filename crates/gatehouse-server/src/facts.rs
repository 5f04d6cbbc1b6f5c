//! The guard's role facts: who holds which role on each granted project's repository.
//!
//! A decision never asks GitHub: it reads these facts from memory. They are fetched ahead of
//! time, a repository's whole collaborator list at once (absence from a fresh list means no
//! role, so there is never one lookup per unknown person, which anyone could use to drain the
//! rate limit): at start, on reload, periodically before they go stale, and when a webhook
//! (`member`, `membership`, `team`, `organization`, `repository`) says they changed. Each list
//! is stored in the database with when its fetch started and when it was last made stale, so
//! every replica reads the same facts: each polls the table for rows another changed.
//!
//! A list is fresh when its fetch started after the last change a webhook announced and less
//! than the time to live ago. A stale or missing list is fetched again (one fetch per
//! repository at a time, with retries, within the caller's deadline); if it cannot be had,
//! the decision waits for it and, past its deadline, denies `facts-unavailable`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use gatehouse_github::collaborators::{Collaborator, Role};
use gatehouse_github::{Client, Conditional};
use gatehouse_policy::{Permission, Policy};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::store::{RoleFactsRow, Store, Write, now_text, time_text};

/// One repository's collaborator list as the guard holds it.
#[derive(Debug)]
pub struct RepoRoles {
    /// When the fetch that gave `people` started; `None`: never fetched.
    pub fetched_at: Option<Timestamp>,
    /// When a webhook last said the roles changed.
    pub invalidated_at: Option<Timestamp>,
    pub etag: Option<String>,
    /// Account id -> (login, role). Anyone absent has no role.
    people: HashMap<i64, (String, Permission)>,
}

impl RepoRoles {
    /// Whether the list can be decided on at `now`.
    pub fn is_fresh(&self, now: Timestamp, ttl: Duration) -> bool {
        let Some(fetched) = self.fetched_at else {
            return false;
        };
        let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
        self.invalidated_at.is_none_or(|i| fetched > i) && now.duration_since(fetched) < ttl
    }

    /// The role of the person with this account id: `None` for none.
    pub fn role_of(&self, id: i64) -> Option<Permission> {
        self.people.get(&id).map(|(_, role)| *role)
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

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text?.parse().ok()
}

/// Every repository's role facts, in memory, and how they are kept fresh.
#[derive(Default)]
pub struct RoleFacts {
    /// Lower-cased `owner/name` -> its list.
    repos: RwLock<HashMap<String, Arc<RepoRoles>>>,
    /// One fetch per repository at a time: whoever needs it while it is fetched waits for it.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The newest `changed_at` read from the store (its text), for the next poll.
    polled_to: Mutex<Option<String>>,
    /// The last fetch that failed, for `/healthz`.
    pub(crate) last_error: Mutex<Option<String>>,
    /// Grows whenever a list changes (a fetch, a poll, a webhook): snapshots are made again.
    generation: std::sync::atomic::AtomicU64,
}

/// What `/healthz` says about the facts.
#[derive(Debug, Serialize)]
pub struct FactsReport {
    pub repositories: usize,
    pub fresh: usize,
    pub stale: usize,
    /// When the oldest list still held was fetched.
    pub oldest_fetch: Option<String>,
    pub last_error: Option<String>,
}

impl RoleFacts {
    /// The repository's list, if it is fresh at `now`.
    pub fn fresh(&self, repository: &str, now: Timestamp, ttl: Duration) -> Option<Arc<RepoRoles>> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        repos
            .get(&repository.to_ascii_lowercase())
            .filter(|r| r.is_fresh(now, ttl))
            .cloned()
    }

    fn get(&self, key: &str) -> Option<Arc<RepoRoles>> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        repos.get(key).cloned()
    }

    /// Stores what was learnt about a repository, merged with what is held: the newer fetch's
    /// list, and the later of the two changes announced (a fetch that started before a webhook
    /// made its list stale must not make it fresh again; two replicas, or a poll racing a
    /// fetch, must not put an older list back).
    fn put(&self, key: String, learnt: RepoRoles) -> Arc<RepoRoles> {
        let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
        let merged = match repos.get(&key) {
            None => learnt,
            Some(held) => {
                let invalidated_at = held.invalidated_at.max(learnt.invalidated_at);
                if held.fetched_at > learnt.fetched_at {
                    RepoRoles {
                        fetched_at: held.fetched_at,
                        invalidated_at,
                        etag: held.etag.clone(),
                        people: held.people.clone(),
                    }
                } else {
                    RepoRoles {
                        invalidated_at,
                        ..learnt
                    }
                }
            }
        };
        let merged = Arc::new(merged);
        repos.insert(key, merged.clone());
        self.bump();
        merged
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many times the lists changed: equal numbers, same lists.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks a repository's list (`None`: every list) stale as of `at`, in memory; the caller
    /// stores the same in the database ([`Write::InvalidateRoles`]) for the other replicas.
    pub fn invalidate(&self, repository: Option<&str>, at: Timestamp) {
        self.bump();
        let mut repos = self.repos.write().unwrap_or_else(|e| e.into_inner());
        let mark = |r: &Arc<RepoRoles>| {
            Arc::new(RepoRoles {
                fetched_at: r.fetched_at,
                invalidated_at: Some(r.invalidated_at.map_or(at, |i| i.max(at))),
                etag: r.etag.clone(),
                people: r.people.clone(),
            })
        };
        match repository {
            Some(repository) => {
                let key = repository.to_ascii_lowercase();
                let marked = match repos.get(&key) {
                    Some(r) => mark(r),
                    None => Arc::new(RepoRoles {
                        fetched_at: None,
                        invalidated_at: Some(at),
                        etag: None,
                        people: HashMap::new(),
                    }),
                };
                repos.insert(key, marked);
            }
            None => {
                for r in repos.values_mut() {
                    *r = mark(r);
                }
            }
        }
    }

    /// The repositories (lower-cased) whose list names the person with this id.
    pub fn repositories_of(&self, id: i64) -> Vec<String> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        repos
            .iter()
            .filter(|(_, r)| r.people.contains_key(&id))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Reads the rows another replica (or an earlier run) changed since the last poll.
    pub async fn poll(&self, store: &Store) -> anyhow::Result<usize> {
        let since = self
            .polled_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let rows = store.role_facts_since(since.as_deref()).await?;
        let n = rows.len();
        for row in rows {
            *self.polled_to.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(row.changed_at.clone());
            self.load_row(row);
        }
        Ok(n)
    }

    fn load_row(&self, row: RoleFactsRow) {
        let people: Vec<Stored> = row
            .people
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let roles = RepoRoles {
            fetched_at: parse_time(row.fetched_at.as_deref()),
            invalidated_at: parse_time(row.invalidated_at.as_deref()),
            etag: row.etag,
            people: people_map(
                people
                    .into_iter()
                    .map(|p| (p.id, p.login, p.role.as_deref().and_then(Role::parse))),
            ),
        };
        self.put(row.repository, roles);
    }

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
        let key = repository.to_ascii_lowercase();
        let turn = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            fetching.entry(key.clone()).or_default().clone()
        };
        let _turn = tokio::time::timeout_at(deadline, turn.lock())
            .await
            .with_context(|| {
                format!("the roles on {repository} are being fetched and took too long")
            })?;
        // Fetched meanwhile, here or by another replica?
        if let Some(r) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(r);
        }
        let _ = self.poll(store).await;
        if let Some(r) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(r);
        }
        let result = self.fetch(github, store, &key, deadline).await;
        if let Err(e) = &result {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{}: {e:#}", time_text(Timestamp::now())));
        }
        result
    }

    async fn fetch(
        &self,
        github: &Client,
        store: &Store,
        key: &str,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<RepoRoles>> {
        let held = self.get(key);
        let mut backoff = Duration::from_millis(250);
        loop {
            let started = Timestamp::now();
            let etag = held
                .as_ref()
                .filter(|h| h.fetched_at.is_some())
                .and_then(|h| h.etag.clone());
            let answer =
                tokio::time::timeout_at(deadline, github.collaborators(key, etag.as_deref()))
                    .await
                    .with_context(|| format!("GitHub did not give the roles on {key} in time"))?;
            let failure = match answer {
                Ok(Some(Conditional::NotModified)) => {
                    let held = held.as_ref().context("304 without a list held")?;
                    let roles = RepoRoles {
                        fetched_at: Some(started),
                        invalidated_at: held.invalidated_at,
                        etag: held.etag.clone(),
                        people: held.people.clone(),
                    };
                    // The stored list stays as it is: only its fetch time moves.
                    store
                        .commit(vec![Write::RoleFactsFetched {
                            repository: key.to_string(),
                            fetched_at: time_text(started),
                            changed_at: now_text(),
                        }])
                        .await?;
                    return Ok(self.put(key.to_string(), roles));
                }
                Ok(Some(Conditional::Modified { value, etag })) => {
                    let roles = RepoRoles {
                        fetched_at: Some(started),
                        invalidated_at: held.as_ref().and_then(|h| h.invalidated_at),
                        etag: etag.clone(),
                        people: people_map(value.iter().map(|c| (c.id, c.login.clone(), c.role))),
                    };
                    store
                        .commit(vec![Write::RoleFacts {
                            repository: key.to_string(),
                            people: people_json(&value),
                            etag,
                            fetched_at: time_text(started),
                            changed_at: now_text(),
                        }])
                        .await?;
                    return Ok(self.put(key.to_string(), roles));
                }
                // Not a repository the token can see: nobody's role can be known there.
                Ok(None) => {
                    anyhow::anyhow!("GitHub has no repository {key}, or the token may not see it")
                }
                Err(e) if e.is_refusal() => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("cannot read the roles on {key}"));
                }
                Err(e) => anyhow::Error::new(e),
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(failure).with_context(|| format!("cannot read the roles on {key}"));
            }
            tracing::debug!(
                repository = key,
                error = format!("{failure:#}"),
                "retrying the roles"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Every list held, as a snapshot carries them. Lists never fetched, and lists a webhook
    /// said changed since their fetch, are left out: offline, their repositories' jobs are
    /// refused for want of the fact rather than decided on an old list.
    pub fn export(&self) -> Vec<gatehouse_gate::snapshot::RepoRoles> {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = repos
            .iter()
            .filter_map(|(repository, r)| {
                let fetched = r.fetched_at?;
                if r.invalidated_at.is_some_and(|i| i >= fetched) {
                    return None;
                }
                let mut people: Vec<(i64, String, Permission)> = r
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

    /// What `/healthz` shows.
    pub fn report(&self, now: Timestamp, ttl: Duration) -> FactsReport {
        let repos = self.repos.read().unwrap_or_else(|e| e.into_inner());
        let fresh = repos.values().filter(|r| r.is_fresh(now, ttl)).count();
        FactsReport {
            repositories: repos.len(),
            fresh,
            stale: repos.len() - fresh,
            oldest_fetch: repos
                .values()
                .filter_map(|r| r.fetched_at)
                .min()
                .map(|t| t.to_string()),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Lower-cased repositories whose list is not fresh at `now`, among `wanted`, or whose
    /// fetch is older than half the time to live (refreshed before it goes stale).
    pub fn due(&self, wanted: &[String], now: Timestamp, ttl: Duration) -> Vec<String> {
        let half = ttl / 2;
        wanted
            .iter()
            .filter(|key| match self.get(key) {
                None => true,
                Some(r) => !r.is_fresh(now, half),
            })
            .cloned()
            .collect()
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

    fn roles(fetched: Option<&str>, invalidated: Option<&str>) -> RepoRoles {
        RepoRoles {
            fetched_at: fetched.map(|t| t.parse().unwrap()),
            invalidated_at: invalidated.map(|t| t.parse().unwrap()),
            etag: None,
            people: HashMap::from([(1, ("a".to_string(), Permission::Write))]),
        }
    }

    #[test]
    fn a_list_is_fresh_after_the_last_change_and_within_its_time_to_live() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(roles(Some("2026-12-06T11:30:00Z"), None).is_fresh(now, hour));
        assert!(!roles(Some("2026-12-06T10:59:00Z"), None).is_fresh(now, hour));
        assert!(!roles(None, None).is_fresh(now, hour));
        // A change announced after the fetch started makes it stale at once.
        assert!(
            !roles(Some("2026-12-06T11:30:00Z"), Some("2026-12-06T11:31:00Z")).is_fresh(now, hour)
        );
        assert!(
            roles(Some("2026-12-06T11:32:00Z"), Some("2026-12-06T11:31:00Z")).is_fresh(now, hour)
        );
    }

    #[test]
    fn absence_from_the_list_is_no_role() {
        let r = roles(Some("2026-12-06T11:30:00Z"), None);
        assert_eq!(r.role_of(1), Some(Permission::Write));
        assert_eq!(r.role_of(2), None);
    }

    #[test]
    fn a_fetch_that_started_before_a_change_does_not_make_the_list_fresh() {
        let facts = RoleFacts::default();
        let hour = Duration::from_secs(3600);
        facts.put("o/r".into(), roles(Some("2026-12-06T11:00:00Z"), None));
        // A webhook says the roles changed while a fetch (started before) is under way.
        facts.invalidate(Some("o/r"), "2026-12-06T11:10:00Z".parse().unwrap());
        facts.put("o/r".into(), roles(Some("2026-12-06T11:09:00Z"), None));
        let now = "2026-12-06T11:20:00Z".parse().unwrap();
        assert!(facts.fresh("o/r", now, hour).is_none());
        facts.put("o/r".into(), roles(Some("2026-12-06T11:11:00Z"), None));
        assert!(facts.fresh("o/r", now, hour).is_some());
    }

    #[test]
    fn an_older_fetch_never_replaces_a_newer_one() {
        let facts = RoleFacts::default();
        facts.put("o/r".into(), roles(Some("2026-12-06T11:30:00Z"), None));
        facts.put("o/r".into(), roles(Some("2026-12-06T11:00:00Z"), None));
        assert_eq!(
            facts.get("o/r").unwrap().fetched_at,
            Some("2026-12-06T11:30:00Z".parse().unwrap())
        );
        facts.invalidate(Some("O/R"), "2026-12-06T11:45:00Z".parse().unwrap());
        let now = "2026-12-06T11:50:00Z".parse().unwrap();
        assert!(facts.fresh("o/r", now, Duration::from_secs(3600)).is_none());
    }
}
