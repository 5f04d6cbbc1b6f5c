//! The guard's facts: whole lists that GitHub gives and a decision reads from memory (who holds
//! which role on a repository: [`crate::facts`]; who is in a team: [`crate::team_facts`]).
//!
//! A decision never asks GitHub. Each list is fetched ahead of time, whole (absence from a
//! fresh list means absence, so there is never one lookup per unknown person, which anyone
//! could use to drain the rate limit), and stored in the database with when its fetch started
//! and when a webhook last said it changed, so every replica reads the same lists: each polls
//! the table for rows another changed.
//!
//! One rule for every kind: a list is fresh when its fetch started after the last change a
//! webhook announced and less than the time to live ago. A stale or missing list is fetched
//! again (one fetch per list at a time, with retries, within the caller's deadline); if it
//! cannot be had, the decision waits for it and, past its deadline, denies `facts-unavailable`
//! ([`crate::guard`]). What differs between the kinds is only what GitHub is asked and what is
//! stored ([`Fetch`], [`Stored`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::store::{FactRow, FactTable, Store, time_text};

/// One list as the guard holds it.
#[derive(Debug, Default)]
pub struct Fact<T> {
    /// When the fetch that gave `list` started; `None`: never fetched.
    pub fetched_at: Option<Timestamp>,
    /// When a webhook last said the list changed.
    pub invalidated_at: Option<Timestamp>,
    pub list: T,
}

impl<T> Fact<T> {
    /// Whether the list can be decided on at `now`: fetched after the last change announced,
    /// less than `ttl` ago.
    pub fn is_fresh(&self, now: Timestamp, ttl: Duration) -> bool {
        let Some(fetched) = self.fetched_at else {
            return false;
        };
        let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
        self.invalidated_at.is_none_or(|i| fetched > i) && now.duration_since(fetched) < ttl
    }
}

/// A kind of list as the store keeps it.
pub(crate) trait Stored: Clone + Default {
    /// Its table.
    const TABLE: FactTable;
    /// The list held in memory for a stored row.
    fn from_row(row: &FactRow) -> Self;
}

/// How one kind of list is had from GitHub and kept in the store.
pub(crate) trait Fetch {
    type List: Stored;
    /// What GitHub answers when it has the list.
    type Answer;
    /// The list in messages: "the roles on o/r".
    fn what(&self, key: &str) -> String;
    /// One question to GitHub about `key`, knowing what is `held`; `Ok(None)`: GitHub has no
    /// such list, or the token may not see it.
    async fn ask(
        &self,
        key: &str,
        held: Option<&Fact<Self::List>>,
    ) -> Result<Option<Self::Answer>, gatehouse_github::Error>;
    /// Why nothing can be known of `key` when GitHub has no list for it.
    fn unknown(&self, key: &str) -> anyhow::Error;
    /// Stores GitHub's answer to a fetch that started at `started` (for every replica) and
    /// returns the list learnt.
    async fn keep(
        &self,
        key: &str,
        answer: Self::Answer,
        started: Timestamp,
        held: Option<&Fact<Self::List>>,
    ) -> anyhow::Result<Self::List>;
}

/// What `/healthz` says about one kind of facts.
#[derive(Debug, Serialize)]
pub struct FactsReport {
    /// How many lists are held (repositories, or teams).
    pub repositories: usize,
    pub fresh: usize,
    pub stale: usize,
    /// When the oldest list still held was fetched.
    pub oldest_fetch: Option<String>,
    pub last_error: Option<String>,
}

/// Every list of one kind, in memory, and how they are kept fresh.
pub struct FactCache<T> {
    /// Lower-cased key (a repository's `owner/name`, a team's slug) -> its list.
    lists: RwLock<HashMap<String, Arc<Fact<T>>>>,
    /// One fetch per list at a time: whoever needs it while it is fetched waits for it.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The newest `changed_at` read from the store (its text), for the next poll.
    polled_to: Mutex<Option<String>>,
    /// The last fetch that failed, for `/healthz`.
    last_error: Mutex<Option<String>>,
    /// Grows whenever a list changes (a fetch, a poll, a webhook).
    generation: AtomicU64,
}

impl<T> Default for FactCache<T> {
    fn default() -> Self {
        FactCache {
            lists: RwLock::default(),
            fetching: Mutex::default(),
            polled_to: Mutex::default(),
            last_error: Mutex::default(),
            generation: AtomicU64::default(),
        }
    }
}

/// The entries of a stored list (JSON); none when it was never fetched or cannot be read.
pub(crate) fn stored_entries<E: serde::de::DeserializeOwned>(row: &FactRow) -> Vec<E> {
    row.list
        .as_deref()
        .and_then(|list| serde_json::from_str(list).ok())
        .unwrap_or_default()
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text?.parse().ok()
}

