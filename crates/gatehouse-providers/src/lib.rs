//! Providers: the services that let a repository use a resource (Cirun's access policy, a
//! GitHub App installation, a runner group). Each one can say what it grants now and make a
//! list of changes; everything else is shared here.
//!
//! Reconciling is level-based: the desired state comes from the ledger alone, the observed
//! state from the provider's API, and only their difference is sent. So a run that failed half
//! way converges when run again, and a run with nothing to do makes no mutating call.
//! Pull requests to the projects' own configuration (`send_pr`) are one more provider,
//! `feedstock-config`, which every grant with `send_pr` uses whichever provider serves it.

mod cirun;
pub mod cirun_app;
pub mod contents;
pub mod feedstock_config;
mod github_app;
mod runner_group;
mod yaml_lines;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::desired::{DesiredState, ProviderChange, diff};
use gatehouse_core::model::{CirunVia, ProviderKind, ProviderSettings};
use jiff::civil::Date;

use gatehouse_github as github;
use github::{Client, Secret, Service, Settings};

pub use cirun::Cirun;
pub use feedstock_config::FeedstockConfig;
pub use github_app::GithubApp;
pub use runner_group::{RunnerGroup, group_repositories, runner_groups};

/// Resource -> repositories (`org/name`) it lets in.
pub type Access = BTreeMap<String, BTreeSet<String>>;

/// What a provider grants now.
#[derive(Debug, Default)]
pub struct Observed {
    pub access: Access,
    /// Something beyond membership differs from what the ledger wants (a Cirun policy's roles
    /// or users, say), so the provider must be rewritten even if no repository comes or goes.
    pub stale: bool,
    /// The provider's own concurrency limits that differ from the ledger's caps (a runner
    /// group's GitHub-hosted larger runners: see [`LimitChange`]).
    pub limits: Vec<LimitChange>,
}

/// One concurrency limit of a provider's own to set from the ledger: the `maximum_runners` of a
/// GitHub-hosted larger runner in a runner group ([`gatehouse_core::desired::runner_limit`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LimitChange {
    pub provider: String,
    /// The runner's name (its label) and GitHub's id of it.
    pub runner: String,
    pub id: u64,
    /// Its `maximum_runners` now, and what the ledger's caps make it.
    pub from: u32,
    pub to: u32,
    /// The resources it serves.
    pub resources: Vec<String>,
    /// The provider's `max_concurrency` sets it (rather than the resources' caps).
    pub by_max_concurrency: bool,
}

impl std::fmt::Display for LimitChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = if self.by_max_concurrency {
            format!("`{}`'s max_concurrency", self.provider)
        } else if self.resources.len() == 1 {
            format!("the concurrency cap of {}", self.resources[0])
        } else {
            format!(
                "the concurrency caps of {}, added up",
                self.resources.join(", ")
            )
        };
        write!(
            f,
            "~ {}: set maximum_runners of GitHub-hosted runner `{}` from {} to {} ({why})",
            self.provider, self.runner, self.from, self.to
        )
    }
}

/// One provider: what it should grant, what it grants, and how to change it.
// Its futures are driven on the command line's one current-thread runtime, never sent to
// another thread, so they need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Provider {
    /// What the ledger wants it to grant, keyed the way [`Provider::observe`] reports.
    fn desired(&self) -> &Access;
    async fn observe(&self) -> anyhow::Result<Observed>;
    /// Makes `changes` (observed -> desired). A provider that sets everything at once sends
    /// its whole desired state instead.
    async fn apply(&self, changes: &[ProviderChange]) -> anyhow::Result<()>;
    /// Sets the provider's own concurrency limits that [`Provider::observe`] found to differ
    /// from the ledger's caps, each on its own: one that fails leaves the others set, and the
    /// error names every one that failed. Only providers that report [`Observed::limits`] get
    /// any.
    async fn set_limits(&self, limits: &[LimitChange]) -> anyhow::Result<()> {
        match limits {
            [] => Ok(()),
            _ => bail!("this provider has no concurrency limit of its own to set"),
        }
    }
}

/// A provider ready to reconcile: one configured in gatehouse.yml, or the configuration pull
/// requests of `send_pr` grants. Every match on it is exhaustive, so a new kind cannot be
/// skipped silently by `apply` or `audit`.
pub enum Configured {
    Cirun(Cirun),
    GithubApp(GithubApp),
    RunnerGroup(RunnerGroup),
    FeedstockConfig(FeedstockConfig),
}

/// How much one run may take away from a provider without `--allow-mass-revoke`.
#[derive(Clone, Copy, Debug)]
pub struct RemovalLimit {
    /// `None`: any amount.
    pub max_share: Option<f64>,
}

