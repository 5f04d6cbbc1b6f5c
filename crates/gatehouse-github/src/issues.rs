//! Issues the guard keeps in the access repository (a sponsor pool's alerts): `issues/create`
//! (`POST /repos/{owner}/{repo}/issues` with `{"title", "body"}`) and `issues/update`
//! (`PATCH /repos/{owner}/{repo}/issues/{issue_number}`), as GitHub's OpenAPI description
//! (`@octokit/openapi`) gives them; both answer the `issue` object, whose `number` names it.

use serde::Deserialize;

use crate::client::{Client, Error, Method};

#[derive(Deserialize)]
struct Issue {
    number: u64,
}

impl Client {
    /// Edits issue `existing` of `repository` (title and body; it is reopened) when given, else
    /// opens one. Returns the issue's number.
    pub async fn write_issue(
        &self,
        repository: &str,
        existing: Option<u64>,
        title: &str,
        body: &str,
    ) -> Result<u64, Error> {
        let (owner, name) = repository
            .split_once('/')
            .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| {
                Error::Settings(format!("`{repository}` is not an owner/name repository"))
            })?;
        let issue: Issue = match existing {
            Some(n) => {
                let n = n.to_string();
                self.mutate(
                    Method::PATCH,
                    &["repos", owner, name, "issues", &n],
                    Some(&serde_json::json!({ "title": title, "body": body, "state": "open" })),
                )
                .await?
            }
            None => {
                self.mutate(
                    Method::POST,
                    &["repos", owner, name, "issues"],
                    Some(&serde_json::json!({ "title": title, "body": body })),
                )
                .await?
            }
        };
        Ok(issue.number)
    }
}
