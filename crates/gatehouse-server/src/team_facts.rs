//! The guard's team facts: who is in each team a grant's user list names (Cirun's `teams`).
//!
//! Kept as the role facts ([`crate::facts`]) are, for the same reasons: a decision never asks
//! GitHub, so each such team's whole member list (`GET /orgs/{org}/teams/{team_slug}/members`,
//! every page) is fetched ahead of time (at start, on reload, before it goes stale), stored in
//! the database with when its fetch started and when a webhook (`membership`, `team`) last
//! made it stale, and read by every replica from there. Members are matched by account id;
//! absence from a fresh list means not a member. A list that is stale or missing when a job
//! needs it is fetched with retries until the job's deadline; past it the job is denied
//! `facts-unavailable`, never let in by a team nobody could read. A team GitHub does not know
//! (deleted, renamed, or hidden from the token) is such a failure too, reported in `/healthz`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use gatehouse_github::Client;
use gatehouse_github::collaborators::TeamMember;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::facts::FactsReport;
use crate::store::{Store, TeamFactsRow, TeamFactsWrite, Write, now_text, time_text};

/// One team's member list as the guard holds it.
#[derive(Debug, Default)]
pub struct TeamMembers {
    /// When the fetch that gave `members` started; `None`: never fetched.
    pub fetched_at: Option<Timestamp>,
    /// When a webhook last said the members changed.
    pub invalidated_at: Option<Timestamp>,
    /// Account ids of the members.
    members: HashSet<i64>,
}

impl TeamMembers {
    /// Whether the list can be decided on at `now`: fetched after the last change announced,
    /// less than `ttl` ago.
    pub fn is_fresh(&self, now: Timestamp, ttl: Duration) -> bool {
        let Some(fetched) = self.fetched_at else {
            return false;
        };
        let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
        self.invalidated_at.is_none_or(|i| fetched > i) && now.duration_since(fetched) < ttl
    }

    /// Whether the person with this account id is a member.
    pub fn contains(&self, id: i64) -> bool {
        self.members.contains(&id)
    }
}

/// A member as stored (JSON in `team_facts.members`); the login only helps a reader.
#[derive(Serialize, Deserialize)]
struct Stored {
    login: String,
    id: i64,
}

