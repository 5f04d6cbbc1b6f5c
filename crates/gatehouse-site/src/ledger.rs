//! The ledger as the site and the JSON API show it: plain, sorted, serialisable records built
//! from a [`Repo`]. The HTML templates and `v1/*.json` read the same records, so a page and
//! its JSON can never disagree.
//!
//! Version 1 of the JSON schema is these structs as serde writes them (documented in
//! `docs/API.md`); a field is only ever added, never renamed or removed, within a version.

use std::collections::{BTreeMap, HashMap};

use gatehouse_core::Repo;
use gatehouse_core::cost::Price;
use gatehouse_core::model::{Grant, Request, RequestAction, RequestForm, Resource};
use gatehouse_core::names::{project_key, validate_project_name};
use jiff::civil::Date;
use serde::Serialize;

use crate::cost::{CostView, PriceView};

/// The version of the JSON schema written under `v1/`.
pub const SCHEMA_VERSION: u32 = 1;

/// A grant whose `expires` is within this many days of today is shown as expiring soon.
pub const SOON_DAYS: i64 = 30;

/// One resource, with how many projects hold it and how many requests wait for it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ResourceView {
    pub name: String,
    pub provider: String,
    pub description: Option<String>,
    pub eligibility: Option<String>,
    pub labels: Vec<String>,
    pub specs: BTreeMap<String, String>,
    /// The longest a grant may last, as written (`1y`, `90d`).
    pub max_duration: Option<String>,
    /// The longest one of its jobs may run, in minutes (the guard cancels longer runs).
    pub max_job_minutes: Option<u32>,
    pub quota: QuotaView,
    /// What a minute of it costs, when its file says.
    pub cost: Option<PriceView>,
    /// Whether new grants allow pull-request builds unless the request says.
    pub pull_request_default: bool,
    /// The repository roles that may trigger jobs.
    pub roles: Vec<String>,
    pub require_tos: bool,
    /// Projects holding a grant of it (expired ones included until `expire` removes them).
    pub projects: usize,
    pub pending_requests: usize,
    /// The page of this resource, relative to the site's root.
    pub page: String,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct QuotaView {
    pub project_minutes_per_month: Option<u64>,
    pub minutes_per_month: Option<u64>,
    pub concurrency: Option<u32>,
}

/// One grant of one resource to one project.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GrantView {
    pub project: String,
    /// The project's repository (`org/<project><suffix>`), when `gatehouse.yml` says how.
    pub repository: Option<String>,
    pub resource: String,
    pub granted: String,
    pub expires: Option<String>,
    /// `active`, `expiring` (within [`SOON_DAYS`] days), `expired` (not yet removed) or
    /// `pending` (written ahead of its `granted` day, not in force yet).
    pub status: &'static str,
    pub pull_request: bool,
    /// Pull requests from forks may use it (`pull_request` and [`Grant::allows_forks`]).
    pub forks: bool,
    /// The pull request that asked for it, as the ledger records it.
    pub request: Option<String>,
    pub approved_by: Vec<String>,
    /// When set, only these people may trigger jobs (beyond the resource's roles).
    pub users: Option<Vec<String>>,
}

/// A request waiting in `requests/`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestView {
    /// The request file, relative to the access repository.
    pub file: String,
    /// `grant`, `revoke` or `renew`; `invalid` when the file could not be understood.
    pub action: String,
    /// The admin-requests action (`cirun`, `namespace`, ...) when written in that form.
    pub admin_action: Option<String>,
    pub projects: Vec<String>,
    pub resources: Vec<String>,
    pub pull_request: Option<bool>,
    pub expires: Option<String>,
    pub reason: Option<String>,
    /// The pull request that added the file, when known; else `None`.
    pub pull_request_url: Option<String>,
}

