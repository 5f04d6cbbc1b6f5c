//! feedstock-config: for a grant with `send_pr`, a pull request on the project's own repository
//! that lets its CI use the resource (the resource's label added to `github_actions_labels` in
//! `recipe/conda_build_config.yaml`, GitHub Actions on self-hosted runners set in
//! `conda-forge.yml`), then a comment asking conda-forge's bot to rerender. When the grant goes
//! (revoked, expired), a pull request that removes them again.
//!
//! What has been sent is recorded (in `.gatehouse/state.json`, by `apply`) and is what
//! [`Provider::observe`] reports, so a run only touches the projects whose grants changed.
//! Every step is safe to repeat: the pull request is found by its branch
//! (`gatehouse/<resource>-add` or `-remove`) before one is opened, a branch left by a stopped
//! run is started over, the rerender comment is posted unless it is there, and a project whose
//! files already say the right thing gets no pull request at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_core::desired::{ProviderChange, feedstock_config_state};
use jiff::civil::Date;

use super::contents::{
    Pull, close_pull, comment_once, create_pull, default_branch, read_file, reset_branch,
    write_file,
};
use super::yaml_lines::{
    add_child_list, add_list_item, child_list_items, list_items, remove_child, remove_list_item,
    set_child,
};
use super::{Access, Observed, Provider, split_repository};
use crate::github::Client;

pub use gatehouse_core::desired::FEEDSTOCK_CONFIG as NAME;

const CBC: &str = "recipe/conda_build_config.yaml";
const CFG: &str = "conda-forge.yml";
const LABELS_KEY: &str = "github_actions_labels";
/// What conda-forge's bot answers by regenerating the CI configuration from the two files.
pub const RERENDER: &str = "@conda-forge-admin, please rerender";

pub struct FeedstockConfig {
    client: Arc<Client>,
    desired: Access,
    /// What has been sent (or found in place), updated change by change as they succeed.
    configured: Mutex<Access>,
    /// What each change did, in words, for `apply` to print.
    notes: Mutex<Vec<String>>,
    /// Resource -> the label its jobs ask for (its first label, or its name).
    labels: BTreeMap<String, String>,
    /// (resource, repository) -> the grant: whether pull requests may use it, and its request.
    grants: BTreeMap<(String, String), (bool, Option<String>)>,
}

impl FeedstockConfig {
    /// `configured`: what earlier runs sent, as recorded.
    pub fn new(client: Arc<Client>, repo: &Repo, today: Date, configured: Access) -> Self {
        let desired = feedstock_config_state(repo, today);
        let labels = repo
            .resources
            .iter()
            .map(|r| {
                let label = r
                    .value
                    .labels
                    .first()
                    .map_or_else(|| r.value.name.value.clone(), |l| l.value.clone());
                (r.value.name.value.clone(), label)
            })
            .collect();
        let mut grants = BTreeMap::new();
        if let Some(settings) = &repo.settings {
            for f in &repo.grants {
                let full = settings.value.repository_of(&f.value.project);
                for g in f.value.grants.iter().filter(|g| g.send_pr) {
                    grants.insert(
                        (g.resource.value.clone(), full.clone()),
                        (g.pull_request, g.request.as_ref().map(|r| r.value.clone())),
                    );
                }
            }
        }
        FeedstockConfig {
            client,
            desired,
            configured: Mutex::new(configured),
            notes: Mutex::new(Vec::new()),
            labels,
            grants,
        }
    }

    /// Whether there is anything to do or to undo at all.
    pub fn is_idle(&self) -> bool {
        let configured = self.configured.lock().unwrap_or_else(|e| e.into_inner());
        self.desired.values().all(|r| r.is_empty()) && configured.values().all(|r| r.is_empty())
    }

    /// What has been sent, after [`Provider::apply`]: to record for the next run.
    pub fn configured(&self) -> Access {
        let mut out = self
            .configured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.retain(|_, repos| !repos.is_empty());
        out
    }