impl RemovalLimit {
    /// Whether removing `removals` of `held` entries is more than one run may do. One removal
    /// is never "mass", or a small organisation could not revoke anything.
    pub fn exceeded(&self, removals: usize, held: usize) -> bool {
        self.max_share
            .is_some_and(|share| removals > 1 && removals as f64 > share * held as f64)
    }
}

/// What reconciling one provider did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub changes: Vec<ProviderChange>,
    /// The provider was written although no repository came or went (see [`Observed::stale`]).
    pub rewritten: bool,
    /// The provider's own concurrency limits that were set.
    pub limits: Vec<LimitChange>,
}

/// How a provider differs from the ledger: what `apply` would change there, and what `audit`
/// reports as drift.
#[derive(Debug, Default)]
pub struct Drift {
    /// The changes that turn what the provider grants into what the ledger wants, with
    /// repository names spelt as the ledger spells them (see [`align_case`]).
    pub changes: Vec<ProviderChange>,
    /// Something beyond membership differs (see [`Observed::stale`]).
    pub stale: bool,
    /// How many (resource, repository) entries the provider grants now.
    pub held: usize,
    /// Its own concurrency limits that differ from the ledger's caps.
    pub limits: Vec<LimitChange>,
}

/// Asks provider `name` what it grants and compares that with the ledger. Reads only.
pub async fn drift(repo: &Repo, name: &str, provider: &Configured) -> anyhow::Result<Drift> {
    match provider {
        Configured::Cirun(p) => drift_of(repo, name, p).await,
        Configured::GithubApp(p) => drift_of(repo, name, p).await,
        Configured::RunnerGroup(p) => drift_of(repo, name, p).await,
        Configured::FeedstockConfig(p) => drift_of(repo, name, p).await,
    }
}

async fn drift_of<P: Provider>(repo: &Repo, name: &str, provider: &P) -> anyhow::Result<Drift> {
    let desired = provider.desired();
    let mut observed = provider.observe().await?;
    align_case(&mut observed.access, desired);
    Ok(Drift {
        changes: changes(repo, name, &observed.access, desired),
        stale: observed.stale,
        held: observed.access.values().map(BTreeSet::len).sum(),
        limits: observed.limits,
    })
}

/// Makes provider `name` grant what the ledger says.
pub async fn reconcile(
    repo: &Repo,
    name: &str,
    provider: &Configured,
    limit: RemovalLimit,
) -> anyhow::Result<Reconciled> {
    match provider {
        Configured::Cirun(p) => reconcile_one(repo, name, p, limit).await,
        Configured::GithubApp(p) => reconcile_one(repo, name, p, limit).await,
        Configured::RunnerGroup(p) => reconcile_one(repo, name, p, limit).await,
        Configured::FeedstockConfig(p) => reconcile_one(repo, name, p, limit).await,
    }
}

/// Sends (or undoes) the configuration pull requests of `send_pr` grants.
pub async fn reconcile_config(
    repo: &Repo,
    provider: &FeedstockConfig,
    limit: RemovalLimit,
) -> anyhow::Result<Reconciled> {
    reconcile_one(repo, feedstock_config::NAME, provider, limit).await
}

async fn reconcile_one<P: Provider>(
    repo: &Repo,
    name: &str,
    provider: &P,
    limit: RemovalLimit,
) -> anyhow::Result<Reconciled> {
    let Drift {
        changes,
        stale,
        held,
        limits,
    } = drift_of(repo, name, provider).await?;
    let removals = changes.iter().filter(|c| !c.add).count();
    if limit.exceeded(removals, held) {
        bail!(
            "{name} would lose {removals} of the {held} repositories it lets in; that is more than \
             one run may remove. Check the ledger, then run again with --allow-mass-revoke"
        );
    }
    let rewritten = changes.is_empty() && stale;
    let membership = if !changes.is_empty() || rewritten {
        provider.apply(&changes).await
    } else {
        Ok(())
    };
    // The limits are set whether or not the membership went through: each is its own call.
    let limited = provider.set_limits(&limits).await;
    match (membership, limited) {
        (Ok(()), Ok(())) => Ok(Reconciled {
            changes,
            rewritten,
            limits,
        }),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(m), Err(l)) => Err(anyhow::anyhow!("{m:#}; and {l:#}")),
    }
}

/// The changes that turn `observed` into `desired` at provider `name`.
pub fn changes(
    repo: &Repo,
    name: &str,
    observed: &Access,
    desired: &Access,
) -> Vec<ProviderChange> {
    let one = |a: &Access| DesiredState::from([(name.to_string(), a.clone())]);
    diff(repo, &one(observed), &one(desired))
}