/// One change to one of a project's grants, from the git history of its ledger file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HistoryEvent {
    pub date: String,
    /// `granted`, `changed` or `revoked`.
    pub change: String,
    pub resource: String,
    pub details: String,
    pub commit: String,
    pub author: String,
    pub subject: String,
}

/// One project that holds at least one grant or appears in a pending request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProjectView {
    pub name: String,
    pub repository: Option<String>,
    pub grants: Vec<GrantView>,
    pub pending_requests: Vec<RequestView>,
    /// `None` when the history was not read (no git checkout, or not asked for).
    pub history: Option<Vec<HistoryEvent>>,
    pub page: String,
}

/// The whole ledger, sorted: resources by name, grants by (project, resource), projects by
/// name, requests by file.
#[derive(Clone, Debug, Serialize)]
pub struct Ledger {
    pub org: Option<String>,
    pub date: String,
    pub resources: Vec<ResourceView>,
    pub grants: Vec<GrantView>,
    pub projects: Vec<ProjectView>,
    pub requests: Vec<RequestView>,
    /// Names that cannot be a file name on the site (they fail `check`); left out of it.
    #[serde(skip)]
    pub skipped: Vec<String>,
    /// The worst-case monthly cost the caps allow (`v1/costs.json`).
    #[serde(skip)]
    pub costs: CostView,
    /// `people/tos.yml` in the users-list format Cirun's `users_from_json` reads
    /// (`v1/tos-users.json`); `None` without that file.
    #[serde(skip)]
    pub tos_users: Option<String>,
}

/// What the ledger is built from besides the repository.
#[derive(Clone, Debug, Default)]
pub struct LedgerInputs {
    /// Project → its grant history, oldest first.
    pub history: Option<BTreeMap<String, Vec<HistoryEvent>>>,
    /// Request file → the URL of the pull request that added it.
    pub request_links: BTreeMap<String, String>,
}

/// The pages' history from what git says (`gatehouse_history::ledger_history`).
impl From<gatehouse_history::LedgerHistory> for LedgerInputs {
    fn from(h: gatehouse_history::LedgerHistory) -> Self {
        let event = |e: gatehouse_history::Event| HistoryEvent {
            date: e.date,
            change: e.change.to_string(),
            resource: e.resource,
            details: e.details,
            commit: e.commit,
            author: e.author,
            subject: e.subject,
        };
        LedgerInputs {
            history: Some(
                h.events
                    .into_iter()
                    .map(|(project, events)| (project, events.into_iter().map(event).collect()))
                    .collect(),
            ),
            request_links: h.request_links,
        }
    }
}