    /// What the changes did, one line each, since the last call.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn label<'a>(&'a self, resource: &'a str) -> &'a str {
        self.labels.get(resource).map_or(resource, String::as_str)
    }

    fn record(&self, change: &ProviderChange) {
        let mut configured = self.configured.lock().unwrap_or_else(|e| e.into_inner());
        let repos = configured.entry(change.resource.clone()).or_default();
        if change.add {
            repos.insert(change.repository.clone());
        } else {
            repos.remove(&change.repository);
        }
    }

    /// Makes the changes of one repository in one direction (`add`) with one pull request;
    /// what it did, in words.
    async fn change(&self, full: &str, add: bool, resources: &[&str]) -> anyhow::Result<String> {
        let (owner, name) = split_repository(full)?;
        let wanted = branch(resources, add);
        let client = &*self.client;
        // gatehouse's own open pull requests on the repository, from their branches.
        let open: Vec<Pull> = client
            .get_all(&["repos", owner, name, "pulls"], None)
            .await?
            .with_context(|| format!("the repository {full} does not exist on GitHub"))?;
        let ours: Vec<(Pull, bool, Vec<String>)> = open
            .into_iter()
            .filter(|p| p.head.label == format!("{owner}:{}", p.head.branch))
            .filter_map(|p| {
                let (add, resources) = parse_branch(&p.head.branch)?;
                Some((p, add, resources))
            })
            .collect();
        // An open pull request for the opposite change is now wrong. One about other
        // resources too is replaced by one about those alone (it is closed, so merging it
        // cannot undo this change; the rest of it is proposed again at once).
        let mut done = Vec::new();
        for (p, other_add, theirs) in &ours {
            if *other_add == add || !theirs.iter().any(|r| resources.contains(&r.as_str())) {
                continue;
            }
            close_pull(client, owner, name, p.number).await?;
            let rest: Vec<&str> = theirs
                .iter()
                .map(String::as_str)
                .filter(|r| !resources.contains(r))
                .collect();
            if rest.is_empty() {
                continue;
            }
            let again = Box::pin(self.change(full, *other_add, &rest)).await?;
            done.push(format!(
                "closed {} (it also covered {}; for those: {again})",
                p.html_url,
                rest.join(", ")
            ));
        }
        let this = self
            .change_alone(full, add, resources, &ours, &wanted)
            .await?;
        done.push(this);
        Ok(done.join("; "))
    }

    /// [`Self::change`] once no open pull request of the other direction is in the way.
    async fn change_alone(
        &self,
        full: &str,
        add: bool,
        resources: &[&str],
        ours: &[(Pull, bool, Vec<String>)],
        wanted: &str,
    ) -> anyhow::Result<String> {
        let (owner, name) = split_repository(full)?;
        let client = &*self.client;
        if let Some((p, _, _)) = ours.iter().find(|(p, _, _)| p.head.branch == wanted) {
            comment_once(client, owner, name, p.number, RERENDER).await?;
            return Ok(format!("{} is open already", p.html_url));
        }
        let base = default_branch(client, owner, name).await?;
        let cbc = read_file(client, owner, name, CBC, Some(&base)).await?;
        let cfg = read_file(client, owner, name, CFG, Some(&base)).await?;
        let mut edits = Edits::default();
        let mut labels = Vec::new();
        let mut requests = Vec::new();
        for resource in resources {
            let label = self.label(resource);
            labels.push(label.to_string());
            let (pull_request, request) = self
                .grants
                .get(&(resource.to_string(), full.to_string()))
                .cloned()
                .unwrap_or((false, None));
            requests.extend(request);
            let cbc_now = edits
                .cbc
                .as_deref()
                .or(cbc.as_ref().map(|f| f.text.as_str()));
            let cfg_now = edits
                .cfg
                .as_deref()
                .or(cfg.as_ref().map(|f| f.text.as_str()));
            let step = if add {
                edits_to_add(cbc_now, cfg_now, label, pull_request)
            } else {
                edits_to_remove(cbc_now, cfg_now, label)
            }
            .with_context(|| format!("editing the configuration of {full}"))?;
            edits.cbc = step.cbc.or(edits.cbc);
            edits.cfg = step.cfg.or(edits.cfg);
        }
        if edits.is_empty() {
            return Ok("its configuration already says so; no pull request needed".into());
        }
        reset_branch(client, owner, name, wanted, &base).await?;
        let list = resources.join(", ");
        let (title, message) = if add {
            (
                format!("Use the {list} runners"),
                format!(
                    "Add {} to {LABELS_KEY} and use self-hosted GitHub Actions",
                    labels.join(", ")
                ),
            )
        } else {
            (
                format!("Stop using the {list} runners"),
                format!("Remove {} from {LABELS_KEY}", labels.join(", ")),
            )
        };
        for (path, text, old) in [(CBC, &edits.cbc, &cbc), (CFG, &edits.cfg, &cfg)] {
            if let Some(text) = text {
                let sha = old.as_ref().map(|f| f.sha.as_str());
                write_file(
                    client,
                    (owner, name),
                    path,
                    Some(wanted),
                    text,
                    sha,
                    &message,
                )
                .await?;
            }
        }
        requests.sort();
        requests.dedup();
        let body = pull_body(add, &list, &labels.join("`, `"), &requests);
        let pull = create_pull(client, owner, name, wanted, &base, &title, &body).await?;
        comment_once(client, owner, name, pull.number, RERENDER).await?;
        Ok(format!("opened {}", pull.html_url))
    }
}

