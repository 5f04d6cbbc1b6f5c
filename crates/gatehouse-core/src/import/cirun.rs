//! `gatehouse import cirun`: Cirun's `.access.yml` and `.cirun.global.yml` into resources and
//! grants.
//!
//! The real conda-forge files have defects this importer must survive and report: a resource
//! listed twice under `access_control` (merged), and a resource used by the access file but not
//! defined in the runner catalogue (created from its name).

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::duration::Day;
use crate::model::{
    Defaults, Grant, GrantFile, GrantUser, GrantUsers, Resource, Role, Specs, UserPolicy,
};
use crate::names::is_generic_label;
use crate::parse::parse_yaml;
use crate::span::Spanned;

/// Cirun's `.access.yml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    pub version: u32,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub access_control: Vec<AccessEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: Spanned<String>,
    pub repo: Spanned<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub pull_request: bool,
    #[serde(default)]
    pub users_from_json: Option<String>,
    #[serde(default)]
    pub users: Option<Vec<String>>,
    /// GitHub teams (slugs) whose members the policy lets in: kept on the grant's `users`
    /// (`teams:`), whose members the guard lets in as Cirun does (reading them from GitHub,
    /// and refusing them when it cannot).
    #[serde(default)]
    pub teams: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    pub resource: Spanned<String>,
    #[serde(default)]
    pub policies: Vec<Spanned<String>>,
}

/// Cirun's `.cirun.global.yml`. Runner entries take many provider-specific options; the ones
/// gatehouse does not use are accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct GlobalFile {
    #[serde(default)]
    pub runners: Vec<Runner>,
}

#[derive(Debug, Deserialize)]
pub struct Runner {
    pub name: Spanned<String>,
    #[serde(default)]
    pub cloud: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// What the import produced.
#[derive(Debug, Default)]
pub struct Imported {
    /// In catalogue order (the order of `.cirun.global.yml`, then resources only the access
    /// file names).
    pub resources: Vec<Resource>,
    /// Sorted by project.
    pub grants: Vec<GrantFile>,
    /// The terms-of-service list the policies read (`users_from_json`): to keep on the provider,
    /// and to read into `people/tos.yml`.
    pub users_from_json: Option<String>,
    /// Defects found and how they were resolved, and every grant that has no end.
    pub warnings: Vec<Diagnostic>,
}

/// Options of the import.
pub struct ImportOptions<'a> {
    /// The provider name the resources are served by (defined in gatehouse.yml).
    pub provider: &'a str,
    /// Removed from repository names to get project names (`-feedstock`).
    pub repo_suffix: &'a str,
    /// Recorded as `granted` on every imported grant.
    pub granted: Date,
}

/// Known machine sizes of conda-forge's Cirun runners (Open GPU Server flavors and Azure VM
/// sizes): (instance type, cpu, memory GB, disk GB, gpu).
const FLAVORS: &[(&str, u32, u32, u32, Option<&str>)] = &[
    ("gpu_large", 4, 12, 60, Some("1x V100")),
    ("gpu_xlarge", 8, 16, 60, Some("1x V100")),
    ("gpu_2xlarge", 8, 32, 80, Some("1x V100")),
    ("gpu_4xlarge", 8, 64, 100, Some("1x V100")),
    ("ci_medium", 4, 8, 60, None),
    ("ci_large", 4, 12, 60, None),
    ("ci_xlarge", 4, 32, 60, None),
    ("ci_2xlarge", 8, 32, 80, None),
    ("ci_4xlarge", 8, 64, 100, None),
    ("Standard_D8ads_v5", 8, 32, 300, None),
    ("Standard_D16ads_v5", 16, 64, 600, None),
];

fn specs_for(runner: &Runner) -> Specs {
    let os = runner.labels.iter().find_map(|l| match l.as_str() {
        "linux" | "windows" | "macos" => Some(l.clone()),
        _ => None,
    });
    let arch = runner.labels.iter().find_map(|l| match l.as_str() {
        "x64" | "arm64" => Some(l.clone()),
        _ => None,
    });
    let mut specs = Specs {
        os,
        arch,
        instance_type: runner.instance_type.clone(),
        ..Specs::default()
    };
    if let Some((_, cpu, mem, disk, gpu)) = FLAVORS
        .iter()
        .find(|f| Some(f.0) == runner.instance_type.as_deref())
    {
        specs.cpu = Some(*cpu);
        specs.memory_gb = Some(*mem);
        specs.disk_gb = Some(*disk);
        specs.gpu = gpu.map(str::to_string);
    }
    specs
}

