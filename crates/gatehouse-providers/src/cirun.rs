//! Cirun: the access policy, `.access.yml` in the organisation's `access_repo` (`.cirun`),
//! which Cirun reads.
//!
//! `via: access-repo` (the default) reads the file and commits the rendered text straight to
//! the default branch through GitHub's contents API: live at once, no pull request, no commit
//! when the text is already the same.
//!
//! `via: api`, for a token that cannot write `access_repo`, speaks Cirun's API as its official
//! client does (cirun-py, `cirun/client.py`: `Cirun.get_access_control`,
//! `Cirun.update_access_control`, `_create_access_control_repo_resource_data`; conda-forge calls
//! it from conda-smithy's `conda_smithy/cirun_utils.py`): `GET {base}/access-control` with
//! `{"org": ORG}` answers `{"access_yml": {...}}`, the merged policy; one
//! `PUT {base}/access-control` with `{"org": ORG, "repository_resource_access": [...]}` lists
//! an entry per repository that changes (`action: remove` with the resources it loses, then
//! `action: add` with all it should hold, its roles, users or `users_from_json` and
//! `policy_args`). That call changes nothing yet: Cirun opens a pull request on `access_repo`
//! (cirun-py's docstrings of `add_repo_to_resources` and `remove_repo_from_resources`).
//! `apply` then finds it (an open pull request there that changes `.access.yml`), checks that
//! the file it leaves is exactly the rendered policy and that it changes nothing else, and
//! merges it naming its head commit; a token that may not merge gets an error naming the pull
//! request. While any pull request changing `.access.yml` is open, nothing is sent to Cirun.
//!
//! The policy is rendered by `gatehouse_policy::render::cirun` (the same text `render cirun`
//! prints). Gatehouse owns the whole policy: an entry the ledger does not explain is removed by
//! the next write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::desired::ProviderChange;
use jiff::civil::Date;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::contents::{read_file, write_file};
use super::{Access, Observed, Provider, empty_access};
use crate::github::{Client, Method};

const PATH: &[&str] = &["access-control"];
/// Where Cirun reads the policy in the access repository.
pub const ACCESS_FILE: &str = ".access.yml";
/// How long `apply` looks for the pull request Cirun opens after the `PUT`, and how often.
const PULL_WAIT: Duration = Duration::from_secs(3);
const PULL_POLL: Duration = Duration::from_millis(250);

/// Where the policy is written.
enum Target {
    /// Cirun's API (`client`), then the pull request it opens on `owner/name`, merged through
    /// `github`.
    Api {
        github: Arc<Client>,
        owner: String,
        name: String,
        seen: Mutex<Option<ApiSeen>>,
    },
    /// `.access.yml` in GitHub repository `owner/name`; the blob's sha once observed.
    Repository {
        owner: String,
        name: String,
        seen: Mutex<Option<String>>,
    },
}

/// What `observe` found through the API, for `apply`.
#[derive(Clone)]
struct ApiSeen {
    merged: Policy,
    pending: Vec<PendingPull>,
}

/// An open pull request on the access repository that changes `.access.yml`.
#[derive(Clone, Debug)]
struct PendingPull {
    number: u64,
    html_url: String,
    head_sha: String,
    /// Every path it changes.
    files: Vec<String>,
    /// The policy its `.access.yml` holds; `Err` says why it could not be read.
    policy: Result<Policy, String>,
}

pub struct Cirun {
    client: Arc<Client>,
    org: String,
    target: Target,
    /// The rendered policy, as committed to the access repository.
    yaml: String,
    policy: Policy,
    desired: Access,
}