impl Ledger {
    pub fn build(repo: &Repo, today: Date, inputs: &LedgerInputs) -> Ledger {
        let settings = repo.settings.as_ref().map(|s| &s.value);
        let repository_of = |p: &str| settings.map(|s| s.repository_of(p));
        let mut skipped = Vec::new();

        let mut requests: Vec<RequestView> = repo
            .requests
            .iter()
            .map(|r| request_view(&r.path, r.value.request.as_ref(), &r.value.file, inputs))
            .collect();

        // Project names compare case-insensitively: each project is shown under one name, its
        // grant file's spelling (the first request's before it holds anything), so that a
        // request for `PyTorch-CPU` is listed on the page of `pytorch-cpu`, not a page of its own.
        let mut names: HashMap<String, String> = HashMap::new();
        let mut grants: Vec<GrantView> = Vec::new();
        for f in &repo.grants {
            let project = f.value.project.as_str();
            if validate_project_name(project).is_err() {
                skipped.push(format!("project `{project}` ({})", f.path));
                continue;
            }
            let project = names
                .entry(project_key(project))
                .or_insert_with(|| project.to_string());
            for g in &f.value.grants {
                let forks = g.pull_request
                    && repo
                        .resource(g.resource.as_str())
                        .is_none_or(|r| g.allows_forks(r));
                grants.push(grant_view(project, repository_of(project), g, forks, today));
            }
        }
        for q in &mut requests {
            for p in q
                .projects
                .iter_mut()
                .filter(|p| validate_project_name(p).is_ok())
            {
                *p = names
                    .entry(project_key(p))
                    .or_insert_with(|| p.clone())
                    .clone();
            }
            q.projects.sort();
            q.projects.dedup();
        }
        grants.sort_by(|a, b| (&a.project, &a.resource).cmp(&(&b.project, &b.resource)));
        grants.dedup_by(|a, b| a.project == b.project && a.resource == b.resource);

        let mut resources: Vec<ResourceView> = Vec::new();
        for r in &repo.resources {
            let res = &r.value;
            if validate_project_name(&res.name).is_err() {
                skipped.push(format!("resource `{}` ({})", res.name.value, r.path));
                continue;
            }
            let projects = grants.iter().filter(|g| g.resource == *res.name).count();
            let pending = requests
                .iter()
                .filter(|q| q.resources.iter().any(|x| x == res.name.as_str()))
                .count();
            resources.push(resource_view(res, projects, pending));
        }
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        resources.dedup_by(|a, b| a.name == b.name);

        let mut by_project: BTreeMap<&str, ProjectView> = BTreeMap::new();
        let project_view = |name: &str| ProjectView {
            name: name.to_string(),
            repository: repository_of(name),
            grants: Vec::new(),
            pending_requests: Vec::new(),
            history: inputs
                .history
                .as_ref()
                .map(|h| h.get(name).cloned().unwrap_or_default()),
            page: format!("projects/{name}.html"),
        };
        for g in &grants {
            by_project
                .entry(g.project.as_str())
                .or_insert_with(|| project_view(&g.project))
                .grants
                .push(g.clone());
        }
        for q in &requests {
            for p in &q.projects {
                if validate_project_name(p).is_err() {
                    continue;
                }
                by_project
                    .entry(p.as_str())
                    .or_insert_with(|| project_view(p))
                    .pending_requests
                    .push(q.clone());
            }
        }
        let projects = by_project.into_values().collect();

        Ledger {
            org: settings.map(|s| s.org.value.clone()),
            date: today.to_string(),
            resources,
            grants,
            projects,
            requests,
            skipped,
            costs: CostView::build(repo, today),
            tos_users: repo
                .tos
                .as_ref()
                .map(|t| gatehouse_core::import::users_json::to_json(&t.value)),
        }
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceView> {
        self.resources.iter().find(|r| r.name == name)
    }

    pub fn project(&self, name: &str) -> Option<&ProjectView> {
        self.projects
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.projects[i])
    }

    /// The grants of one resource, sorted by project.
    pub fn grants_of<'a>(&'a self, resource: &'a str) -> impl Iterator<Item = &'a GrantView> {
        self.grants.iter().filter(move |g| g.resource == resource)
    }
}

fn resource_view(res: &Resource, projects: usize, pending: usize) -> ResourceView {
    let mut specs = BTreeMap::new();
    if let Some(s) = &res.specs {
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                specs.insert(k.to_string(), v);
            }
        };
        put("os", s.os.clone());
        put("arch", s.arch.clone());
        put("cpu", s.cpu.map(|v| v.to_string()));
        put("memory_gb", s.memory_gb.map(|v| v.to_string()));
        put("disk_gb", s.disk_gb.map(|v| v.to_string()));
        put("gpu", s.gpu.clone());
        put("instance_type", s.instance_type.clone());
    }
    let quota = res
        .quota
        .as_ref()
        .map_or_else(QuotaView::default, |q| QuotaView {
            project_minutes_per_month: q.project_minutes_per_month,
            minutes_per_month: q.minutes_per_month,
            concurrency: q.concurrency.as_ref().map(|c| c.value),
        });
    let mut labels: Vec<String> = res.labels.iter().map(|l| l.value.clone()).collect();
    labels.sort();
    let mut roles: Vec<String> = res
        .users
        .roles
        .iter()
        .map(|r| r.value.as_str().to_string())
        .collect();
    roles.sort();
    roles.dedup();
    ResourceView {
        name: res.name.value.clone(),
        provider: res.provider.value.clone(),
        description: res.description.as_ref().map(|d| d.trim().to_string()),
        eligibility: res.eligibility.as_ref().map(|d| d.trim().to_string()),
        labels,
        specs,
        max_duration: res.max_duration.as_ref().map(|d| d.value.to_string()),
        max_job_minutes: res.max_job_minutes.as_ref().map(|m| m.value),
        quota,
        cost: res
            .cost
            .as_ref()
            .and_then(|c| Price::of(&c.value))
            .map(PriceView::new),
        pull_request_default: res.defaults.pull_request,
        roles,
        require_tos: res.users.require_tos,
        projects,
        pending_requests: pending,
        page: format!("resources/{}.html", res.name.value),
    }
}