/// GitHub compares repository names case-insensitively and answers with its own spelling; use
/// the ledger's, so that a difference in case is not a change.
fn align_case(observed: &mut Access, desired: &Access) {
    let spelling: BTreeMap<String, &String> = desired
        .values()
        .flatten()
        .map(|r| (r.to_ascii_lowercase(), r))
        .collect();
    for repos in observed.values_mut() {
        *repos = std::mem::take(repos)
            .into_iter()
            .map(|r| match spelling.get(&r.to_ascii_lowercase()) {
                Some(s) => (*s).clone(),
                None => r,
            })
            .collect();
    }
}

/// The resources served by provider `name`, each with no repositories yet: a resource whose
/// last grant went away must still be compared, to empty it at the provider.
fn empty_access(repo: &Repo, name: &str) -> Access {
    repo.resources
        .iter()
        .filter(|r| r.value.provider.as_str() == name)
        .map(|r| (r.value.name.value.clone(), BTreeSet::new()))
        .collect()
}

/// For providers that hold one set of repositories for all their resources (an app
/// installation, a runner group): the desired set under one key naming those resources.
fn merged_access(repo: &Repo, name: &str, desired: &DesiredState) -> Access {
    let resources: Vec<String> = empty_access(repo, name).into_keys().collect();
    let key = if resources.is_empty() {
        name.to_string()
    } else {
        resources.join(", ")
    };
    let repos: BTreeSet<String> = desired
        .get(name)
        .into_iter()
        .flat_map(|a| a.values().flatten().cloned())
        .collect();
    Access::from([(key, repos)])
}

/// The API clients, made once per run from the environment; a missing token is an error for
/// the providers that need it, not for the others.
pub struct Clients {
    github: Result<Arc<Client>, String>,
    cirun: Result<Arc<Client>, String>,
    /// For `github-app` providers: an organisation owner's user token ([`ADMIN_TOKEN_VAR`]).
    admin: Result<Arc<Client>, String>,
}

/// The variable that holds a user token of an organisation owner: listing and changing another
/// App's installation (`/user/installations/...`) needs one; an App's own token cannot.
pub const ADMIN_TOKEN_VAR: &str = "GATEHOUSE_ADMIN_TOKEN";

/// The client of `github-app` providers: [`ADMIN_TOKEN_VAR`], or `GITHUB_TOKEN` while it is not
/// set (`doctor` reports that).
pub fn admin_client_from_env() -> anyhow::Result<Client> {
    match std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(token) => Ok(Client::new(
            Secret::new(token),
            Settings::for_service(Service::GitHub)?,
        )?),
        None => client_from_env(Service::GitHub),
    }
}

impl Clients {
    pub fn from_env() -> Self {
        let make = |service| {
            client_from_env(service)
                .map(Arc::new)
                .map_err(|e| format!("{e:#}"))
        };
        Clients {
            github: make(Service::GitHub),
            cirun: make(Service::Cirun),
            admin: admin_client_from_env()
                .map(Arc::new)
                .map_err(|e| format!("{e:#}")),
        }
    }

    pub fn github(&self) -> anyhow::Result<Arc<Client>> {
        self.get(Service::GitHub)
    }

    /// Cirun's client (`CIRUN_API_KEY`).
    pub fn cirun(&self) -> anyhow::Result<Arc<Client>> {
        self.get(Service::Cirun)
    }

    /// The organisation owner's client (see [`ADMIN_TOKEN_VAR`]).
    pub fn admin(&self) -> anyhow::Result<Arc<Client>> {
        self.admin.clone().map_err(anyhow::Error::msg)
    }

    fn get(&self, service: Service) -> anyhow::Result<Arc<Client>> {
        let client = match service {
            Service::GitHub => &self.github,
            Service::Cirun => &self.cirun,
        };
        client.clone().map_err(anyhow::Error::msg)
    }
}

/// A client for `service` with its token from the environment.
pub fn client_from_env(service: Service) -> anyhow::Result<Client> {
    let var = service.token_var();
    let token = std::env::var(var).ok().filter(|t| !t.trim().is_empty());
    let Some(token) = token else {
        bail!("{var} is not set: {} needs it", service.name());
    };
    Ok(Client::new(
        Secret::new(token),
        Settings::for_service(service)?,
    )?)
}

/// The service a provider kind talks to.
pub fn service_of(kind: ProviderKind) -> Service {
    match kind {
        ProviderKind::Cirun => Service::Cirun,
        ProviderKind::GithubApp | ProviderKind::RunnerGroup => Service::GitHub,
    }
}

/// The service a configured provider writes through: a Cirun provider that commits
/// `.access.yml` (`via: access-repo`, the default) talks to GitHub only; one with `via: api`
/// to Cirun (and to GitHub, to merge the pull request Cirun opens: see [`services_for`]).
pub fn service_for(settings: &ProviderSettings) -> Service {
    match settings {
        ProviderSettings::Cirun(cirun) if cirun.via() == CirunVia::AccessRepo => Service::GitHub,
        other => service_of(other.kind()),
    }
}