impl Cirun {
    /// Writes through Cirun's API (`client` is Cirun's) and merges the pull request Cirun opens
    /// on `org/access_repo` through `github`.
    pub fn new(
        client: Arc<Client>,
        github: Arc<Client>,
        repo: &Repo,
        name: &str,
        org: &str,
        access_repo: &str,
        today: Date,
    ) -> anyhow::Result<Self> {
        let target = Target::Api {
            github,
            owner: org.to_string(),
            name: access_repo.to_string(),
            seen: Mutex::new(None),
        };
        Self::with_target(client, repo, name, org, today, target)
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
        // Built once as a value: the file is its one rendering, and the comparison with what
        // Cirun holds reads the value itself, never the text parsed back.
        let access = gatehouse_policy::render::cirun::desired(repo, Some(name), today)?;
        let yaml = access.to_yaml();
        let policy = Policy::parse(&access.to_json()).context("the desired Cirun policy")?;
        let mut desired = empty_access(repo, name);
        desired.extend(policy.access(org));
        Ok(Cirun {
            client,
            org: org.to_string(),
            target,
            yaml,
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
        match &self.target {
            Target::Repository { owner, name, seen } => {
                let file = read_file(&self.client, owner, name, ACCESS_FILE, None).await?;
                let (policy, same_text) = match &file {
                    Some(f) => (parse_yaml(&f.text, owner, name)?, f.text == self.yaml),
                    None => (Policy::default(), false),
                };
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = file.map(|f| f.sha);
                Ok(Observed {
                    access: policy.access(&self.org),
                    // Anything but the exact rendered text is rewritten, so that the file
                    // stays what `render cirun` prints (and conda-forge's lint accepts).
                    stale: !same_text,
                    limits: Vec::new(),
                })
            }
            Target::Api {
                github,
                owner,
                name,
                seen,
            } => {
                let pending = pending_pulls(github, owner, name).await?;
                let merged = self.merged_policy().await?;
                let observed = Observed {
                    access: merged.access(&self.org),
                    stale: merged != self.policy,
                    limits: Vec::new(),
                };
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(ApiSeen { merged, pending });
                Ok(observed)
            }
        }
    }

    async fn apply(&self, changes: &[ProviderChange]) -> anyhow::Result<()> {
        match &self.target {
            Target::Repository { owner, name, seen } => {
                let sha = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let message = match changes {
                    [] => "gatehouse: rewrite the access policy from the ledger".to_string(),
                    [one] => format!("gatehouse: {one}"),
                    many => format!("gatehouse: {} access changes", many.len()),
                };
                write_file(
                    &self.client,
                    (owner, name),
                    ACCESS_FILE,
                    None,
                    &self.yaml,
                    sha.as_deref(),
                    &message,
                )
                .await
            }
            Target::Api {
                github,
                owner,
                name,
                seen,
            } => {
                let seen = seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .context("Cirun's policy was not observed before the change")?;
                let repo = (github.as_ref(), owner.as_str(), name.as_str());
                if !seen.pending.is_empty() {
                    // Never a second request while one waits: settle the open one.
                    return self.settle(repo, &seen.pending).await;
                }
                let entries = entries(&seen.merged, &self.policy)?;
                let body = json!({ "org": self.org, "repository_resource_access": entries });
                // Each PUT opens a pull request: it is sent once, never retried blindly.
                let _: IgnoredAny = self
                    .client
                    .mutate_once(Method::PUT, PATH, Some(&body))
                    .await?;
                let started = std::time::Instant::now();
                loop {
                    let pending = pending_pulls(github, owner, name).await?;
                    if !pending.is_empty() {
                        return self.settle(repo, &pending).await;
                    }
                    if started.elapsed() >= PULL_WAIT {
                        bail!(
                            "Cirun accepted the change but no pull request on {owner}/{name} \
                             changes {ACCESS_FILE} yet; the next run merges it once it is there"
                        );
                    }
                    tokio::time::sleep(PULL_POLL).await;
                }
            }
        }
    }
}

impl Cirun {
    /// The policy as Cirun has it merged (`GET access-control`); none yet is an empty one.
    async fn merged_policy(&self) -> anyhow::Result<Policy> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            access_yml: Value,
        }
        let answer: Option<Answer> = self
            .client
            .get_with_body(PATH, &json!({ "org": self.org }))
            .await?;
        match answer {
            None => Ok(Policy::default()),
            Some(a) if a.access_yml.is_null() => Ok(Policy::default()),
            Some(a) => Policy::parse(&a.access_yml).context("Cirun's access policy (access_yml)"),
        }
    }