fn describe(specs: &Specs, cloud: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(g) = &specs.gpu {
        parts.push(g.clone());
    }
    if let Some(c) = specs.cpu {
        parts.push(format!("{c} vCPU"));
    }
    if let Some(m) = specs.memory_gb {
        parts.push(format!("{m} GB RAM"));
    }
    if let Some(d) = specs.disk_gb {
        parts.push(format!("{d} GB disk"));
    }
    let mut text = parts.join(", ");
    if let Some(os) = &specs.os {
        text = if text.is_empty() {
            os.clone()
        } else {
            format!("{os}, {text}")
        };
    }
    if let Some(cloud) = cloud {
        text = format!("{text} ({cloud})");
    }
    (!text.is_empty()).then_some(text)
}

/// Parses both files; errors name the file and place.
pub fn parse(
    access_path: &str,
    access: &[u8],
    runners_path: &str,
    runners: &[u8],
) -> Result<(AccessFile, GlobalFile), Vec<Diagnostic>> {
    let a = parse_yaml::<AccessFile>(access_path, access);
    let g = parse_yaml::<GlobalFile>(runners_path, runners);
    match (a, g) {
        (Ok(a), Ok(g)) => Ok((a, g)),
        (a, g) => Err(a.err().into_iter().chain(g.err()).collect()),
    }
}

/// One project's access to one resource, as Cirun's policies give it.
#[derive(Default)]
struct Access {
    pull_request: bool,
    /// `None`: every maintainer (with accepted terms); `Some`: only these logins.
    users: Option<Vec<String>>,
    /// The teams whose members the policies also let in (sorted, no repeats).
    teams: Vec<String>,
    policies: Vec<String>,
    /// Where the first policy that gives it is named.
    span: crate::Span,
}

