//! A GitHub App installation whose selected repositories are the projects holding its
//! resources: `GET /user/installations/{id}/repositories` to observe, one `PUT` or `DELETE
//! /user/installations/{id}/repositories/{repository_id}` per change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use gatehouse_core::desired::ProviderChange;
use serde::de::IgnoredAny;

use super::{Access, Listed, Observed, Provider, repository_id};
use crate::github::{Client, Method};

pub struct GithubApp {
    client: Arc<Client>,
    installation: u64,
    /// One key (this provider's resources) -> the repositories the installation should hold.
    desired: Access,
    /// Repository ids seen by `observe`, by lower-cased name: removing one needs no lookup.
    ids: Mutex<HashMap<String, u64>>,
}

impl GithubApp {
    pub fn new(client: Arc<Client>, installation: u64, desired: Access) -> Self {
        GithubApp {
            client,
            installation,
            desired,
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn known_id(&self, repository: &str) -> Option<u64> {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(&repository.to_ascii_lowercase()).copied()
    }
}

impl Provider for GithubApp {
    fn desired(&self) -> &Access {
        &self.desired
    }

    async fn observe(&self) -> anyhow::Result<Observed> {
        let id = self.installation.to_string();
        let listed: Vec<Listed> = self
            .client
            .get_all(
                &["user", "installations", &id, "repositories"],
                Some("repositories"),
            )
            .await?
            .with_context(|| {
                format!("the app installation {id} does not exist or the token cannot see it")
            })?;
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for r in &listed {
            ids.insert(r.full_name.to_ascii_lowercase(), r.id);
        }
        let key = self.desired.keys().next().cloned().unwrap_or_default();
        let repos = listed.into_iter().map(|r| r.full_name).collect();
        Ok(Observed {
            access: Access::from([(key, repos)]),
            stale: false,
            limits: Vec::new(),
        })
    }

    async fn apply(&self, changes: &[ProviderChange]) -> anyhow::Result<()> {
        let installation = self.installation.to_string();
        let mut failures = Vec::new();
        // One repository's failure (renamed, deleted) must not hold up the others.
        for change in changes {
            let result = async {
                let id = match self.known_id(&change.repository) {
                    Some(id) => id,
                    None => repository_id(&self.client, &change.repository).await?,
                };
                let method = if change.add {
                    Method::PUT
                } else {
                    Method::DELETE
                };
                let id = id.to_string();
                let path = ["user", "installations", &installation, "repositories", &id];
                let _: IgnoredAny = self.client.mutate(method, &path, None::<&()>).await?;
                anyhow::Ok(())
            }
            .await;
            if let Err(e) = result {
                failures.push(format!("{}: {e:#}", change.repository));
            }
        }
        super::all_done(&failures, changes.len())
    }
}