/// `forks`: whether forks' pull requests may use the grant ([`Grant::allows_forks`]).
fn grant_view(
    project: &str,
    repository: Option<String>,
    g: &Grant,
    forks: bool,
    today: Date,
) -> GrantView {
    let soon = today
        .checked_add(jiff::Span::new().days(SOON_DAYS))
        .unwrap_or(Date::MAX);
    let status = match &g.expires {
        _ if g.is_expired(today) => "expired",
        _ if g.is_pending(today) => "pending",
        Some(e) if e.value.0 <= soon => "expiring",
        _ => "active",
    };
    let mut approved_by: Vec<String> = g.approved_by.iter().map(|a| a.value.clone()).collect();
    approved_by.sort_by_key(|a| a.to_lowercase());
    GrantView {
        project: project.to_string(),
        repository,
        resource: g.resource.value.clone(),
        granted: g.granted.value.to_string(),
        expires: g.expires.as_ref().map(|e| e.value.to_string()),
        status,
        pull_request: g.pull_request,
        forks,
        request: g.request.as_ref().map(|r| r.value.clone()),
        approved_by,
        users: g.users.as_ref().map(|u| {
            let mut v: Vec<String> = u.users.iter().map(|x| x.login().to_string()).collect();
            v.sort_by_key(|a| a.to_lowercase());
            v
        }),
    }
}

fn request_view(
    path: &str,
    req: Option<&Request>,
    file: &gatehouse_core::model::RequestFile,
    inputs: &LedgerInputs,
) -> RequestView {
    let link = inputs.request_links.get(path).cloned();
    match req {
        Some(r) => RequestView {
            file: path.to_string(),
            action: match r.action.value {
                RequestAction::Grant => "grant",
                RequestAction::Revoke => "revoke",
                RequestAction::Renew => "renew",
            }
            .to_string(),
            admin_action: match &r.form {
                RequestForm::Native => None,
                RequestForm::AdminRequests { action } => Some(action.value.clone()),
            },
            projects: sorted(r.projects.iter().map(|p| p.value.clone())),
            resources: sorted(r.resources.iter().map(|p| p.value.clone())),
            pull_request: r.pull_request,
            expires: r.expires.as_ref().map(|e| e.value.to_string()),
            reason: r.reason.as_ref().map(|s| s.trim().to_string()),
            pull_request_url: link,
        },
        None => RequestView {
            file: path.to_string(),
            action: "invalid".into(),
            admin_action: None,
            projects: sorted(
                file.projects
                    .iter()
                    .chain(file.feedstocks.iter())
                    .flatten()
                    .map(|p| p.value.clone()),
            ),
            resources: sorted(file.resources.iter().flatten().map(|p| p.value.clone())),
            pull_request: file.pull_request,
            expires: None,
            reason: file.reason.as_ref().map(|s| s.trim().to_string()),
            pull_request_url: link,
        },
    }
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v
}