/// The branch of the pull request that adds (or removes) `resources` (`+` between them): one
/// name per change, so that an open one is found instead of a second being opened.
pub fn branch(resources: &[&str], add: bool) -> String {
    let mut sorted = resources.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    format!(
        "gatehouse/{}-{}",
        sorted.join("+"),
        if add { "add" } else { "remove" }
    )
}

/// The direction and resources of one of [`branch`]'s names.
fn parse_branch(name: &str) -> Option<(bool, Vec<String>)> {
    let rest = name.strip_prefix("gatehouse/")?;
    let (list, add) = match (rest.strip_suffix("-add"), rest.strip_suffix("-remove")) {
        (Some(list), _) => (list, true),
        (None, Some(list)) => (list, false),
        _ => return None,
    };
    Some((add, list.split('+').map(str::to_string).collect()))
}

fn pull_body(add: bool, resource: &str, label: &str, requests: &[String]) -> String {
    let why = match requests {
        [] => String::new(),
        some => format!(" ({})", some.join(", ")),
    };
    if add {
        format!(
            "This project was granted `{resource}`{why}. This pull request adds its label \
             `{label}` to `{LABELS_KEY}` in `{CBC}` and runs the Linux builds on self-hosted \
             GitHub Actions runners (`{CFG}`), then asks for a rerender.\n\n\
             Only jobs that the grant allows will run there; others are cancelled with an \
             explanation. Sent by gatehouse.\n"
        )
    } else {
        format!(
            "This project's grant of `{resource}` has ended (revoked or expired). This pull \
             request removes `{label}` from `{LABELS_KEY}` in `{CBC}`, so that the builds go \
             back to the default runners, then asks for a rerender. To keep using it, file a \
             `renew` request in the access repository. Sent by gatehouse.\n"
        )
    }
}

/// New text for each file that must change (`None`: unchanged).
#[derive(Debug, Default, PartialEq)]
pub struct Edits {
    pub cbc: Option<String>,
    pub cfg: Option<String>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.cbc.is_none() && self.cfg.is_none()
    }
}