impl<T: Stored> FactCache<T> {
    /// The list of `key`, if it is fresh at `now`.
    pub fn fresh(&self, key: &str, now: Timestamp, ttl: Duration) -> Option<Arc<Fact<T>>> {
        self.read()
            .get(&key.to_ascii_lowercase())
            .filter(|f| f.is_fresh(now, ttl))
            .cloned()
    }

    /// Every list held, for reading them all.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<Fact<T>>>> {
        self.lists.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<Fact<T>>> {
        self.read().get(key).cloned()
    }

    /// Stores what was learnt about a list, merged with what is held: the newer fetch's list,
    /// and the later of the two changes announced (a fetch that started before a webhook made
    /// its list stale must not make it fresh again; two replicas, or a poll racing a fetch,
    /// must not put an older list back).
    pub(crate) fn put(&self, key: String, learnt: Fact<T>) -> Arc<Fact<T>> {
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        let merged = match lists.get(&key) {
            None => learnt,
            Some(held) => {
                let invalidated_at = held.invalidated_at.max(learnt.invalidated_at);
                if held.fetched_at > learnt.fetched_at {
                    Fact {
                        fetched_at: held.fetched_at,
                        invalidated_at,
                        list: held.list.clone(),
                    }
                } else {
                    Fact {
                        invalidated_at,
                        ..learnt
                    }
                }
            }
        };
        let merged = Arc::new(merged);
        lists.insert(key, merged.clone());
        self.bump();
        merged
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the lists changed: equal numbers, same lists.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Marks the list of `key` (`None`: every list) stale as of `at`, in memory; the caller
    /// stores the same in the database for the other replicas.
    pub fn invalidate(&self, key: Option<&str>, at: Timestamp) {
        self.bump();
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        let mark = |f: &Fact<T>| {
            Arc::new(Fact {
                fetched_at: f.fetched_at,
                invalidated_at: Some(f.invalidated_at.map_or(at, |i| i.max(at))),
                list: f.list.clone(),
            })
        };
        match key {
            Some(key) => {
                let key = key.to_ascii_lowercase();
                let marked = mark(lists.get(&key).map_or(&Fact::default(), |f| f));
                lists.insert(key, marked);
            }
            None => {
                for f in lists.values_mut() {
                    *f = mark(f);
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
        let rows = store.facts_since(T::TABLE, since.as_deref()).await?;
        let n = rows.len();
        for row in rows {
            *self.polled_to.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(row.changed_at.clone());
            let fact = Fact {
                fetched_at: parse_time(row.fetched_at.as_deref()),
                invalidated_at: parse_time(row.invalidated_at.as_deref()),
                list: T::from_row(&row),
            };
            self.put(row.key, fact);
        }
        Ok(n)
    }

    /// The list of `key`, fetched from GitHub through `fetch` unless it is fresh, waiting for
    /// a fetch already under way. Retries until `deadline`; an error says why it could not be
    /// had.
    pub(crate) async fn obtain<F: Fetch<List = T>>(
        &self,
        fetch: &F,
        store: &Store,
        key: &str,
        ttl: Duration,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<Fact<T>>> {
        let key = key.to_ascii_lowercase();
        let turn = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            fetching.entry(key.clone()).or_default().clone()
        };
        let _turn = tokio::time::timeout_at(deadline, turn.lock())
            .await
            .with_context(|| format!("{} are being fetched and took too long", fetch.what(&key)))?;
        // Fetched meanwhile, here or by another replica?
        if let Some(f) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(f);
        }
        let _ = self.poll(store).await;
        if let Some(f) = self.fresh(&key, Timestamp::now(), ttl) {
            return Ok(f);
        }
        let result = self.fetch(fetch, &key, deadline).await;
        if let Err(e) = &result {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{}: {e:#}", time_text(Timestamp::now())));
        }
        result
    }

    /// Asks GitHub until it answers, backing off, until `deadline`. A refusal (a token without
    /// access, say) is not asked again.
    async fn fetch<F: Fetch<List = T>>(
        &self,
        fetch: &F,
        key: &str,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<Fact<T>>> {
        let held = self.get(key);
        let mut backoff = Duration::from_millis(250);
        loop {
            let started = Timestamp::now();
            let answer = tokio::time::timeout_at(deadline, fetch.ask(key, held.as_deref()))
                .await
                .with_context(|| format!("GitHub did not give {} in time", fetch.what(key)))?;
            let failure = match answer {
                Ok(Some(answer)) => {
                    let list = fetch.keep(key, answer, started, held.as_deref()).await?;
                    let learnt = Fact {
                        fetched_at: Some(started),
                        invalidated_at: held.as_ref().and_then(|h| h.invalidated_at),
                        list,
                    };
                    return Ok(self.put(key.to_string(), learnt));
                }
                Ok(None) => fetch.unknown(key),
                Err(e) if e.is_refusal() => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("cannot read {}", fetch.what(key)));
                }
                Err(e) => anyhow::Error::new(e),
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(failure).with_context(|| format!("cannot read {}", fetch.what(key)));
            }
            tracing::debug!(
                key,
                error = format!("{failure:#}"),
                "retrying {}",
                fetch.what(key)
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// What `/healthz` shows.
    pub fn report(&self, now: Timestamp, ttl: Duration) -> FactsReport {
        let lists = self.read();
        let fresh = lists.values().filter(|f| f.is_fresh(now, ttl)).count();
        FactsReport {
            repositories: lists.len(),
            fresh,
            stale: lists.len() - fresh,
            oldest_fetch: lists
                .values()
                .filter_map(|f| f.fetched_at)
                .min()
                .map(|t| t.to_string()),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Lower-cased keys among `wanted` whose list is not fresh at `now`, or whose fetch is
    /// older than half the time to live (refreshed before it goes stale).
    pub fn due(&self, wanted: &[String], now: Timestamp, ttl: Duration) -> Vec<String> {
        let half = ttl / 2;
        wanted
            .iter()
            .filter(|key| self.get(key).is_none_or(|f| !f.is_fresh(now, half)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind of list for these tests: account ids.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Ids(Vec<i64>);

    impl Stored for Ids {
        const TABLE: FactTable = FactTable::Teams;

        fn from_row(_: &FactRow) -> Ids {
            Ids::default()
        }
    }

    fn list(fetched: Option<&str>, invalidated: Option<&str>) -> Fact<Ids> {
        Fact {
            fetched_at: fetched.map(|t| t.parse().unwrap()),
            invalidated_at: invalidated.map(|t| t.parse().unwrap()),
            list: Ids(vec![1]),
        }
    }

    #[test]
    fn a_list_is_fresh_after_the_last_change_and_within_its_time_to_live() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        assert!(list(Some("2026-12-06T11:30:00Z"), None).is_fresh(now, hour));
        assert!(!list(Some("2026-12-06T10:59:00Z"), None).is_fresh(now, hour));
        assert!(!list(None, None).is_fresh(now, hour));
        // A change announced after the fetch started makes it stale at once.
        assert!(
            !list(Some("2026-12-06T11:30:00Z"), Some("2026-12-06T11:31:00Z")).is_fresh(now, hour)
        );
        assert!(
            list(Some("2026-12-06T11:32:00Z"), Some("2026-12-06T11:31:00Z")).is_fresh(now, hour)
        );
    }

    #[test]
    fn a_fetch_that_started_before_a_change_does_not_make_the_list_fresh() {
        let facts = FactCache::<Ids>::default();
        let hour = Duration::from_secs(3600);
        facts.put("o/r".into(), list(Some("2026-12-06T11:00:00Z"), None));
        // A webhook says the list changed while a fetch (started before) is under way.
        facts.invalidate(Some("O/R"), "2026-12-06T11:10:00Z".parse().unwrap());
        facts.put("o/r".into(), list(Some("2026-12-06T11:09:00Z"), None));
        let now = "2026-12-06T11:20:00Z".parse().unwrap();
        assert!(facts.fresh("o/r", now, hour).is_none());
        facts.put("o/r".into(), list(Some("2026-12-06T11:11:00Z"), None));
        assert_eq!(facts.fresh("O/R", now, hour).unwrap().list, Ids(vec![1]));
        // Every list at once (a team deleted without a name, an organisation renamed).
        facts.invalidate(None, "2026-12-06T11:15:00Z".parse().unwrap());
        assert!(facts.fresh("o/r", now, hour).is_none());
    }

    #[test]
    fn an_older_fetch_never_replaces_a_newer_one() {
        let facts = FactCache::<Ids>::default();
        facts.put("o/r".into(), list(Some("2026-12-06T11:30:00Z"), None));
        facts.put("o/r".into(), list(Some("2026-12-06T11:00:00Z"), None));
        assert_eq!(
            facts.get("o/r").unwrap().fetched_at,
            Some("2026-12-06T11:30:00Z".parse().unwrap())
        );
        facts.invalidate(Some("O/R"), "2026-12-06T11:45:00Z".parse().unwrap());
        let now = "2026-12-06T11:50:00Z".parse().unwrap();
        assert!(facts.fresh("o/r", now, Duration::from_secs(3600)).is_none());
    }
}
