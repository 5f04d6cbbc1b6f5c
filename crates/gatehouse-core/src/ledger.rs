//! Ledger changes: what merged requests and the calendar do to `grants/`.
//!
//! [`plan_requests`] turns the pending requests into typed changes, [`plan_expiry`] revokes what
//! has expired, and [`apply_changes`] computes the new grant files. All pure: the CLI reads the
//! repository, gathers each request's origin (its pull request and approvers) and writes the
//! result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use jiff::civil::Date;
use serde::Serialize;

use crate::check::run_all;
use crate::duration::Day;
use crate::model::{Grant, GrantFile, GrantUsers, RequestAction, Standing};
use crate::names::project_key;
use crate::repo::{GRANTS_DIR, Loaded, Repo};
use crate::span::Spanned;

/// Where a request came from: its pull request and who approved it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub url: Option<String>,
    pub approved_by: Vec<String>,
    /// The pull request's author as GitHub gives it (login, account id): who may accept the
    /// terms of service with the request (`accept_tos`).
    pub author: Option<(String, i64)>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum LedgerChange {
    Grant {
        project: String,
        resource: String,
        pull_request: bool,
        expires: Option<String>,
        request: String,
        #[serde(skip)]
        grant: Box<Grant>,
    },
    Renew {
        project: String,
        resource: String,
        from: Option<String>,
        to: Option<String>,
        request: String,
        /// The day of the renewal: when the new end lies beyond the resource's
        /// `max_duration` from the first grant, the grant's term starts again on it.
        #[serde(skip)]
        on: Date,
    },
    Revoke {
        project: String,
        resource: String,
        /// The request file, or `expired on <date>`.
        why: String,
    },
}

impl LedgerChange {
    pub fn project(&self) -> &str {
        match self {
            LedgerChange::Grant { project, .. }
            | LedgerChange::Renew { project, .. }
            | LedgerChange::Revoke { project, .. } => project,
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            LedgerChange::Grant { resource, .. }
            | LedgerChange::Renew { resource, .. }
            | LedgerChange::Revoke { resource, .. } => resource,
        }
    }
}

impl fmt::Display for LedgerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerChange::Grant {
                project,
                resource,
                pull_request,
                expires,
                request,
                ..
            } => write!(
                f,
                "+ grant   {project}: {resource}{}{} ({request})",
                if *pull_request {
                    ", pull requests too"
                } else {
                    ""
                },
                expires
                    .as_ref()
                    .map_or(String::new(), |e| format!(", until {e}"))
            ),
            LedgerChange::Renew {
                project,
                resource,
                from,
                to,
                request,
                ..
            } => write!(
                f,
                "~ renew   {project}: {resource} from {} to {} ({request})",
                from.as_deref().unwrap_or("no expiry"),
                to.as_deref().unwrap_or("no expiry")
            ),
            LedgerChange::Revoke {
                project,
                resource,
                why,
            } => write!(f, "- revoke  {project}: {resource} ({why})"),
        }
    }
}

/// What `apply` would do with the pending requests.
#[derive(Clone, Debug, Default)]
pub struct LedgerPlan {
    pub changes: Vec<LedgerChange>,
    /// Request files that are fully handled by `changes` and are deleted when applied.
    pub consumed: Vec<String>,
    /// Request files left alone, and why (they have check errors; they stay for someone to fix
    /// rather than being retried in a loop).
    pub skipped: Vec<(String, String)>,
    /// People who accept the terms of service with their request (`accept_tos`), to add to
    /// `people/tos.yml` ([`crate::tos_claims`]).
    pub tos: Vec<crate::tos_claims::TosAcceptance>,
}