/// Every service a configured provider needs a token for. A Cirun provider that names Cirun's
/// app installation also switches Cirun on and off at repositories (cirun-py's `set_repo`,
/// see [`cirun_app`]), which needs Cirun's key in either `via`.
pub fn services_for(settings: &ProviderSettings) -> Vec<Service> {
    match settings {
        ProviderSettings::Cirun(cirun) if cirun.via() == CirunVia::Api => {
            vec![Service::Cirun, Service::GitHub]
        }
        ProviderSettings::Cirun(cirun) if cirun.installation_id.is_some() => {
            vec![Service::GitHub, Service::Cirun]
        }
        _ => vec![service_for(settings)],
    }
}

/// Provider `name` of gatehouse.yml, with what it should grant as of `today`.
pub fn configure(
    repo: &Repo,
    name: &str,
    settings: &ProviderSettings,
    today: Date,
    clients: &Clients,
) -> anyhow::Result<Configured> {
    // `github-app` providers change another App's installation: an owner's token (`admin`).
    let client = match settings.kind() {
        ProviderKind::GithubApp => clients.admin.clone().map_err(anyhow::Error::msg)?,
        _ => clients.get(service_for(settings))?,
    };
    let org = repo
        .settings
        .as_ref()
        .map(|s| s.value.org.value.clone())
        .context("the repository has no gatehouse.yml")?;
    let desired = gatehouse_core::desired::desired_state(repo, today);
    Ok(match settings {
        ProviderSettings::Cirun(cirun) => {
            let access_repo = &cirun.access_repo.value;
            match cirun.via() {
                CirunVia::AccessRepo => Configured::Cirun(Cirun::in_repository(
                    client,
                    repo,
                    name,
                    &org,
                    access_repo,
                    today,
                )?),
                CirunVia::Api => {
                    let github = clients.github().with_context(|| {
                        format!(
                            "provider `{name}` (via: api) merges the pull request Cirun opens                              on {org}/{access_repo} through GitHub"
                        )
                    })?;
                    Configured::Cirun(Cirun::new(
                        client,
                        github,
                        repo,
                        name,
                        &org,
                        access_repo,
                        today,
                    )?)
                }
            }
        }
        ProviderSettings::GithubApp(app) => {
            let id = app.installation_id.value;
            let access = merged_access(repo, name, &desired);
            Configured::GithubApp(GithubApp::new(client, id, access))
        }
        ProviderSettings::RunnerGroup(runners) => {
            let group = runners.group.value.clone();
            let access = merged_access(repo, name, &desired);
            let limits = gatehouse_core::desired::runner_limits(repo, name);
            Configured::RunnerGroup(
                RunnerGroup::new(client, &org, &group, access).with_limits(name, limits),
            )
        }
    })
}

/// `org/name` split in two.
pub fn split_repository(full: &str) -> anyhow::Result<(&str, &str)> {
    full.split_once('/')
        .with_context(|| format!("`{full}` is not an `owner/name` repository"))
}

/// The numeric id of repository `owner/name`, which the installation and runner-group APIs
/// take instead of names.
async fn repository_id(client: &Client, full: &str) -> anyhow::Result<u64> {
    #[derive(serde::Deserialize)]
    struct Repository {
        id: u64,
    }
    let (owner, name) = split_repository(full)?;
    let found: Option<Repository> = client.get(&["repos", owner, name]).await?;
    Ok(found
        .with_context(|| format!("the repository {full} does not exist on GitHub"))?
        .id)
}

/// A repository as GitHub's listings show it.
#[derive(Debug, serde::Deserialize)]
struct Listed {
    id: u64,
    full_name: String,
}

/// `Ok` when no change failed; otherwise one error that counts and lists the failures, so a
/// provider that applies changes one by one reports every failure, not only the first.
pub(crate) fn all_done(failures: &[String], changes: usize) -> anyhow::Result<()> {
    match failures {
        [] => Ok(()),
        _ => anyhow::bail!(
            "{} of {changes} change(s) failed: {}",
            failures.len(),
            failures.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_removal_is_never_mass() {
        let limit = RemovalLimit {
            max_share: Some(0.1),
        };
        assert!(!limit.exceeded(1, 1));
        assert!(!limit.exceeded(2, 20));
        assert!(limit.exceeded(3, 20));
        assert!(!RemovalLimit { max_share: None }.exceeded(20, 20));
    }

    #[test]
    fn case_differences_are_not_changes() {
        let desired = Access::from([("r".into(), BTreeSet::from(["org/Foo".to_string()]))]);
        let mut observed = Access::from([("r".into(), BTreeSet::from(["org/foo".to_string()]))]);
        align_case(&mut observed, &desired);
        assert_eq!(observed, desired);
    }
}
