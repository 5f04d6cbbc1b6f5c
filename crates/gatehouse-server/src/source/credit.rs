//! The sponsor credit pools as the access repository sets them (`pools/<name>.yml`), with the
//! median job lengths read for them; the guard keeps their books in [`crate::credit`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_core::Repo;
use gatehouse_core::pools::Terms;

/// How long a resource's median job length is used before it is read again.
const MEDIAN_TTL: Duration = Duration::from_secs(600);

/// The pools of the access repository, as of its last load.
#[derive(Debug, Default)]
pub(crate) struct CreditPools {
    pools: Vec<Terms>,
    funded: HashSet<String>,
    issues_repository: Option<String>,
    medians: Mutex<HashMap<String, (Instant, Option<u64>)>>,
}

impl CreditPools {
    pub fn from_repo(repo: &Repo) -> CreditPools {
        let pools = gatehouse_core::pools::terms(repo);
        let funded = pools
            .iter()
            .flat_map(|p| p.per_minute.keys().cloned())
            .collect();
        CreditPools {
            pools,
            funded,
            issues_repository: repo
                .settings
                .as_ref()
                .and_then(|s| s.value.guard.issues_repository.as_ref())
                .map(|r| r.value.clone()),
            medians: Mutex::default(),
        }
    }

    /// Whether any pool funds `resource` (on some day, for some project).
    pub fn funds(&self, resource: &str) -> bool {
        self.funded.contains(resource)
    }

    pub fn all(&self) -> &[Terms] {
        &self.pools
    }

    pub fn get(&self, name: &str) -> Option<&Terms> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// `resource`'s median job length when it was read less than [`MEDIAN_TTL`] ago.
    pub fn cached_median(&self, resource: &str) -> Option<Option<u64>> {
        self.medians
            .lock()
            .expect("medians lock")
            .get(resource)
            .filter(|(at, _)| at.elapsed() < MEDIAN_TTL)
            .map(|(_, m)| *m)
    }

    /// Keeps `resource`'s median job length, read now.
    pub fn remember_median(&self, resource: &str, median: Option<u64>) {
        self.medians
            .lock()
            .expect("medians lock")
            .insert(resource.to_string(), (Instant::now(), median));
    }

    /// The repository sponsor pools' alerts are opened in (`guard.issues_repository`).
    pub fn issues_repository(&self) -> Option<&str> {
        self.issues_repository.as_deref()
    }
}