/// Plans every pending request. A request with any `check` error is skipped whole.
pub fn plan_requests(
    repo: &Repo,
    today: Date,
    origins: &HashMap<String, RequestOrigin>,
) -> LedgerPlan {
    let diags = run_all(repo, today);
    let mut plan = LedgerPlan::default();
    let held: HashMap<(String, &str), &Grant> = repo
        .grants
        .iter()
        .flat_map(|f| {
            let project = project_key(&f.value.project);
            f.value
                .grants
                .iter()
                .map(move |g| ((project.clone(), g.resource.as_str()), g))
        })
        .collect();
    // Project names compare case-insensitively, and every change to a project carries one
    // spelling: its grant file's, or, for a project new to the ledger, the first request's.
    let mut spelling: HashMap<String, String> = HashMap::new();
    for f in &repo.grants {
        spelling
            .entry(project_key(&f.value.project))
            .or_insert_with(|| f.value.project.value.clone());
    }
    // Several pending requests may ask for the same grant: the first one makes the change, the
    // others are consumed with it (one grant, one provider change, counted once).
    let mut planned: HashSet<(String, String)> = HashSet::new();
    for entry in &repo.requests {
        let path = entry.path.as_str();
        let errors = diags
            .iter()
            .filter(|d| d.file == path && d.severity == crate::Severity::Error)
            .count();
        let Some(req) = (errors == 0)
            .then_some(entry.value.request.as_ref())
            .flatten()
        else {
            plan.skipped.push((
                path.to_string(),
                format!("{} error(s); `gatehouse check` lists them", errors.max(1)),
            ));
            continue;
        };
        let judged = origins.get(path);
        let origin = judged.cloned().unwrap_or_default();
        let request_ref = origin.url.clone().unwrap_or_else(|| path.to_string());
        // The terms of service accepted with the request: only by its pull request's author.
        // Not judged (a preview, `plan`): shown as the request says, for `apply` to verify.
        if let Some(claim) = &req.accept_tos {
            let author = match judged {
                Some(o) => o.author.clone(),
                None => Some((claim.github.value.clone(), claim.id.value.0)),
            };
            if let Err(why) = crate::tos_claims::judge_claim(claim, author.as_ref()) {
                plan.skipped.push((path.to_string(), why));
                continue;
            }
            if let Some(author) = &author {
                plan.tos
                    .push(crate::tos_claims::acceptance(author, today, &request_ref));
            }
        }
        let mut listed = HashSet::new();
        for named in &req.projects {
            let key = project_key(named);
            // The same project twice (`duplicate-project`, a warning) is one change.
            if !listed.insert(key.clone()) {
                continue;
            }
            let project = spelling
                .entry(key.clone())
                .or_insert_with(|| named.value.clone())
                .clone();
            for resource in &req.resources {
                let Some(res) = repo.resource(resource) else {
                    continue;
                };
                if planned.contains(&(key.clone(), resource.value.clone())) {
                    continue;
                }
                let existing = held.get(&(key.clone(), resource.as_str()));
                let before = plan.changes.len();
                let default_end = res
                    .max_duration
                    .as_ref()
                    .and_then(|m| m.value.end_from(today));
                let expires = req.expires.as_ref().map(|e| e.value.0).or(default_end);
                match (req.action.value, existing) {
                    (RequestAction::Grant, None) => {
                        let grant = Grant {
                            resource: Spanned::unplaced(resource.value.clone()),
                            pull_request: req.pull_request.unwrap_or(res.defaults.pull_request),
                            forks: req.forks,
                            granted: Spanned::unplaced(Day(today)),
                            expires: expires.map(|d| Spanned::unplaced(Day(d))),
                            request: Some(Spanned::unplaced(request_ref.clone())),
                            approved_by: origin
                                .approved_by
                                .iter()
                                .cloned()
                                .map(Spanned::unplaced)
                                .collect(),
                            users: req.users.as_ref().map(|u| GrantUsers {
                                users: u.clone(),
                                teams: Vec::new(),
                            }),
                            send_pr: req.send_pr,
                        };
                        plan.changes.push(LedgerChange::Grant {
                            project: project.clone(),
                            resource: resource.value.clone(),
                            pull_request: grant.pull_request,
                            expires: expires.map(|d| d.to_string()),
                            request: request_ref.clone(),
                            grant: Box::new(grant),
                        });
                    }
                    (RequestAction::Renew, Some(g)) => {
                        let from = g.expires.as_ref().map(|e| e.value.0);
                        if expires > from || (expires.is_none() && from.is_some()) {
                            plan.changes.push(LedgerChange::Renew {
                                project: project.clone(),
                                resource: resource.value.clone(),
                                from: from.map(|d| d.to_string()),
                                to: expires.map(|d| d.to_string()),
                                request: request_ref.clone(),
                                on: today,
                            });
                        }
                    }
                    (RequestAction::Revoke, Some(_)) => plan.changes.push(LedgerChange::Revoke {
                        project: project.clone(),
                        resource: resource.value.clone(),
                        why: request_ref.clone(),
                    }),
                    // Granting what is held, or revoking what is not: nothing to do.
                    _ => {}
                }
                if plan.changes.len() > before {
                    planned.insert((key.clone(), resource.value.clone()));
                }
            }
        }
        plan.consumed.push(path.to_string());
    }
    plan
}

/// Revokes every grant whose `expires` is before `today`.
pub fn plan_expiry(repo: &Repo, today: Date) -> Vec<LedgerChange> {
    let mut out = Vec::new();
    for f in &repo.grants {
        for g in &f.value.grants {
            if let Standing::Expired(last) = g.validity().on(today) {
                out.push(LedgerChange::Revoke {
                    project: f.value.project.value.clone(),
                    resource: g.resource.value.clone(),
                    why: format!("expired on {last}"),
                });
            }
        }
    }
    out
}