    /// Merges the one open pull request whose `.access.yml` is exactly the rendered policy
    /// and which changes nothing else; reports every other one, which blocks further writes.
    async fn settle(
        &self,
        (github, owner, name): (&Client, &str, &str),
        pending: &[PendingPull],
    ) -> anyhow::Result<()> {
        let intended = pending
            .iter()
            .find(|p| p.files == [ACCESS_FILE] && p.policy.as_ref() == Ok(&self.policy));
        let others: Vec<String> = pending
            .iter()
            .filter(|p| intended.is_none_or(|i| i.number != p.number))
            .map(|p| {
                let why = match &p.policy {
                    Err(e) => format!("its {ACCESS_FILE} cannot be read: {e}"),
                    Ok(_) if p.files != [ACCESS_FILE] => {
                        format!("it changes more than {ACCESS_FILE}: {}", p.files.join(", "))
                    }
                    Ok(policy) => format!(
                        "its {ACCESS_FILE} is not what the ledger wants ({})",
                        self.policy.difference(policy, &self.org)
                    ),
                };
                format!("{} ({why})", p.html_url)
            })
            .collect();
        if let Some(p) = intended {
            let n = p.number.to_string();
            let merge = json!({
                "sha": p.head_sha,
                "commit_title": format!("gatehouse: merge Cirun's access policy change (#{n})"),
            });
            // `pulls/merge`: naming the head commit, so that nothing pushed after the check
            // gets merged with it.
            let merged: Result<IgnoredAny, _> = github
                .mutate(
                    Method::PUT,
                    &["repos", owner, name, "pulls", &n, "merge"],
                    Some(&merge),
                )
                .await;
            if let Err(e) = merged {
                bail!(
                    "Cirun's pull request {} makes {ACCESS_FILE} exactly what the ledger wants, \
                     but it could not be merged ({e}). Someone who may write {owner}/{name} must \
                     merge it; apply sends nothing to Cirun while it is open",
                    p.html_url
                );
            }
            tracing::info!(pull = %p.html_url, "merged Cirun's pull request");
        }
        if !others.is_empty() {
            bail!(
                "{} open pull request(s) on {owner}/{name} change {ACCESS_FILE} and were not \
                 merged: {}. apply sends nothing to Cirun while one is open: merge or close \
                 them, then run again",
                others.len(),
                others.join("; ")
            );
        }
        Ok(())
    }
}

/// `.access.yml` text read as a policy.
fn parse_yaml(text: &str, owner: &str, name: &str) -> anyhow::Result<Policy> {
    let v: Value = serde_saphyr::from_str(text)
        .with_context(|| format!("{owner}/{name}: {ACCESS_FILE} is not valid YAML"))?;
    Policy::parse(&v).with_context(|| format!("{owner}/{name}: {ACCESS_FILE}"))
}

