//! The concurrency caps as the access repository sets them (`quota.concurrency`,
//! `quota.project_concurrency`, a provider's `max_concurrency`) and each runner pool's
//! `concurrency_wait`; the guard counts jobs against them in [`crate::caps`].

use std::collections::HashMap;
use std::time::Duration;

use gatehouse_core::Repo;
use gatehouse_core::model::{DEFAULT_CONCURRENCY_WAIT_SECS, OnExceed};

use crate::store::Limits;

/// The caps of every capped resource, and each runner pool's `concurrency_wait`.
#[derive(Debug, Default)]
pub(crate) struct Caps {
    resources: HashMap<String, ResourceCaps>,
    waits: HashMap<String, Duration>,
}

/// The caps a resource's jobs count against.
#[derive(Clone, Debug)]
pub(crate) struct ResourceCaps {
    pub provider: String,
    pub limits: Limits,
    pub on_exceed: OnExceed,
    /// A gate pool serves it: the gate enforces per job.
    pub gated: bool,
}

impl Caps {
    pub fn from_repo(repo: &Repo) -> Caps {
        let Some(settings) = &repo.settings else {
            return Caps::default();
        };
        let settings = &settings.value;
        let mut resources = HashMap::new();
        for r in &repo.resources {
            let r = &r.value;
            let quota = r.quota.clone().unwrap_or_default();
            let limits = Limits {
                resource: quota.concurrency.map(|c| c.value),
                project: quota.project_concurrency.map(|c| c.value),
                provider: settings
                    .providers
                    .get(r.provider.as_str())
                    .and_then(|p| p.max_concurrency())
                    .map(|c| c.value),
            };
            if !limits.any() || resources.contains_key(r.name.as_str()) {
                continue;
            }
            resources.insert(
                r.name.value.clone(),
                ResourceCaps {
                    provider: r.provider.value.clone(),
                    limits,
                    on_exceed: quota.on_exceed.map(|o| o.value).unwrap_or_default(),
                    gated: settings
                        .gate
                        .pools
                        .values()
                        .any(|p| p.resource.value == r.name.value),
                },
            );
        }
        let waits = settings
            .gate
            .pools
            .iter()
            .map(|(name, p)| (name.clone(), Duration::from_secs(p.concurrency_wait_secs())))
            .collect();
        Caps { resources, waits }
    }

    /// The caps of `resource`, when any applies.
    pub fn of(&self, resource: &str) -> Option<&ResourceCaps> {
        self.resources.get(resource)
    }

    /// How long a job of `pool` waits for a slot.
    pub fn wait_of(&self, pool: &str) -> Duration {
        self.waits
            .get(pool)
            .copied()
            .unwrap_or(Duration::from_secs(DEFAULT_CONCURRENCY_WAIT_SECS))
    }
}