/// Builds resources and grants from Cirun's files.
pub fn import(
    access: &AccessFile,
    access_path: &str,
    global: &GlobalFile,
    runners_path: &str,
    opts: &ImportOptions<'_>,
) -> Imported {
    let mut out = Imported::default();
    let warn = |out: &mut Imported, file: &str, span, code, msg: String| {
        out.warnings
            .push(Diagnostic::warning(code, file, span, msg));
    };

    let policies: HashMap<&str, &Policy> =
        access.policies.iter().map(|p| (p.id.as_str(), p)).collect();

    // Merge repeated access entries for one resource, keeping first-seen order.
    let mut entries: Vec<(&Spanned<String>, Vec<&Spanned<String>>)> = Vec::new();
    for e in &access.access_control {
        if let Some((first, list)) = entries
            .iter_mut()
            .find(|(r, _)| r.as_str() == e.resource.as_str())
        {
            warn(
                &mut out,
                access_path,
                e.resource.span,
                "merged-entry",
                format!(
                    "`{}` is listed twice under access_control (first on line {}); the two entries were merged",
                    e.resource.value, first.span.line
                ),
            );
            for p in &e.policies {
                if !list.iter().any(|q| q.as_str() == p.as_str()) {
                    list.push(p);
                }
            }
        } else {
            entries.push((&e.resource, e.policies.iter().collect()));
        }
    }

    // Resources: the catalogue first, in its order; then what only the access file names.
    let mut resource_users: HashMap<String, (bool, bool)> = HashMap::new(); // (tos, explicit)
    // Resource -> the role sets its policies allow (all alike: the resource takes them).
    let mut resource_roles: HashMap<String, Vec<Vec<Role>>> = HashMap::new();
    for runner in &global.runners {
        let specs = specs_for(runner);
        let labels: Vec<Spanned<String>> = runner
            .labels
            .iter()
            .filter(|l| !is_generic_label(l))
            .map(|l| Spanned::unplaced(l.clone()))
            .collect();
        out.resources.push(Resource {
            name: Spanned::unplaced(runner.name.value.clone()),
            provider: Spanned::unplaced(opts.provider.to_string()),
            labels,
            description: describe(&specs, runner.cloud.as_deref()),
            specs: Some(specs),
            eligibility: None,
            reviewers: None,
            max_duration: None,
            max_job_minutes: None,
            cost: None,
            defaults: Defaults::default(),
            users: UserPolicy::default(),
            quota: None,
            bots: None,
        });
    }
    for (resource, _) in &entries {
        if !global
            .runners
            .iter()
            .any(|r| r.name.as_str() == resource.as_str())
        {
            warn(
                &mut out,
                access_path,
                resource.span,
                "undefined-runner",
                format!(
                    "`{}` has no runner definition in {runners_path}; created it with the label `{}` and no specs",
                    resource.value, resource.value
                ),
            );
            out.resources.push(Resource {
                name: Spanned::unplaced(resource.value.clone()),
                provider: Spanned::unplaced(opts.provider.to_string()),
                labels: vec![Spanned::unplaced(resource.value.clone())],
                description: None,
                specs: None,
                eligibility: None,
                reviewers: None,
                max_duration: None,
                max_job_minutes: None,
                cost: None,
                defaults: Defaults::default(),
                users: UserPolicy::default(),
                quota: None,
                bots: None,
            });
        }
    }

    // Grants: project -> resource -> access.
    let mut grants: BTreeMap<String, BTreeMap<String, Access>> = BTreeMap::new();
    let mut used: HashMap<&str, bool> = policies.keys().map(|k| (*k, false)).collect();
    for (resource, list) in &entries {
        for pid in list {
            let Some(policy) = policies.get(pid.as_str()) else {
                warn(
                    &mut out,
                    access_path,
                    pid.span,
                    "unknown-policy",
                    format!(
                        "policy `{}` is not defined under policies; skipped",
                        pid.value
                    ),
                );
                continue;
            };
            used.insert(policy.id.as_str(), true);
            let mut roles = policy.roles.clone();
            roles.sort();
            roles.dedup();
            let sets = resource_roles.entry(resource.value.clone()).or_default();
            if !sets.contains(&roles) {
                sets.push(roles);
            }
            if let Some(url) = &policy.users_from_json {
                match out.users_from_json.clone() {
                    None => out.users_from_json = Some(url.clone()),
                    Some(first) if &first != url => warn(
                        &mut out,
                        access_path,
                        policy.id.span,
                        "several-users-json",
                        format!(
                            "policy `{}` reads its users from {url}, another list than {first}; gatehouse keeps one terms-of-service list (the first)",
                            policy.id.value
                        ),
                    ),
                    Some(_) => {}
                }
            }
            let tos_flags = resource_users.entry(resource.value.clone()).or_default();
            let teams = policy.teams.clone().unwrap_or_default();
            match (&policy.users, &policy.users_from_json) {
                // A policy of teams alone names who it lets in as a list of users does.
                (None, None) if !teams.is_empty() => tos_flags.1 = true,
                (Some(_), _) => tos_flags.1 = true,
                (None, _) => tos_flags.0 = true,
            }
            // The people a policy names: its users, and with teams, an empty list of them
            // when it names none (the teams alone say who).
            let named = match (&policy.users, teams.is_empty()) {
                (Some(users), _) => Some(users.clone()),
                (None, false) => Some(Vec::new()),
                (None, true) => None,
            };
            let project = policy
                .repo
                .strip_suffix(opts.repo_suffix)
                .filter(|p| !p.is_empty())
                .unwrap_or(&policy.repo)
                .to_string();
            let by_resource = grants.entry(project.clone()).or_default();
            let merged = by_resource.contains_key(resource.as_str());
            let a = by_resource.entry(resource.value.clone()).or_default();
            if merged {
                warn(
                    &mut out,
                    access_path,
                    pid.span,
                    "merged-policy",
                    format!(
                        "`{project}` gets `{}` from two policies ({} and {}); merged into one grant with the wider access",
                        resource.value,
                        a.policies.join(", "),
                        pid.value
                    ),
                );
                a.pull_request |= policy.pull_request;
                a.users = match (a.users.take(), &named) {
                    (Some(mut mine), Some(theirs)) => {
                        for u in theirs {
                            if !mine.iter().any(|m| m.eq_ignore_ascii_case(u)) {
                                mine.push(u.clone());
                            }
                        }
                        Some(mine)
                    }
                    _ => None,
                };
                // Teams only narrow a list of people; access open to every maintainer stays open.
                if a.users.is_some() {
                    a.teams.extend(teams);
                } else {
                    a.teams.clear();
                }
            } else {
                a.pull_request = policy.pull_request;
                a.users = named;
                a.teams = teams;
            }
            a.teams.sort();
            a.teams.dedup();
            if a.policies.is_empty() {
                a.span = pid.span;
            }
            a.policies.push(pid.value.clone());
        }
    }
    for p in &access.policies {
        if !used.get(p.id.as_str()).copied().unwrap_or(false) {
            warn(
                &mut out,
                access_path,
                p.id.span,
                "unused-policy",
                format!(
                    "policy `{}` is not used by any access_control entry; it grants nothing",
                    p.id.value
                ),
            );
        }
    }

    let mut mixed = Vec::new();
    let mut mixed_roles = Vec::new();
    for r in &mut out.resources {
        match resource_roles.get(r.name.as_str()).map(Vec::as_slice) {
            // Cirun's default when a policy names no roles is every role that can push.
            Some([one]) if !one.is_empty() => {
                r.users.roles = one.iter().copied().map(Spanned::unplaced).collect();
            }
            Some([_]) | None => {}
            Some(_) => mixed_roles.push(r.name.value.clone()),
        }
        let (tos, explicit) = resource_users
            .get(r.name.as_str())
            .copied()
            .unwrap_or((false, false));
        r.users.require_tos = tos;
        if tos && explicit {
            mixed.push(r.name.value.clone());
        }
    }
    for name in mixed {
        warn(
            &mut out,
            access_path,
            crate::Span::UNKNOWN,
            "mixed-users",
            format!(
                "`{name}` has policies with users_from_json and with explicit users; it now requires accepted terms from everyone"
            ),
        );
    }

    for name in mixed_roles {
        warn(
            &mut out,
            access_path,
            crate::Span::UNKNOWN,
            "mixed-roles",
            format!(
                "`{name}` has policies allowing different roles; gatehouse gives a resource one set of roles, so the resource keeps admin, maintain and write: edit resources/{name}.yml"
            ),
        );
    }

    // Cirun's policies never end; a grant should (a resource's `max_duration` bounds renewals).
    for (project, by_resource) in &grants {
        for (resource, a) in by_resource {
            if !a.teams.is_empty() {
                out.warnings.push(
                    Diagnostic::warning(
                        "teams",
                        access_path,
                        a.span,
                        format!(
                            "`{project}` holds `{resource}` for the teams {} ({}): kept on the grant and rendered back for Cirun; the guard lets in their members as Cirun does, reading each team's members from GitHub, and refuses them (facts-unavailable) while it cannot, and offline on the gate, whose snapshot carries no teams",
                            a.teams.join(", "),
                            a.policies.join(", ")
                        ),
                    )
                    .with_help(format!(
                        "give the guard a token that may read the organisation's teams; to keep someone's access when the guard cannot reach GitHub, list them under `users:` of `{resource}` in grants/{project}.yml"
                    )),
                );
            }
            out.warnings.push(
                Diagnostic::warning(
                    "no-expiry",
                    access_path,
                    a.span,
                    format!(
                        "`{project}` holds `{resource}` without an end ({}): the grant has no `expires`",
                        a.policies.join(", ")
                    ),
                )
                .with_help(format!(
                    "add `expires: YYYY-MM-DD` to `{resource}` in grants/{project}.yml, or give resources/{resource}.yml a `max_duration` and renew through requests"
                )),
            );
        }
    }

    let granted = Spanned::unplaced(Day(opts.granted));
    out.grants = grants
        .into_iter()
        .map(|(project, by_resource)| {
            // Grants in catalogue order, so files read like the access file.
            let mut list: Vec<Grant> = by_resource
                .into_iter()
                .map(|(resource, a)| Grant {
                    resource: Spanned::unplaced(resource),
                    pull_request: a.pull_request,
                    forks: None,
                    granted: granted.clone(),
                    expires: None,
                    request: None,
                    approved_by: Vec::new(),
                    users: a.users.map(|u| GrantUsers {
                        users: u
                            .iter()
                            .map(|l| Spanned::unplaced(GrantUser::from(l.as_str())))
                            .collect(),
                        teams: a.teams.into_iter().map(Spanned::unplaced).collect(),
                    }),
                    send_pr: false,
                })
                .collect();
            let order = |name: &str| {
                out.resources
                    .iter()
                    .position(|r| r.name.as_str() == name)
                    .unwrap_or(usize::MAX)
            };
            list.sort_by_key(|g| order(&g.resource));
            GrantFile {
                project: Spanned::unplaced(project),
                grants: list,
            }
        })
        .collect();
    out
}