/// The open pull requests on `owner/name` that change `.access.yml`, each with the policy it
/// would leave (GitHub operations `pulls/list`, `pulls/list-files`, `repos/get-content`).
async fn pending_pulls(
    github: &Client,
    owner: &str,
    name: &str,
) -> anyhow::Result<Vec<PendingPull>> {
    #[derive(Deserialize)]
    struct Pull {
        number: u64,
        #[serde(default)]
        html_url: String,
        head: Head,
    }
    #[derive(Deserialize)]
    struct Head {
        sha: String,
    }
    #[derive(Deserialize)]
    struct Changed {
        filename: String,
    }
    let pulls: Vec<Pull> = match github
        .get_all_if_changed(
            &["repos", owner, name, "pulls"],
            &[("state", "open")],
            None,
            None,
        )
        .await
        .with_context(|| format!("listing the open pull requests of {owner}/{name}"))?
    {
        Some(crate::github::Conditional::Modified { value, .. }) => value,
        Some(crate::github::Conditional::NotModified) | None => {
            bail!("{owner}/{name} does not exist on GitHub (or this token cannot see it)")
        }
    };
    let mut pending = Vec::new();
    for pull in pulls {
        let n = pull.number.to_string();
        let files: Vec<Changed> = github
            .get_all(&["repos", owner, name, "pulls", &n, "files"], None)
            .await?
            .unwrap_or_default();
        let mut files: Vec<String> = files.into_iter().map(|f| f.filename).collect();
        if !files.iter().any(|f| f == ACCESS_FILE) {
            continue;
        }
        files.sort();
        let policy = match read_file(github, owner, name, ACCESS_FILE, Some(&pull.head.sha)).await {
            Ok(Some(f)) => parse_yaml(&f.text, owner, name).map_err(|e| format!("{e:#}")),
            Ok(None) => Err("the pull request deletes it".to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        pending.push(PendingPull {
            number: pull.number,
            html_url: pull.html_url,
            head_sha: pull.head.sha,
            files,
            policy,
        });
    }
    Ok(pending)
}

/// cirun-py's entries (`_create_access_control_repo_resource_data`) that turn `merged` into
/// `desired`, one batch: for each repository that changes, `remove` with the resources where
/// its policies must go (it should not hold them, or holds them through another policy), then
/// `add` with every resource it should hold and its policy. Cirun keeps one policy per
/// repository (`<repo>-policy`) and takes no empty user list (conda-smithy sends `None`
/// instead), so a ledger that needs more is refused with the way out.
fn entries(merged: &Policy, desired: &Policy) -> anyhow::Result<Vec<Value>> {
    // Repository -> its one desired policy.
    let mut wanted: BTreeMap<&str, (&String, &Value)> = BTreeMap::new();
    for (id, p) in &desired.policies {
        let repo = p.get("repo").and_then(Value::as_str).unwrap_or_default();
        if let Some((other, _)) = wanted.insert(repo, (id, p)) {
            bail!(
                "{repo} needs two Cirun policies ({other} and {id}: different roles, users or \
                 pull_request on different resources), but Cirun's API keeps one policy per \
                 repository. Use `via: access-repo` (the default) for this provider"
            );
        }
        if p.get("users")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            bail!(
                "{id} lets no user in (the terms-of-service list is empty), which Cirun's API \
                 cannot say (an empty list is sent as none: everyone with the roles). Give the \
                 provider `users_from_json`, or use `via: access-repo`"
            );
        }
    }
    // (repository, resource) -> the ids of its policies there.
    let held = |p: &Policy| {
        let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (resource, ids) in &p.access_control {
            for id in ids {
                if let Some(repo) = p.policies.get(id).and_then(|e| e.get("repo")?.as_str()) {
                    out.entry((repo.to_string(), resource.clone()))
                        .or_default()
                        .insert(id.clone());
                }
            }
        }
        out
    };
    let (now, want) = (held(merged), held(desired));
    let repos: BTreeSet<&String> = now.keys().chain(want.keys()).map(|(r, _)| r).collect();
    let mut out = Vec::new();
    for repo in repos {
        let mine = |m: &BTreeMap<(String, String), BTreeSet<String>>| -> BTreeMap<String, BTreeSet<String>> {
            m.iter()
                .filter(|((r, _), _)| r == repo)
                .map(|((_, res), ids)| (res.clone(), ids.clone()))
                .collect()
        };
        let (has, should) = (mine(&now), mine(&want));
        let remove: Vec<&String> = has
            .iter()
            .filter(|(res, ids)| should.get(*res).is_none_or(|w| w != *ids))
            .map(|(res, _)| res)
            .collect();
        if !remove.is_empty() {
            out.push(json!({
                "repository": repo,
                "resources": remove,
                "action": "remove",
                "policy_args": null,
                "teams": null,
                "users": null,
                "roles": null,
                "users_from_json": null,
            }));
        }
        let Some((id, entry)) = wanted.get(repo.as_str()) else {
            continue;
        };
        let same_policy = merged.policies.get(*id) == Some(*entry);
        // After the removal, a resource it should hold and no longer does (or never did).
        let missing = should
            .keys()
            .any(|r| remove.contains(&r) || !has.contains_key(r));
        if same_policy && !missing {
            continue;
        }
        let field = |f: &str| entry.get(f).cloned().unwrap_or(Value::Null);
        let pull_request = entry
            .get("pull_request")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out.push(json!({
            "repository": repo,
            "resources": should.keys().collect::<Vec<_>>(),
            "action": "add",
            "policy_args": { "pull_request": pull_request },
            "teams": field("teams"),
            "users": field("users"),
            "roles": field("roles"),
            "users_from_json": field("users_from_json"),
        }));
    }
    Ok(out)
}

/// A Cirun access policy in a form where order does not count: two policies that grant the
/// same are equal however the server lists them. Fields set to `null` count as absent, a
/// policy no resource uses and a resource with no policy are left out.
#[derive(Clone, Debug, Default, PartialEq)]
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
        for mut p in list("policies")? {
            if let Value::Object(fields) = &mut p {
                fields.retain(|_, v| !v.is_null());
            }
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
        policy.access_control.retain(|_, ids| !ids.is_empty());
        let used: BTreeSet<&String> = policy.access_control.values().flatten().collect();
        let unused: Vec<String> = policy
            .policies
            .keys()
            .filter(|id| !used.contains(id))
            .cloned()
            .collect();
        for id in unused {
            policy.policies.remove(&id);
        }
        Ok(policy)
    }

    /// What `other` grants that this policy does not, and the reverse, in a few words.
    fn difference(&self, other: &Policy, org: &str) -> String {
        let pairs = |p: &Policy| -> BTreeSet<String> {
            p.access(org)
                .into_iter()
                .flat_map(|(res, repos)| repos.into_iter().map(move |r| format!("{r} on {res}")))
                .collect()
        };
        let (mine, theirs) = (pairs(self), pairs(other));
        let extra: Vec<&String> = theirs.difference(&mine).collect();
        let missing: Vec<&String> = mine.difference(&theirs).collect();
        let changed: Vec<&String> = self
            .policies
            .iter()
            .filter(|(id, p)| other.policies.get(*id).is_some_and(|o| o != *p))
            .map(|(id, _)| id)
            .collect();
        let mut parts = Vec::new();
        let list = |v: &[&String]| {
            let shown: Vec<&str> = v.iter().take(5).map(|s| s.as_str()).collect();
            let more = v.len().saturating_sub(5);
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        if !extra.is_empty() {
            parts.push(format!("it adds {}", list(&extra)));
        }
        if !missing.is_empty() {
            parts.push(format!("it lacks {}", list(&missing)));
        }
        if !changed.is_empty() {
            parts.push(format!("it sets other terms for {}", list(&changed)));
        }
        if parts.is_empty() {
            "its policies are named differently".to_string()
        } else {
            parts.join("; ")
        }
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

    /// The desired policy is compared as the value it is built as; that value must be exactly
    /// what its one rendering, the committed `.access.yml`, reads as.
    #[test]
    fn the_desired_value_is_what_its_rendering_reads_as() {
        let same = |repo: &Repo| {
            let today = jiff::civil::date(2026, 6, 1);
            let access =
                gatehouse_policy::render::cirun::desired(repo, Some("cirun"), today).unwrap();
            assert!(!access.policies.is_empty(), "{access:?}");
            let text: Value = serde_saphyr::from_str(&access.to_yaml()).unwrap();
            assert_eq!(
                Policy::parse(&access.to_json()).unwrap(),
                Policy::parse(&text).unwrap()
            );
        };
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
        same(&gatehouse_core::repo::load_dir(&example).unwrap());
        // A grant narrowed to no one (`users: []`), a resource with no roles, a ToS list.
        same(&Repo::from_sources([
            (
                "gatehouse.yml",
                "org: cf\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
            ),
            (
                "resources/bare.yml",
                "name: bare\nprovider: cirun\nlabels: [cirun-bare]\nusers: { roles: [] }\n",
            ),
            (
                "resources/tos.yml",
                "name: tos\nprovider: cirun\nlabels: [cirun-tos]\nusers: { require_tos: true }\n",
            ),
            (
                "grants/nobody.yml",
                "project: nobody\ngrants:\n  - resource: bare\n    granted: 2026-01-01\n    users: { users: [] }\n  - resource: tos\n    granted: 2026-01-01\n    pull_request: true\n",
            ),
        ]));
    }

    /// conda-forge's real policy, as Cirun's `GET access-control` answers it.
    fn real() -> Policy {
        let text = include_str!("../../../fixtures/conda-forge/cirun-access.yml");
        Policy::parse(&serde_saphyr::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn entries_are_cirun_py_s_for_the_repositories_that_change_only() {
        let merged = real();
        // The ledger keeps pytorch-cpu on the GPU server as it is, drops it elsewhere (its
        // Windows policy too) and adds x; everything else stays.
        let mut desired = merged.clone();
        let torch = "pytorch-cpu-feedstock-policy".to_string();
        for (resource, ids) in desired.access_control.iter_mut() {
            ids.remove("pytorch-cpu-feedstock-windows-policy");
            if resource != "cirun-openstack-gpu-large" {
                ids.remove(&torch);
            }
        }
        desired
            .policies
            .remove("pytorch-cpu-feedstock-windows-policy");
        // tensorflow's second policy cannot go through the API: keep it out of this test.
        for ids in desired.access_control.values_mut() {
            ids.remove("tensorflow-feedstock-osx-m4-policy");
        }
        desired
            .policies
            .remove("tensorflow-feedstock-osx-m4-policy");
        desired.access_control.retain(|_, ids| !ids.is_empty());
        let x = json!({"id": "x-feedstock-policy", "repo": "x-feedstock", "roles": ["admin"],
                       "pull_request": false,
                       "users_from_json": "https://example.org/tos.json"});
        desired.policies.insert("x-feedstock-policy".into(), x);
        desired
            .access_control
            .get_mut("cirun-openstack-cpu-medium")
            .unwrap()
            .insert("x-feedstock-policy".into());
        let out = entries(&merged, &desired).unwrap();
        let keys = |e: &Value| {
            let mut k: Vec<String> = e.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        for e in &out {
            assert_eq!(
                keys(e),
                [
                    "action",
                    "policy_args",
                    "repository",
                    "resources",
                    "roles",
                    "teams",
                    "users",
                    "users_from_json"
                ]
            );
        }
        let summary: Vec<(String, String, Vec<String>)> = out
            .iter()
            .map(|e| {
                (
                    e["repository"].as_str().unwrap().to_string(),
                    e["action"].as_str().unwrap().to_string(),
                    serde_json::from_value(e["resources"].clone()).unwrap(),
                )
            })
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            [
                (
                    "pytorch-cpu-feedstock".to_string(),
                    "remove".to_string(),
                    s(&[
                        "cirun-azure-windows-2xlarge",
                        "cirun-azure-windows-4xlarge",
                        "cirun-openstack-cpu-large",
                        "cirun-openstack-gpu-2xlarge",
                        "cirun-openstack-gpu-4xlarge",
                        "cirun-openstack-gpu-xlarge",
                    ])
                ),
                (
                    "tensorflow-feedstock".to_string(),
                    "remove".to_string(),
                    s(&["cirun-macos-m4-large"])
                ),
                (
                    "x-feedstock".to_string(),
                    "add".to_string(),
                    s(&["cirun-openstack-cpu-medium"])
                ),
            ]
        );
        let add = &out[2];
        assert_eq!(add["policy_args"], json!({"pull_request": false}));
        assert_eq!(add["roles"], json!(["admin"]));
        assert_eq!(add["users_from_json"], "https://example.org/tos.json");
        assert_eq!(add["teams"], Value::Null);
        assert!(
            entries(&desired, &desired).unwrap().is_empty(),
            "nothing to send"
        );
    }

    #[test]
    fn two_policies_for_one_repository_are_refused_with_the_way_out() {
        let merged = Policy::default();
        let err = entries(&merged, &real()).unwrap_err().to_string();
        assert!(err.contains("via: access-repo"), "{err}");
        assert!(
            err.contains("tensorflow-feedstock") || err.contains("pytorch-cpu-feedstock"),
            "{err}"
        );
    }

    #[test]
    fn a_policy_without_ids_is_an_error() {
        let bad = json!({"policies": [{"repo": "x"}], "access_control": []});
        assert!(Policy::parse(&bad).is_err());
    }
}
