//! Where Cirun is switched on: the repositories of Cirun's own GitHub App installation, and
//! Cirun's own activation of each.
//!
//! Cirun reaches a repository through its GitHub App installation (cirun-py's
//! `install_github_app` and conda-smithy's `enable_cirun_for_project` add the repository with
//! `PUT /user/installations/{installation_id}/repositories/{repository_id}`; conda-forge's
//! installation is 18453316, conda-smithy `cirun_utils.get_cirun_installation_id`), and is
//! switched on there at Cirun (cirun-py `Cirun.set_repo(name, active)`: `POST {api}/repo` with
//! the JSON body `{"repository": "owner/name", "active": true | false}`, answered 200 or 201
//! with a JSON object; conda-smithy calls `set_repo(f"{owner}/{repo}", installation_id=...)`
//! before `add_repo_to_resources` when it enables a feedstock, and nothing when it removes one).
//!
//! Read with `GET /user/installations/{installation_id}/repositories` (operation
//! `apps/list-installation-repos-for-authenticated-user` of @octokit/openapi) and an
//! organisation owner's token. Cirun's own list of active repositories (cirun-py `get_repos`,
//! `GET {api}/repo`, "List active repositories") is not read: neither cirun-py nor Cirun's
//! documentation (docs.cirun.io, "Developer API") says what it answers. The installation is
//! what gatehouse observes instead: Cirun gets a repository's jobs only through it (a GitHub
//! App receives the `workflow_job` events of the repositories it is installed on), so a
//! repository outside it cannot start Cirun runners whatever Cirun's flag says, and one inside
//! it without a grant is reported (`audit --online`) even when Cirun's flag may be off.
//!
//! `apply` keeps both in line with the ledger ([`Switch`]): a repository that gains a grant of
//! the provider's resources is switched on as conda-smithy does it (`set_repo` active, then the
//! installation); one in the installation without a grant is reported, and with
//! `--deactivate-ungranted` switched off (`set_repo` inactive, then out of the installation).
//! The installation changes last, so a run that fails half way leaves the repository where the
//! next run finds it and does the whole step again (`set_repo` sets a flag: sending it twice is
//! harmless).

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::de::IgnoredAny;
use serde_json::json;

use super::{Listed, RemovalLimit, all_done, repository_id};
use crate::github::{Client, Method};

/// The repositories of app installation `installation`, with their ids.
async fn listed(client: &Client, installation: u64) -> anyhow::Result<Vec<Listed>> {
    let id = installation.to_string();
    client
        .get_all(
            &["user", "installations", &id, "repositories"],
            Some("repositories"),
        )
        .await?
        .with_context(|| {
            format!("the app installation {id} does not exist or the token cannot see it")
        })
}