fn members_json(members: &[TeamMember]) -> String {
    let stored: Vec<Stored> = members
        .iter()
        .map(|m| Stored {
            login: m.login.clone(),
            id: m.id,
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text?.parse().ok()
}

/// Every team's member list, in memory, and how they are kept fresh.
#[derive(Default)]
pub struct TeamFacts {
    /// Lower-cased slug -> its list.
    teams: RwLock<HashMap<String, Arc<TeamMembers>>>,
    /// One fetch per team at a time: whoever needs it while it is fetched waits for it.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The newest `changed_at` read from the store, for the next poll.
    polled_to: Mutex<Option<String>>,
    /// The last fetch that failed, for `/healthz`.
    last_error: Mutex<Option<String>>,
}

impl TeamFacts {
    /// The team's list, if it is fresh at `now`.
    pub fn fresh(&self, team: &str, now: Timestamp, ttl: Duration) -> Option<Arc<TeamMembers>> {
        let teams = self.teams.read().unwrap_or_else(|e| e.into_inner());
        teams
            .get(&team.to_ascii_lowercase())
            .filter(|t| t.is_fresh(now, ttl))
            .cloned()
    }

    fn get(&self, key: &str) -> Option<Arc<TeamMembers>> {
        let teams = self.teams.read().unwrap_or_else(|e| e.into_inner());
        teams.get(key).cloned()
    }

    /// Stores what was learnt about a team, merged with what is held: the newer fetch's list
    /// and the later of the two changes announced (as [`crate::facts::RoleFacts`] does, for
    /// the same races).
    fn put(&self, key: String, learnt: TeamMembers) -> Arc<TeamMembers> {
        let mut teams = self.teams.write().unwrap_or_else(|e| e.into_inner());
        let merged = match teams.get(&key) {
            None => learnt,
            Some(held) => {
                let invalidated_at = held.invalidated_at.max(learnt.invalidated_at);
                if held.fetched_at > learnt.fetched_at {
                    TeamMembers {
                        fetched_at: held.fetched_at,
                        invalidated_at,
                        members: held.members.clone(),
                    }
                } else {
                    TeamMembers {
                        invalidated_at,
                        ..learnt
                    }
                }
            }
        };
        let merged = Arc::new(merged);
        teams.insert(key, merged.clone());
        merged
    }

    /// Marks a team's list (`None`: every list) stale as of `at`, in memory; the caller stores
    /// the same ([`TeamFactsWrite::Invalidate`]) for the other replicas.
    pub fn invalidate(&self, team: Option<&str>, at: Timestamp) {
        let mut teams = self.teams.write().unwrap_or_else(|e| e.into_inner());
        let mark = |t: &TeamMembers| {
            Arc::new(TeamMembers {
                fetched_at: t.fetched_at,
                invalidated_at: Some(t.invalidated_at.map_or(at, |i| i.max(at))),
                members: t.members.clone(),
            })
        };
        match team {
            Some(team) => {
                let key = team.to_ascii_lowercase();
                let marked = mark(teams.get(&key).map_or(&TeamMembers::default(), |t| t));
                teams.insert(key, marked);
            }
            None => {
                for t in teams.values_mut() {
                    *t = mark(t);
                }
            }
        }
    }

    /// Reads the rows another replica (or an earlier run) changed since the last poll.
    pub async fn poll(&self, store: &Store) -> anyhow::Result<usize> {
        let since = self
            .polled_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let rows = store.team_facts_since(since.as_deref()).await?;
        let n = rows.len();
        for row in rows {
            *self.polled_to.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(row.changed_at.clone());
            self.load_row(row);
        }
        Ok(n)
    }

    fn load_row(&self, row: TeamFactsRow) {
        let members: Vec<Stored> = row
            .members
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        let team = TeamMembers {
            fetched_at: parse_time(row.fetched_at.as_deref()),
            invalidated_at: parse_time(row.invalidated_at.as_deref()),
            members: members.into_iter().map(|m| m.id).collect(),
        };
        self.put(row.team, team);
    }

    /// The team's list, fetched from GitHub unless it is fresh, waiting for a fetch already
    /// under way. Retries until `deadline`; an error says why it could not be had.
    pub async fn refresh(
        &self,
        github: &Client,
        store: &Store,
        org: &str,
        team: &str,
        ttl: Duration,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<TeamMembers>> {
        let key = team.to_ascii_lowercase();
        let turn = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            fetching.entry(key.clone()).or_default().clone()
        };
        let _turn = tokio::time::timeout_at(deadline, turn.lock())
            .await
            .with_context(|| {
                format!("the members of team {org}/{key} are being fetched and took too long")
            })?;
        // Fetched meanwhile, here or by another replica?
        if let Some(t) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(t);
        }
        let _ = self.poll(store).await;
        if let Some(t) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(t);
        }
        let result = self.fetch(github, store, org, &key, deadline).await;
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
        org: &str,
        key: &str,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<TeamMembers>> {
        let mut backoff = Duration::from_millis(250);
        loop {
            let started = Timestamp::now();
            let answer = tokio::time::timeout_at(deadline, github.team_members(org, key))
                .await
                .with_context(|| {
                    format!("GitHub did not give the members of team {org}/{key} in time")
                })?;
            let failure = match answer {
                Ok(Some(members)) => {
                    store
                        .commit(vec![Write::TeamFacts(TeamFactsWrite::Members {
                            team: key.to_string(),
                            members: members_json(&members),
                            fetched_at: time_text(started),
                            changed_at: now_text(),
                        })])
                        .await?;
                    let learnt = TeamMembers {
                        fetched_at: Some(started),
                        invalidated_at: self.get(key).and_then(|t| t.invalidated_at),
                        members: members.iter().map(|m| m.id).collect(),
                    };
                    return Ok(self.put(key.to_string(), learnt));
                }
                // Nobody's membership can be known in a team GitHub does not show.
                Ok(None) => anyhow::anyhow!(
                    "GitHub has no team {org}/{key}, or the token may not see it (it needs to read the organisation's members)"
                ),
                Err(e) if e.is_refusal() => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("cannot read the members of team {org}/{key}"));
                }
                Err(e) => anyhow::Error::new(e),
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(failure)
                    .with_context(|| format!("cannot read the members of team {org}/{key}"));
            }
            tracing::debug!(
                team = key,
                error = format!("{failure:#}"),
                "retrying a team's members"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Lower-cased teams among `wanted` whose list is not fresh at `now`, or whose fetch is
    /// older than half the time to live (refreshed before it goes stale).
    pub fn due(&self, wanted: &[String], now: Timestamp, ttl: Duration) -> Vec<String> {
        let half = ttl / 2;
        wanted
            .iter()
            .filter(|key| self.get(key).is_none_or(|t| !t.is_fresh(now, half)))
            .cloned()
            .collect()
    }

    /// What `/healthz` shows (`repositories` counts teams here).
    pub fn report(&self, now: Timestamp, ttl: Duration) -> FactsReport {
        let teams = self.teams.read().unwrap_or_else(|e| e.into_inner());
        let fresh = teams.values().filter(|t| t.is_fresh(now, ttl)).count();
        FactsReport {
            repositories: teams.len(),
            fresh,
            stale: teams.len() - fresh,
            oldest_fetch: teams
                .values()
                .filter_map(|t| t.fetched_at)
                .min()
                .map(|t| t.to_string()),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(fetched: Option<&str>, invalidated: Option<&str>) -> TeamMembers {
        TeamMembers {
            fetched_at: fetched.map(|t| t.parse().unwrap()),
            invalidated_at: invalidated.map(|t| t.parse().unwrap()),
            members: HashSet::from([1]),
        }
    }

    #[test]
    fn a_list_is_fresh_after_the_last_change_and_within_its_time_to_live() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(members(Some("2026-12-06T11:30:00Z"), None).is_fresh(now, hour));
        assert!(!members(Some("2026-12-06T10:59:00Z"), None).is_fresh(now, hour));
        assert!(!members(None, None).is_fresh(now, hour));
        assert!(
            !members(Some("2026-12-06T11:30:00Z"), Some("2026-12-06T11:31:00Z"))
                .is_fresh(now, hour)
        );
    }

    #[test]
    fn a_change_announced_during_a_fetch_keeps_the_list_stale() {
        let facts = TeamFacts::default();
        let hour = Duration::from_secs(3600);
        facts.put("core".into(), members(Some("2026-12-06T11:00:00Z"), None));
        facts.invalidate(Some("Core"), "2026-12-06T11:10:00Z".parse().unwrap());
        // A fetch that started before the change does not make it fresh again.
        facts.put("core".into(), members(Some("2026-12-06T11:09:00Z"), None));
        let now = "2026-12-06T11:20:00Z".parse().unwrap();
        assert!(facts.fresh("core", now, hour).is_none());
        facts.put("core".into(), members(Some("2026-12-06T11:11:00Z"), None));
        let fresh = facts.fresh("CORE", now, hour).unwrap();
        assert!(fresh.contains(1));
        assert!(!fresh.contains(2));
        // Every team at once (a team deleted without a name).
        facts.invalidate(None, "2026-12-06T11:15:00Z".parse().unwrap());
        assert!(facts.fresh("core", now, hour).is_none());
    }
}
