//! GitHub-hosted larger runners of an organisation: the only runners in a runner group whose
//! concurrency GitHub lets an API set. Endpoints and shapes as in GitHub's OpenAPI description
//! (`@octokit/openapi`, `generated/api.github.com.json`): `actions/list-hosted-runners-for-org`
//! (`GET /orgs/{org}/actions/hosted-runners`, `{total_count, runners}` of
//! `actions-hosted-runner`) and `actions/update-hosted-runner-for-org` (`PATCH
//! /orgs/{org}/actions/hosted-runners/{hosted_runner_id}`, whose `maximum_runners` is "the
//! maximum amount of runners to scale up to. Runners will not auto-scale above this number").
//! Both need an organisation owner's token or the `manage_runners:org` scope.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::client::{Client, Error, Method};

/// A larger runner (`actions-hosted-runner`): only what gatehouse needs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HostedRunner {
    pub id: u64,
    /// Its name, which is also its one label: workflows reach it with `runs-on: <name>`.
    pub name: String,
    /// The runner group it belongs to.
    #[serde(default)]
    pub runner_group_id: Option<u64>,
    /// How many machines GitHub starts for it at most; the description's default is 10.
    #[serde(default = "default_maximum")]
    pub maximum_runners: u32,
}

/// `maximum_runners` when GitHub leaves it out (the schema's `default: 10`).
fn default_maximum() -> u32 {
    10
}

/// Every larger runner of `org`. `None` when the organisation does not exist or the token may
/// not see its runners.
pub async fn list(client: &Client, org: &str) -> Result<Option<Vec<HostedRunner>>, Error> {
    client
        .get_all(&["orgs", org, "actions", "hosted-runners"], Some("runners"))
        .await
}

/// Sets the `maximum_runners` of larger runner `id` of `org`.
pub async fn set_maximum(client: &Client, org: &str, id: u64, maximum: u32) -> Result<(), Error> {
    let id = id.to_string();
    let body = serde_json::json!({ "maximum_runners": maximum });
    let _: IgnoredAny = client
        .mutate(
            Method::PATCH,
            &["orgs", org, "actions", "hosted-runners", &id],
            Some(&body),
        )
        .await?;
    Ok(())
}