/// Grants that are active on `today`.
pub fn active_grants(repo: &Repo, today: Date) -> usize {
    repo.active_grants(today).count()
}

/// The grant files after `changes`: path -> new contents, `None` for a file to delete.
/// Files not touched are not listed.
///
/// A change edits the file its project was read from ([`Repo::grant_file`]: its path and its
/// spelling of the project, whatever case the change spells it in); only a project without
/// one gets a new file, `grants/<project>.yml`.
pub fn apply_changes(repo: &Repo, changes: &[LedgerChange]) -> BTreeMap<String, Option<GrantFile>> {
    let mut files: HashMap<String, Loaded<GrantFile>> = HashMap::new();
    for change in changes {
        let project = change.project();
        let Loaded { value: file, .. } =
            files
                .entry(project_key(project))
                .or_insert_with(|| match repo.grant_file(project) {
                    Some(read) => read.clone(),
                    None => Loaded {
                        path: format!("{GRANTS_DIR}/{project}.yml"),
                        value: GrantFile {
                            project: Spanned::unplaced(project.to_string()),
                            grants: Vec::new(),
                        },
                    },
                });
        match change {
            LedgerChange::Grant { grant, .. } => {
                if !file
                    .grants
                    .iter()
                    .any(|g| g.resource.value == grant.resource.value)
                {
                    file.grants.push((**grant).clone());
                }
            }
            LedgerChange::Renew {
                resource, to, on, ..
            } => {
                if let Some(g) = file
                    .grants
                    .iter_mut()
                    .find(|g| g.resource.as_str() == resource)
                {
                    g.expires = to
                        .as_ref()
                        .and_then(|t| t.parse::<Day>().ok())
                        .map(Spanned::unplaced);
                    // `granted` keeps recording the first grant and only the end moves, unless
                    // the new end is further from it than the resource allows: then the term
                    // starts again on the day of the renewal (git history keeps the first
                    // grant), or the ledger would fail its own check and stop every later run.
                    let limit = repo
                        .resource(&g.resource)
                        .and_then(|r| r.max_duration.as_ref())
                        .and_then(|m| m.value.end_from(g.granted.value.0));
                    if let (Some(limit), Some(end)) = (limit, &g.expires)
                        && end.value.0 > limit
                    {
                        g.granted = Spanned::unplaced(Day(*on));
                    }
                }
            }
            LedgerChange::Revoke { resource, .. } => {
                file.grants.retain(|g| g.resource.as_str() != resource);
            }
        }
    }
    files
        .into_values()
        .map(|Loaded { path, value }| {
            let keep = (!value.grants.is_empty()).then_some(value);
            (path, keep)
        })
        .collect()
}

/// The repository as it will be once `changes` are applied and `consumed` requests deleted.
pub fn applied_repo(repo: &Repo, changes: &[LedgerChange], consumed: &[String]) -> Repo {
    let mut after = repo.clone();
    for (path, file) in apply_changes(repo, changes) {
        after.grants.retain(|f| f.path != path);
        if let Some(value) = file {
            after.grants.push(crate::repo::Loaded { path, value });
        }
    }
    after.grants.sort_by(|a, b| a.path.cmp(&b.path));
    after.requests.retain(|r| !consumed.contains(&r.path));
    after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    /// A renewal asks for a full term from today; the ledger it writes must still pass
    /// `check`, or every later `apply` refuses to run.
    #[test]
    fn a_renewal_beyond_the_first_term_restarts_the_term_and_stays_valid() {
        let today = jiff::civil::date(2026, 11, 28);
        let files: Vec<(String, String)> = [
            ("gatehouse.yml", "org: cf\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n"),
            ("resources/gpu.yml", "name: gpu\nprovider: cirun\nlabels: [gpu]\nmax_duration: 1y\n"),
            ("grants/x.yml", "project: x\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n"),
            ("requests/r.yml", "action: renew\nprojects: [x]\nresources: [gpu]\n"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let repo = Repo::from_sources(files);
        let plan = plan_requests(&repo, today, &HashMap::new());
        let after = applied_repo(&repo, &plan.changes, &plan.consumed);
        let g = &after.grants[0].value.grants[0];
        assert_eq!(g.granted.value.0, today);
        assert_eq!(
            g.expires.as_ref().unwrap().value.0,
            jiff::civil::date(2027, 11, 28)
        );
        let errors: Vec<_> = run_all(&after, today)
            .sorted()
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
