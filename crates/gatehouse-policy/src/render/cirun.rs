//! `render cirun`: Cirun's `.access.yml` from the ledger.
//!
//! The output is byte-identical for the same repository and day, and ordered the way
//! conda-forge's lint wants it: policies sorted by id; `access_control` entries in catalogue
//! order (resources sorted by name, as in `resources/`); policy ids sorted within an entry.
//!
//! A Cirun policy is (repository, roles, pull_request, who, teams): one is written per distinct
//! combination a project needs, named `<repo>-policy`, then `<repo>-policy-2`, ... in a stable
//! order. Expired grants are left out: they grant nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use gatehouse_core::Repo;
use gatehouse_core::model::{CirunProvider, ProviderSettings, Role};
use jiff::civil::Date;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("gatehouse.yml defines no provider of kind `cirun`; add one under `providers:`")]
    NoCirunProvider,
    #[error("gatehouse.yml defines several cirun providers ({0}); pick one with --provider")]
    SeveralProviders(String),
    #[error("provider `{0}` is not a cirun provider defined in gatehouse.yml")]
    UnknownProvider(String),
    #[error("the repository has no gatehouse.yml")]
    NoSettings,
}

/// Who a Cirun policy lets in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// Everyone in the terms-of-service list Cirun reads from a URL.
    UsersFromJson(String),
    /// These logins (a grant's list, or the ToS list written out).
    Users(Vec<String>),
    /// Everyone with the roles.
    Anyone,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PolicyKey {
    roles: Vec<Role>,
    pull_request: bool,
    who: Who,
    /// The teams of the grant's `users` (sorted): Cirun lets their members in too.
    teams: Vec<String>,
}

/// One Cirun policy: who may use the resources that name it, from one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    pub id: String,
    /// The repository's name within the organisation.
    pub repo: String,
    pub roles: Vec<Role>,
    /// `Some`: only these logins (an empty list lets nobody in); `None`: not written.
    pub users: Option<Vec<String>>,
    /// `Some`: the members of these GitHub teams (slugs) too; `None`: not written.
    pub teams: Option<Vec<String>>,
    pub pull_request: bool,
    pub users_from_json: Option<String>,
}

/// Cirun's access policy as the ledger wants it, in `.access.yml`'s order: policies sorted by
/// id, resources in catalogue order with their policy ids sorted. [`AccessPolicy::to_yaml`]
/// is its one rendering; the provider compares and sends this value itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    pub policies: Vec<PolicyEntry>,
    /// Resource -> the ids of the policies that open it.
    pub access_control: Vec<(String, Vec<String>)>,
}

/// Renders the `.access.yml` for `provider` (or the one cirun provider), as of `today`.
pub fn render(repo: &Repo, provider: Option<&str>, today: Date) -> Result<String, RenderError> {
    Ok(desired(repo, provider, today)?.to_yaml())
}

