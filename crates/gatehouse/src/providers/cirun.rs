//! Cirun: the access policy (the same structure as `.access.yml`) read with
//! `GET {base}/access-control` and replaced whole with one `PUT {base}/access-control`; or,
//! with `via: access-repo`, the rendered `.access.yml` itself, read from the organisation's
//! `access_repo` and committed there straight to the default branch through GitHub's contents
//! API (no pull request left waiting; no commit when the text is already the same).
//!
//! The policy is rendered by `gatehouse_policy::render::cirun` (the same text `render cirun`
//! prints), so the API and the file can never disagree. Gatehouse owns the whole policy: an
//! entry the ledger does not explain is removed by the next write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_core::desired::ProviderChange;
use jiff::civil::Date;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::contents::{read_file, write_file};
use super::{Access, Observed, Provider, empty_access};
use crate::github::{Client, Method};

const PATH: &[&str] = &["access-control"];
/// Where Cirun reads the policy in the access repository.
pub const ACCESS_FILE: &str = ".access.yml";

/// Where the policy is written.
enum Target {
    /// Cirun's API.
    Api,
    /// `.access.yml` in GitHub repository `owner/name`; the blob's sha once observed.
    Repository {
        owner: String,
        name: String,
        seen: Mutex<Option<String>>,
    },
}

pub struct Cirun {
    client: Arc<Client>,
    org: String,
    target: Target,
    /// The rendered policy, as committed to the access repository.
    yaml: String,
    /// The rendered policy, as sent.
    body: Value,
    policy: Policy,
    desired: Access,
}

impl Cirun {
    /// Writes through Cirun's API (`client` is Cirun's).
    pub fn new(
        client: Arc<Client>,
        repo: &Repo,
        name: &str,
        org: &str,
        today: Date,
    ) -> anyhow::Result<Self> {
        Self::with_target(client, repo, name, org, today, Target::Api)
    }

    /// Commits `.access.yml` to `org/access_repo` (`client` is GitHub's).
    pub fn in_repository(
        client: Arc<Client>,
        repo: &Repo,
        name: &str,
        org: &str,
        access_repo: &str,
        today: Date,
    ) -> anyhow::Result<Self> {
        let target = Target::Repository {
            owner: org.to_string(),
            name: access_repo.to_string(),
            seen: Mutex::new(None),
        };
        Self::with_target(client, repo, name, org, today, target)
    }

    fn with_target(
        client: Arc<Client>,
        repo: &Repo,
        name: &str,
        org: &str,
        today: Date,
        target: Target,
    ) -> anyhow::Result<Self> {
        let yaml = gatehouse_policy::render::cirun::render(repo, Some(name), today)?;
        let body: Value = serde_saphyr::from_str(&yaml).with_context(|| {
            format!(
                "reading back the rendered Cirun policy ({} bytes; one that lists every ToS \
                 login in each entry grows fast: give the provider `users_from_json`)",
                yaml.len()
            )
        })?;
        let policy = Policy::parse(&body).context("reading back the rendered Cirun policy")?;
        let mut desired = empty_access(repo, name);
        desired.extend(policy.access(org));
        Ok(Cirun {
            client,
            org: org.to_string(),
            target,
            yaml,
            body,
            policy,
            desired,
        })
    }
}

impl Provider for Cirun {
    fn desired(&self) -> &Access {
        &self.desired
    }

    async fn observe(&self) -> anyhow::Result<Observed> {
        if let Target::Repository { owner, name, seen } = &self.target {
            let file = read_file(&self.client, owner, name, ACCESS_FILE, None).await?;
            let (policy, same_text) = match &file {
                Some(f) => {
                    let v: Value = serde_saphyr::from_str(&f.text).with_context(|| {
                        format!("{owner}/{name}: {ACCESS_FILE} is not valid YAML")
                    })?;
                    let policy = Policy::parse(&v)
                        .with_context(|| format!("{owner}/{name}: {ACCESS_FILE}"))?;
                    (policy, f.text == self.yaml)
                }
                None => (Policy::default(), false),
            };
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = file.map(|f| f.sha);
            return Ok(Observed {
                access: policy.access(&self.org),
                // Anything but the exact rendered text is rewritten, so that the file stays
                // what `render cirun` prints (and conda-forge's lint accepts).
                stale: !same_text,
            });
        }
        let current: Option<Value> = self.client.get(PATH).await?;
        // No policy yet is an empty one.
        let policy = match current {
            Some(v) => Policy::parse(&v).context("Cirun's access policy")?,
            None => Policy::default(),
        };
        Ok(Observed {
            access: policy.access(&self.org),
            stale: policy != self.policy,
        })
    }

