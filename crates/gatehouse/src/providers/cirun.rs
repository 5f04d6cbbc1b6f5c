//! Cirun: the access policy (the same structure as `.access.yml`) read with
//! `GET {base}/access-control` and replaced whole with one `PUT {base}/access-control`.
//!
//! The policy is rendered by `gatehouse_policy::render::cirun` (the same text `render cirun`
//! prints), so the API and the file can never disagree. Gatehouse owns the whole policy: an
//! entry the ledger does not explain is removed by the next write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_core::desired::ProviderChange;
use jiff::civil::Date;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::{Access, Observed, Provider, empty_access};
use crate::github::{Client, Method};

const PATH: &[&str] = &["access-control"];

pub struct Cirun {
    client: Arc<Client>,
    org: String,
    /// The rendered policy, as sent.
    body: Value,
    policy: Policy,
    desired: Access,
}

impl Cirun {
    pub fn new(
        client: Arc<Client>,
        repo: &Repo,
        name: &str,
        org: &str,
        today: Date,
    ) -> anyhow::Result<Self> {
        let yaml = gatehouse_policy::render::cirun::render(repo, Some(name), today)?;
        let body: Value =
            serde_saphyr::from_str(&yaml).context("reading back the rendered Cirun policy")?;
        let policy = Policy::parse(&body).context("reading back the rendered Cirun policy")?;
        let mut desired = empty_access(repo, name);
        desired.extend(policy.access(org));
        Ok(Cirun {
            client,
            org: org.to_string(),
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

    async fn apply(&self, _changes: &[ProviderChange]) -> anyhow::Result<()> {
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