/// The repositories (`owner/name`) of app installation `installation`.
pub async fn installed_repositories(
    client: &Client,
    installation: u64,
) -> anyhow::Result<Vec<String>> {
    Ok(listed(client, installation)
        .await?
        .into_iter()
        .map(|r| r.full_name)
        .collect())
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

/// What one run does to Cirun's switch.
#[derive(Debug, Default, PartialEq)]
pub struct SwitchPlan {
    /// Granted repositories outside the installation, in the ledger's spelling: switched on.
    pub activate: Vec<String>,
    /// Installed repositories without a grant that this run switches off.
    pub deactivate: Vec<String>,
    /// Installed repositories without a grant that stay as they are (reported).
    pub ungranted: Vec<String>,
}

/// Compares the installation with the ledger (`granted`, as [`ungranted`] takes it).
/// `deactivate`: `apply --deactivate-ungranted`.
pub fn plan(installed: &[String], granted: &BTreeSet<String>, deactivate: bool) -> SwitchPlan {
    let there: BTreeSet<String> = installed.iter().map(|r| r.to_ascii_lowercase()).collect();
    let activate = granted
        .iter()
        .filter(|r| !there.contains(&r.to_ascii_lowercase()))
        .cloned()
        .collect();
    let off = ungranted(installed, granted);
    let (deactivate, ungranted) = if deactivate {
        (off, Vec::new())
    } else {
        (Vec::new(), off)
    };
    SwitchPlan {
        activate,
        deactivate,
        ungranted,
    }
}

/// Cirun's switch for the repositories of one Cirun provider: its app installation (changed
/// with `admin`, an organisation owner's GitHub token) and Cirun's activation (`cirun`, needed
/// only when something changes).
pub struct Switch {
    pub admin: Arc<Client>,
    pub cirun: anyhow::Result<Arc<Client>>,
    pub installation: u64,
}

impl Switch {
    /// Switches Cirun on for every granted repository outside the installation and, with
    /// `deactivate`, off for every installed one without a grant (at most what `limit` lets
    /// one run remove). What it did, and what it left.
    pub async fn reconcile(
        &self,
        granted: &BTreeSet<String>,
        deactivate: bool,
        limit: RemovalLimit,
    ) -> anyhow::Result<SwitchPlan> {
        let installation = self.installation.to_string();
        let listed = listed(&self.admin, self.installation).await?;
        let names: Vec<String> = listed.iter().map(|r| r.full_name.clone()).collect();
        let plan = plan(&names, granted, deactivate);
        if limit.exceeded(plan.deactivate.len(), names.len()) {
            bail!(
                "Cirun's app installation {installation} would lose {} of its {} repositories; \
                 that is more than one run may switch off. Check the ledger, then run again \
                 with --allow-mass-revoke",
                plan.deactivate.len(),
                names.len()
            );
        }
        if plan.activate.is_empty() && plan.deactivate.is_empty() {
            return Ok(plan);
        }
        let cirun = self.cirun.as_ref().map_err(|e| {
            anyhow::anyhow!(
                "switching Cirun on or off at a repository (cirun-py's `set_repo`) needs Cirun's \
                 API: {e:#}"
            )
        })?;
        let mut failures = Vec::new();
        // One repository's failure must not hold up the others.
        for (full, active) in plan
            .activate
            .iter()
            .map(|r| (r, true))
            .chain(plan.deactivate.iter().map(|r| (r, false)))
        {
            let result = async {
                // cirun-py `set_repo`: the repository with its owner, and the flag.
                let body = json!({ "repository": full, "active": active });
                let _: IgnoredAny = cirun
                    .mutate(Method::POST, &["repo"], Some(&body))
                    .await
                    .context("Cirun's `POST repo`")?;
                let id = match listed
                    .iter()
                    .find(|r| r.full_name.eq_ignore_ascii_case(full))
                {
                    Some(r) => r.id,
                    None => repository_id(&self.admin, full).await?,
                };
                let (method, what) = if active {
                    (Method::PUT, "adding it to")
                } else {
                    (Method::DELETE, "removing it from")
                };
                let id = id.to_string();
                let path = ["user", "installations", &installation, "repositories", &id];
                let _: IgnoredAny = self
                    .admin
                    .mutate(method, &path, None::<&()>)
                    .await
                    .with_context(|| format!("{what} Cirun's app installation {installation}"))?;
                anyhow::Ok(())
            }
            .await;
            if let Err(e) = result {
                let verb = if active {
                    "switching on"
                } else {
                    "switching off"
                };
                failures.push(format!("{verb} Cirun at {full}: {e:#}"));
            }
        }
        all_done(&failures, plan.activate.len() + plan.deactivate.len())?;
        Ok(plan)
    }
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

    #[test]
    fn granted_repositories_outside_the_installation_are_switched_on_and_others_only_on_request() {
        let installed = vec![
            "conda-forge/PyTorch-CPU-feedstock".to_string(),
            "conda-forge/intruder-feedstock".to_string(),
        ];
        let granted = BTreeSet::from([
            "conda-forge/pytorch-cpu-feedstock".to_string(),
            "conda-forge/new-feedstock".to_string(),
        ]);
        let reported = plan(&installed, &granted, false);
        assert_eq!(reported.activate, ["conda-forge/new-feedstock"]);
        assert!(reported.deactivate.is_empty());
        assert_eq!(reported.ungranted, ["conda-forge/intruder-feedstock"]);
        let switched = plan(&installed, &granted, true);
        assert_eq!(switched.deactivate, ["conda-forge/intruder-feedstock"]);
        assert!(switched.ungranted.is_empty());
        let all = BTreeSet::from([
            "conda-forge/pytorch-cpu-feedstock".to_string(),
            "conda-forge/intruder-feedstock".to_string(),
        ]);
        assert_eq!(plan(&installed, &all, true), SwitchPlan::default());
    }
}