/// Applies `edit` to `text` when the previous step changed nothing, or to the changed text.
fn then(
    text: Option<String>,
    base: &str,
    edit: impl FnOnce(&str) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<Option<String>> {
    let current = text.as_deref().unwrap_or(base);
    Ok(edit(current)?.or(text))
}

/// The label in `github_actions_labels`, and GitHub Actions on self-hosted runners for
/// linux_64 (with pull requests as triggers when the grant allows them), as conda-forge's
/// admin bot sets them.
pub fn edits_to_add(
    cbc: Option<&str>,
    cfg: Option<&str>,
    label: &str,
    pull_request: bool,
) -> anyhow::Result<Edits> {
    let cbc_new = add_list_item(cbc.unwrap_or(""), LABELS_KEY, label).context(CBC)?;
    let cfg_text = cfg.unwrap_or("");
    let mut cfg_new = set_child(cfg_text, "github_actions", "self_hosted", "true").context(CFG)?;
    if pull_request {
        cfg_new = then(cfg_new, cfg_text, |t| {
            add_child_list(t, "github_actions", "triggers", &["push", "pull_request"])
        })
        .context(CFG)?;
    }
    cfg_new = then(cfg_new, cfg_text, |t| {
        set_child(t, "provider", "linux_64", "github_actions")
    })
    .context(CFG)?;
    Ok(Edits {
        cbc: cbc_new,
        cfg: cfg_new,
    })
}

/// The label out of `github_actions_labels`; when that leaves no label at all, also the
/// self-hosted setting and the linux_64 provider that the grant's pull request set.
pub fn edits_to_remove(cbc: Option<&str>, cfg: Option<&str>, label: &str) -> anyhow::Result<Edits> {
    let Some(cbc) = cbc else {
        return Ok(Edits::default());
    };
    let Some(cbc_new) = remove_list_item(cbc, LABELS_KEY, label).context(CBC)? else {
        return Ok(Edits::default());
    };
    let key_left = !list_items(&cbc_new, LABELS_KEY).context(CBC)?.is_empty()
        || cbc_new
            .lines()
            .any(|l| l.starts_with(&format!("{LABELS_KEY}:")));
    let mut cfg_new = None;
    if !key_left && let Some(cfg) = cfg {
        cfg_new = remove_child(cfg, "github_actions", "self_hosted", Some("true")).context(CFG)?;
        // The triggers the grant's pull request set are the default off self-hosted runners:
        // taking them out changes nothing but the text, which goes back to what it was.
        let current = cfg_new.as_deref().unwrap_or(cfg);
        if child_list_items(current, "github_actions", "triggers")
            .context(CFG)?
            .is_some_and(|t| t == ["push", "pull_request"])
        {
            cfg_new = then(cfg_new, cfg, |t| {
                remove_child(t, "github_actions", "triggers", None)
            })
            .context(CFG)?;
        }
        cfg_new = then(cfg_new, cfg, |t| {
            remove_child(t, "provider", "linux_64", Some("github_actions"))
        })
        .context(CFG)?;
    }
    Ok(Edits {
        cbc: Some(cbc_new),
        cfg: cfg_new,
    })
}

impl Provider for FeedstockConfig {
    fn desired(&self) -> &Access {
        &self.desired
    }

    async fn observe(&self) -> anyhow::Result<Observed> {
        let access = self
            .configured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(Observed {
            access,
            stale: false,
            limits: Vec::new(),
        })
    }

    async fn apply(&self, changes: &[ProviderChange]) -> anyhow::Result<()> {
        // One pull request per repository and direction, whatever number of resources it
        // gains or loses in this run: several would edit the same lines and conflict.
        let mut groups: BTreeMap<(&str, bool), Vec<&ProviderChange>> = BTreeMap::new();
        for c in changes {
            groups
                .entry((c.repository.as_str(), c.add))
                .or_default()
                .push(c);
        }
        let mut failures = Vec::new();
        // One project's failure (an archived repository, a file it cannot edit) must not hold
        // up the others; what succeeded is recorded either way.
        for ((full, add), group) in groups {
            let resources: Vec<&str> = group.iter().map(|c| c.resource.as_str()).collect();
            match self.change(full, add, &resources).await {
                Ok(what) => {
                    let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
                    for c in group {
                        self.record(c);
                        notes.push(format!("{c}: {what}"));
                    }
                }
                Err(e) => failures.push(format!("{full} ({}): {e:#}", resources.join(", "))),
            }
        }
        super::all_done(&failures, changes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CBC_REAL: &str = "blas_impl:\n- mkl                          # [x86 or x86_64]\n- generic\ngithub_actions_labels:\n- cirun-openstack-cpu-large\n";
    const CFG_REAL: &str = "azure:\n  free_disk_space: true\nbuild_platform:\n  linux_aarch64: linux_64\nconda_forge_output_validation: true\ngithub:\n  branch_name: main\n  tooling_branch_name: main\nprovider:\n  linux_aarch64: azure\n";

    #[test]
    fn adding_sets_the_label_and_the_provider_as_conda_forge_s_bot_does() {
        let e = edits_to_add(
            Some(CBC_REAL),
            Some(CFG_REAL),
            "cirun-openstack-gpu-large",
            true,
        )
        .unwrap();
        assert_eq!(
            e.cbc.as_deref(),
            Some(
                "blas_impl:\n- mkl                          # [x86 or x86_64]\n- generic\ngithub_actions_labels:\n- cirun-openstack-cpu-large\n- cirun-openstack-gpu-large\n"
            )
        );
        assert_eq!(
            e.cfg.as_deref(),
            Some(
                "azure:\n  free_disk_space: true\nbuild_platform:\n  linux_aarch64: linux_64\nconda_forge_output_validation: true\ngithub:\n  branch_name: main\n  tooling_branch_name: main\nprovider:\n  linux_aarch64: azure\n  linux_64: github_actions\ngithub_actions:\n  self_hosted: true\n  triggers:\n  - push\n  - pull_request\n"
            )
        );
        // Applied, nothing more to do.
        let again = edits_to_add(
            e.cbc.as_deref(),
            e.cfg.as_deref(),
            "cirun-openstack-gpu-large",
            true,
        )
        .unwrap();
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_project_without_the_files_gets_them() {
        let e = edits_to_add(None, None, "gpu", false).unwrap();
        assert_eq!(e.cbc.as_deref(), Some("github_actions_labels:\n- gpu\n"));
        assert_eq!(
            e.cfg.as_deref(),
            Some("github_actions:\n  self_hosted: true\nprovider:\n  linux_64: github_actions\n")
        );
    }

    #[test]
    fn removing_the_last_label_also_undoes_the_provider() {
        let added = edits_to_add(Some("zlib:\n- 1.3\n"), Some(CFG_REAL), "gpu", true).unwrap();
        let removed = edits_to_remove(added.cbc.as_deref(), added.cfg.as_deref(), "gpu").unwrap();
        assert_eq!(removed.cbc.as_deref(), Some("zlib:\n- 1.3\n"));
        assert_eq!(removed.cfg.as_deref(), Some(CFG_REAL));
    }

    #[test]
    fn removing_one_of_two_labels_leaves_the_provider() {
        let e = edits_to_remove(Some(CBC_REAL), Some(CFG_REAL), "cirun-openstack-cpu-large");
        let e = e.unwrap();
        assert_eq!(
            e.cbc.as_deref(),
            Some("blas_impl:\n- mkl                          # [x86 or x86_64]\n- generic\n")
        );
        assert_eq!(
            e.cfg, None,
            "conda-forge.yml did not say self_hosted: nothing to undo"
        );
        let two = "github_actions_labels:\n- a\n- b\n";
        let e = edits_to_remove(
            Some(two),
            Some("provider:\n  linux_64: github_actions\n"),
            "a",
        )
        .unwrap();
        assert_eq!(e.cbc.as_deref(), Some("github_actions_labels:\n- b\n"));
        assert_eq!(e.cfg, None, "b still runs there");
        assert!(edits_to_remove(Some(two), None, "c").unwrap().is_empty());
        assert!(edits_to_remove(None, None, "c").unwrap().is_empty());
    }

    #[test]
    fn branch_names_are_fixed_per_resource_and_direction() {
        assert_eq!(branch(&["cirun-gpu"], true), "gatehouse/cirun-gpu-add");
        assert_eq!(branch(&["cirun-gpu"], false), "gatehouse/cirun-gpu-remove");
        let two = branch(&["z", "a.b", "z"], true);
        assert_eq!(two, "gatehouse/a.b+z-add");
        assert_eq!(
            parse_branch(&two),
            Some((true, vec!["a.b".to_string(), "z".to_string()]))
        );
        assert_eq!(
            parse_branch("gatehouse/gpu-remove"),
            Some((false, vec!["gpu".to_string()]))
        );
        assert_eq!(parse_branch("feature/gpu-add"), None);
    }
}