/// The access policy for `provider` (or the one cirun provider), as of `today`.
pub fn desired(
    repo: &Repo,
    provider: Option<&str>,
    today: Date,
) -> Result<AccessPolicy, RenderError> {
    let settings = &repo.settings.as_ref().ok_or(RenderError::NoSettings)?.value;
    let cirun: Vec<(&String, &CirunProvider)> = settings
        .providers
        .iter()
        .filter_map(|(name, p)| match p {
            ProviderSettings::Cirun(p) => Some((name, p)),
            _ => None,
        })
        .collect();
    let provider_name = match provider {
        Some(p) if cirun.iter().any(|(c, _)| c.as_str() == p) => p.to_string(),
        Some(p) => return Err(RenderError::UnknownProvider(p.to_string())),
        None => match cirun.as_slice() {
            [] => return Err(RenderError::NoCirunProvider),
            [(one, _)] => one.to_string(),
            many => {
                return Err(RenderError::SeveralProviders(
                    many.iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
        },
    };
    let tos_url = cirun
        .iter()
        .find(|(name, _)| **name == provider_name)
        .and_then(|(_, p)| p.users_from_json.as_ref())
        .map(|u| u.value.clone());
    let tos_logins: Vec<String> = {
        let mut v: Vec<String> = repo
            .tos
            .iter()
            .flat_map(|t| t.value.iter())
            .map(|e| e.github.value.clone())
            .collect();
        v.sort_by_key(|l| l.to_ascii_lowercase());
        v.dedup_by_key(|l| l.to_ascii_lowercase());
        v
    };

    // Catalogue order: resources as `resources/` lists them.
    let mut resources: Vec<&gatehouse_core::model::Resource> = repo
        .resources
        .iter()
        .map(|r| &r.value)
        .filter(|r| r.provider.as_str() == provider_name)
        .collect();
    resources.sort_by(|a, b| a.name.value.cmp(&b.name.value));
    resources.dedup_by(|a, b| a.name.value == b.name.value);

    // project -> policy key -> resources it covers.
    let mut wanted: BTreeMap<String, BTreeMap<PolicyKey, BTreeSet<String>>> = BTreeMap::new();
    let mut grant_files: Vec<_> = repo.grants.iter().collect();
    grant_files.sort_by(|a, b| a.value.project.value.cmp(&b.value.project.value));
    for file in grant_files {
        for g in &file.value.grants {
            let Some(res) = resources
                .iter()
                .find(|r| r.name.as_str() == g.resource.as_str())
            else {
                continue;
            };
            if !g.is_active(today) {
                continue;
            }
            let mut roles: Vec<Role> = res.users.roles.iter().map(|r| r.value).collect();
            roles.sort();
            roles.dedup();
            let mut teams: Vec<String> = g
                .users
                .iter()
                .flat_map(|u| u.teams.iter())
                .map(|t| t.value.clone())
                .collect();
            teams.sort_by_key(|t| t.to_ascii_lowercase());
            teams.dedup_by_key(|t| t.to_ascii_lowercase());
            // A list of teams alone says who without a list of people: none is written.
            let listed = g
                .users
                .as_ref()
                .filter(|u| !u.users.is_empty() || u.teams.is_empty());
            let who = match (listed, res.users.require_tos, &tos_url) {
                (Some(list), _, _) => {
                    let mut users: Vec<String> =
                        list.users.iter().map(|u| u.login().to_string()).collect();
                    users.sort_by_key(|u| u.to_ascii_lowercase());
                    users.dedup_by_key(|u| u.to_ascii_lowercase());
                    Who::Users(users)
                }
                // Teams alone: they say who, with the terms-of-service list Cirun reads.
                (None, true, Some(url)) => Who::UsersFromJson(url.clone()),
                (None, true, None) if g.users.is_none() => Who::Users(tos_logins.clone()),
                (None, _, _) => Who::Anyone,
            };
            wanted
                .entry(file.value.project.value.clone())
                .or_default()
                .entry(PolicyKey {
                    roles,
                    pull_request: g.pull_request,
                    who,
                    teams,
                })
                .or_default()
                .insert(res.name.value.clone());
        }
    }

    // Name the policies and note which resource uses which.
    let mut policies: BTreeMap<String, (String, PolicyKey)> = BTreeMap::new();
    let mut access: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (project, keys) in wanted {
        let repo_name = format!("{project}{}", settings.repo_suffix);
        for (n, (key, covered)) in keys.into_iter().enumerate() {
            let id = if n == 0 {
                format!("{repo_name}-policy")
            } else {
                format!("{repo_name}-policy-{}", n + 1)
            };
            for r in covered {
                access.entry(r).or_default().insert(id.clone());
            }
            policies.insert(id, (repo_name.clone(), key));
        }
    }

    let policies = policies
        .into_iter()
        .map(|(id, (repo_name, key))| PolicyEntry {
            id,
            repo: repo_name,
            roles: key.roles,
            users: match &key.who {
                Who::Users(users) => Some(users.clone()),
                Who::UsersFromJson(_) | Who::Anyone => None,
            },
            teams: (!key.teams.is_empty()).then(|| key.teams.clone()),
            pull_request: key.pull_request,
            users_from_json: match key.who {
                Who::UsersFromJson(url) => Some(url),
                Who::Users(_) | Who::Anyone => None,
            },
        })
        .collect();
    let access_control = resources
        .iter()
        .filter_map(|r| {
            access
                .remove(r.name.as_str())
                .map(|ids| (r.name.value.clone(), ids.into_iter().collect()))
        })
        .collect();
    Ok(AccessPolicy {
        policies,
        access_control,
    })
}

impl AccessPolicy {
    /// `.access.yml`: byte-identical for the same value.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("version: 1\npolicies:\n");
        for p in &self.policies {
            let _ = writeln!(out, "  - id: {}", scalar(&p.id));
            let _ = writeln!(out, "    repo: {}", scalar(&p.repo));
            out.push_str("    roles:\n");
            for r in &p.roles {
                let _ = writeln!(out, "      - {}", r.as_str());
            }
            if let Some(users) = &p.users {
                if users.is_empty() {
                    out.push_str("    users: []\n");
                } else {
                    out.push_str("    users:\n");
                    for u in users {
                        let _ = writeln!(out, "      - {}", scalar(u));
                    }
                }
            }
            if let Some(teams) = &p.teams {
                out.push_str("    teams:\n");
                for t in teams {
                    let _ = writeln!(out, "      - {}", scalar(t));
                }
            }
            let _ = writeln!(out, "    pull_request: {}", p.pull_request);
            if let Some(url) = &p.users_from_json {
                let _ = writeln!(out, "    users_from_json: {}", scalar(url));
            }
        }
        if self.policies.is_empty() {
            out = String::from("version: 1\npolicies: []\n");
        }
        if self.access_control.is_empty() {
            out.push_str("access_control: []\n");
        } else {
            out.push_str("access_control:\n");
            for (name, ids) in &self.access_control {
                let _ = writeln!(out, "  - resource: {}", scalar(name));
                out.push_str("    policies:\n");
                for id in ids {
                    let _ = writeln!(out, "      - {}", scalar(id));
                }
            }
        }
        out
    }

    /// The same policy as the JSON value `.access.yml` reads as (absent fields left out), the
    /// shape Cirun's API answers in.
    pub fn to_json(&self) -> serde_json::Value {
        let policies: Vec<serde_json::Value> = self
            .policies
            .iter()
            .map(|p| {
                let mut entry = serde_json::json!({
                    "id": p.id,
                    "repo": p.repo,
                    "pull_request": p.pull_request,
                });
                // `roles:` with no item reads as null, which counts as absent.
                if !p.roles.is_empty() {
                    entry["roles"] =
                        serde_json::json!(p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>());
                }
                if let Some(users) = &p.users {
                    entry["users"] = serde_json::json!(users);
                }
                if let Some(teams) = &p.teams {
                    entry["teams"] = serde_json::json!(teams);
                }
                if let Some(url) = &p.users_from_json {
                    entry["users_from_json"] = serde_json::json!(url);
                }
                entry
            })
            .collect();
        let access_control: Vec<serde_json::Value> = self
            .access_control
            .iter()
            .map(|(resource, ids)| serde_json::json!({ "resource": resource, "policies": ids }))
            .collect();
        serde_json::json!({
            "version": 1,
            "policies": policies,
            "access_control": access_control,
        })
    }
}

/// A YAML scalar: plain when it is unambiguous as a string, double-quoted otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.contains(": ")
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}
