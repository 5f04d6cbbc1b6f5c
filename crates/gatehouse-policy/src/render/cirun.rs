//! `render cirun`: Cirun's `.access.yml` from the ledger.
//!
//! The output is byte-identical for the same repository and day, and ordered the way
//! conda-forge's lint wants it: policies sorted by id; `access_control` entries in catalogue
//! order (resources sorted by name, as in `resources/`); policy ids sorted within an entry.
//!
//! A Cirun policy is (repository, roles, pull_request, who): one is written per distinct
//! combination a project needs, named `<repo>-policy`, then `<repo>-policy-2`, ... in a stable
//! order. Expired grants are left out: they grant nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use gatehouse_core::Repo;
use gatehouse_core::model::{ProviderKind, Role};
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
}

/// Renders the `.access.yml` for `provider` (or the one cirun provider), as of `today`.
pub fn render(repo: &Repo, provider: Option<&str>, today: Date) -> Result<String, RenderError> {
    let settings = &repo.settings.as_ref().ok_or(RenderError::NoSettings)?.value;
    let cirun: Vec<&String> = settings
        .providers
        .iter()
        .filter(|(_, p)| p.kind.value == ProviderKind::Cirun)
        .map(|(name, _)| name)
        .collect();
    let provider_name = match provider {
        Some(p) if cirun.iter().any(|c| c.as_str() == p) => p.to_string(),
        Some(p) => return Err(RenderError::UnknownProvider(p.to_string())),
        None => match cirun.as_slice() {
            [] => return Err(RenderError::NoCirunProvider),
            [one] => one.to_string(),
            many => {
                return Err(RenderError::SeveralProviders(
                    many.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
        },
    };
    let tos_url = settings.providers[&provider_name]
        .users_from_json
        .as_ref()
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
            let who = match (&g.users, res.users.require_tos, &tos_url) {
                (Some(list), _, _) => {
                    let mut users: Vec<String> =
                        list.users.iter().map(|u| u.login().to_string()).collect();
                    users.sort_by_key(|u| u.to_ascii_lowercase());
                    users.dedup_by_key(|u| u.to_ascii_lowercase());
                    Who::Users(users)
                }
                (None, true, Some(url)) => Who::UsersFromJson(url.clone()),
                (None, true, None) => Who::Users(tos_logins.clone()),
                (None, false, _) => Who::Anyone,
            };
            wanted
                .entry(file.value.project.value.clone())
                .or_default()
                .entry(PolicyKey {
                    roles,
                    pull_request: g.pull_request,
                    who,
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

    let mut out = String::from("version: 1\npolicies:\n");
    for (id, (repo_name, key)) in &policies {
        let _ = writeln!(out, "  - id: {}", scalar(id));
        let _ = writeln!(out, "    repo: {}", scalar(repo_name));
        out.push_str("    roles:\n");
        for r in &key.roles {
            let _ = writeln!(out, "      - {}", r.as_str());
        }
        if let Who::Users(users) = &key.who {
            if users.is_empty() {
                out.push_str("    users: []\n");
            } else {
                out.push_str("    users:\n");
                for u in users {
                    let _ = writeln!(out, "      - {}", scalar(u));
                }
            }
        }
        let _ = writeln!(out, "    pull_request: {}", key.pull_request);
        if let Who::UsersFromJson(url) = &key.who {
            let _ = writeln!(out, "    users_from_json: {}", scalar(url));
        }
    }
    if policies.is_empty() {
        out = String::from("version: 1\npolicies: []\n");
    }
    let entries: Vec<_> = resources
        .iter()
        .filter_map(|r| {
            access
                .get(r.name.as_str())
                .map(|ids| (r.name.as_str(), ids))
        })
        .collect();
    if entries.is_empty() {
        out.push_str("access_control: []\n");
    } else {
        out.push_str("access_control:\n");
        for (name, ids) in entries {
            let _ = writeln!(out, "  - resource: {}", scalar(name));
            out.push_str("    policies:\n");
            for id in ids {
                let _ = writeln!(out, "      - {}", scalar(id));
            }
        }
    }
    Ok(out)
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
