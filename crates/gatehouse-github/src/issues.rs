//! Issues the guard keeps in the access repository (a sponsor pool's alerts): `issues/create`
//! (`POST /repos/{owner}/{repo}/issues` with `{"title", "body"}`) and `issues/update`
//! (`PATCH /repos/{owner}/{repo}/issues/{issue_number}`), as GitHub's OpenAPI description
//! (`@octokit/openapi`) gives them; both answer the `issue` object, whose `number` names it.
//! `issues/list-for-repo` (`GET /repos/{owner}/{repo}/issues`, the open issues and pull
//! requests by default) finds one opened before by its title.

use serde::Deserialize;

use crate::client::{Client, Error, Method};

#[derive(Deserialize)]
struct Issue {
    number: u64,
}

/// `owner/name` split, or why not.
fn owner_name(repository: &str) -> Result<(&str, &str), Error> {
    repository
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| Error::Settings(format!("`{repository}` is not an owner/name repository")))
}

impl Client {
    /// The open issue of `repository` whose title starts with `prefix` (the lowest number
    /// when several do), if there is one.
    pub async fn find_open_issue(
        &self,
        repository: &str,
        prefix: &str,
    ) -> Result<Option<u64>, Error> {
        #[derive(Deserialize)]
        struct Listed {
            number: u64,
            title: String,
        }
        let (owner, name) = owner_name(repository)?;
        let open: Vec<Listed> = self
            .get_all(&["repos", owner, name, "issues"], None)
            .await?
            .unwrap_or_default();
        Ok(open
            .into_iter()
            .filter(|i| i.title.starts_with(prefix))
            .map(|i| i.number)
            .min())
    }

    /// Edits issue `existing` of `repository` (title and body; it is reopened) when given, else
    /// opens one. Returns the issue's number.
    pub async fn write_issue(
        &self,
        repository: &str,
        existing: Option<u64>,
        title: &str,
        body: &str,
    ) -> Result<u64, Error> {
        let (owner, name) = owner_name(repository)?;
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