    async fn apply(&self, changes: &[ProviderChange]) -> anyhow::Result<()> {
        if let Target::Repository { owner, name, seen } = &self.target {
            let sha = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let message = match changes {
                [] => "gatehouse: rewrite the access policy from the ledger".to_string(),
                [one] => format!("gatehouse: {one}"),
                many => format!("gatehouse: {} access changes", many.len()),
            };
            return write_file(
                &self.client,
                (owner, name),
                ACCESS_FILE,
                None,
                &self.yaml,
                sha.as_deref(),
                &message,
            )
            .await;
        }
        // One call however many repositories changed: Cirun takes the policy whole.
        let _: IgnoredAny = self
            .client
            .mutate(Method::PUT, PATH, Some(&self.body))
            .await?;
        Ok(())
    }
}

/// A Cirun access policy in a form where order does not count: two policies that grant the
/// same are equal however the server lists them.
#[derive(Debug, Default, PartialEq)]
struct Policy {
    /// Policy id -> the whole policy entry.
    policies: BTreeMap<String, Value>,
    /// Resource -> the ids of the policies that open it.
    access_control: BTreeMap<String, BTreeSet<String>>,
}

impl Policy {
    fn parse(v: &Value) -> anyhow::Result<Policy> {
        let list = |field: &str| -> anyhow::Result<Vec<Value>> {
            match v.get(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => anyhow::bail!("`{field}` is not a list"),
            }
        };
        let text = |entry: &Value, field: &str| -> anyhow::Result<String> {
            entry
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("an entry has no `{field}`: {entry}"))
        };
        let mut policy = Policy::default();
        for p in list("policies")? {
            policy.policies.insert(text(&p, "id")?, p);
        }
        for entry in list("access_control")? {
            let ids = entry
                .get("policies")
                .and_then(Value::as_array)
                .with_context(|| format!("an access_control entry has no `policies`: {entry}"))?
                .iter()
                .filter_map(|id| id.as_str().map(str::to_string));
            policy
                .access_control
                .entry(text(&entry, "resource")?)
                .or_default()
                .extend(ids);
        }
        Ok(policy)
    }

    /// Resource -> repositories, read through the policies (`repo` is a name within `org`).
    fn access(&self, org: &str) -> Access {
        self.access_control
            .iter()
            .map(|(resource, ids)| {
                let repos = ids
                    .iter()
                    .filter_map(|id| self.policies.get(id)?.get("repo")?.as_str())
                    .map(|r| format!("{org}/{r}"))
                    .collect();
                (resource.clone(), repos)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_does_not_count_and_repositories_are_read_through_policies() {
        let a = json!({
            "version": 1,
            "policies": [
                {"id": "x-feedstock-policy", "repo": "x-feedstock", "roles": ["admin"], "pull_request": false},
                {"id": "y-feedstock-policy", "repo": "y-feedstock", "roles": ["admin"], "pull_request": true},
            ],
            "access_control": [{"resource": "gpu", "policies": ["y-feedstock-policy", "x-feedstock-policy"]}],
        });
        let b = json!({
            "version": 1,
            "policies": [
                {"id": "y-feedstock-policy", "repo": "y-feedstock", "roles": ["admin"], "pull_request": true},
                {"id": "x-feedstock-policy", "repo": "x-feedstock", "roles": ["admin"], "pull_request": false},
            ],
            "access_control": [{"resource": "gpu", "policies": ["x-feedstock-policy", "y-feedstock-policy"]}],
        });
        let (pa, pb) = (Policy::parse(&a).unwrap(), Policy::parse(&b).unwrap());
        assert_eq!(pa, pb);
        let access = pa.access("cf");
        assert_eq!(
            access["gpu"],
            BTreeSet::from(["cf/x-feedstock".to_string(), "cf/y-feedstock".to_string()])
        );
        let mut c = b.clone();
        c["policies"][0]["pull_request"] = json!(false);
        assert_ne!(
            pa,
            Policy::parse(&c).unwrap(),
            "a changed flag is a difference"
        );
    }

    #[test]
    fn a_policy_without_ids_is_an_error() {
        let bad = json!({"policies": [{"repo": "x"}], "access_control": []});
        assert!(Policy::parse(&bad).is_err());
    }
}
