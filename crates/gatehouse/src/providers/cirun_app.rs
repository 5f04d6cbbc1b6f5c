//! Where Cirun is switched on: the repositories of Cirun's own GitHub App installation.
//!
//! Cirun reaches a repository through its GitHub App installation (cirun-py's
//! `install_github_app` and conda-smithy's `enable_cirun_for_project` add the repository with
//! `PUT /user/installations/{installation_id}/repositories/{repository_id}`; conda-forge's
//! installation is 18453316, conda-smithy `cirun_utils.get_cirun_installation_id`). A
//! repository there that holds no grant of any resource the Cirun provider serves is a way
//! in that the access policy may not close: `audit --online` reports it.
//!
//! Read with `GET /user/installations/{installation_id}/repositories` (operation
//! `apps/list-installation-repos-for-authenticated-user` of @octokit/openapi) and an
//! organisation owner's token. Cirun's own activation flag (cirun-py `set_repo`, `POST /repo`)
//! is not read: cirun-py does not describe what `GET /repo` answers.

use std::collections::BTreeSet;

use anyhow::Context;

use crate::github::Client;

#[derive(serde::Deserialize)]
struct Listed {
    full_name: String,
}

/// The repositories (`owner/name`) of app installation `installation`.
pub async fn installed_repositories(
    client: &Client,
    installation: u64,
) -> anyhow::Result<Vec<String>> {
    let id = installation.to_string();
    let listed: Vec<Listed> = client
        .get_all(
            &["user", "installations", &id, "repositories"],
            Some("repositories"),
        )
        .await?
        .with_context(|| {
            format!("the app installation {id} does not exist or the token cannot see it")
        })?;
    Ok(listed.into_iter().map(|r| r.full_name).collect())
}

/// The installed repositories that hold no grant (`granted`: `owner/name` of every repository
/// holding a grant of the provider's resources), compared without case, in listing order.
pub fn ungranted(installed: &[String], granted: &BTreeSet<String>) -> Vec<String> {
    let granted: BTreeSet<String> = granted.iter().map(|r| r.to_ascii_lowercase()).collect();
    installed
        .iter()
        .filter(|r| !granted.contains(&r.to_ascii_lowercase()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repositories_without_a_grant_are_ungranted_whatever_their_case() {
        let installed = vec![
            "conda-forge/PyTorch-CPU-feedstock".to_string(),
            "conda-forge/intruder-feedstock".to_string(),
        ];
        let granted = BTreeSet::from(["conda-forge/pytorch-cpu-feedstock".to_string()]);
        assert_eq!(
            ungranted(&installed, &granted),
            ["conda-forge/intruder-feedstock"]
        );
    }
}
