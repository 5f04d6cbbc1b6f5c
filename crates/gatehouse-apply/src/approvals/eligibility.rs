//! What reviewers want to know about each requested project and resource: whether its
//! repository exists, the author's role there, and who holds the resource now. Best effort.

use std::collections::HashMap;

use gatehouse_core::Repo;
use gatehouse_core::names::same_project;
use gatehouse_github::{self as github, Client};
use jiff::civil::Date;

use super::answers::Permission;

/// What reviewers want to know about one requested project and resource.
pub(super) struct Eligibility {
    pub(super) request: String,
    pub(super) action: String,
    pub(super) project: String,
    pub(super) resource: String,
    pub(super) repository: String,
    /// Exists and is not archived, or why not, or why it is unknown.
    pub(super) repository_state: String,
    pub(super) author_role: String,
    pub(super) holds: bool,
    pub(super) projects_now: usize,
}

pub(super) async fn eligibility(
    client: &Client,
    head: &Repo,
    rules: &Repo,
    changed: &[String],
    author: &str,
    today: Date,
) -> Vec<Eligibility> {
    let Some(settings) = rules.settings.as_ref().map(|s| &s.value) else {
        return Vec::new();
    };
    let holders = |resource: &str| {
        rules
            .grants
            .iter()
            .filter(|f| {
                f.value
                    .grants
                    .iter()
                    .any(|g| g.resource.as_str() == resource && g.is_active(today))
            })
            .map(|f| f.value.project.value.clone())
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let mut asked: HashMap<String, (String, String)> = HashMap::new();
    for entry in head.requests.iter().filter(|r| changed.contains(&r.path)) {
        let Some(req) = &entry.value.request else {
            continue;
        };
        for project in &req.projects {
            let full = settings.repository_of(project);
            if !asked.contains_key(&full) {
                let facts = repository_facts(client, &full, author).await;
                asked.insert(full.clone(), facts);
            }
            let (repository_state, author_role) = asked[&full].clone();
            for resource in &req.resources {
                let holding = holders(resource);
                out.push(Eligibility {
                    request: entry.path.clone(),
                    action: format!("{:?}", req.action.value).to_lowercase(),
                    project: project.value.clone(),
                    resource: resource.value.clone(),
                    repository: full.clone(),
                    repository_state: repository_state.clone(),
                    author_role: author_role.clone(),
                    holds: holding.iter().any(|h| same_project(h, project)),
                    projects_now: holding.len(),
                });
            }
        }
    }
    out
}

/// Whether the repository exists and is not archived, and the author's role on it. Best
/// effort: a question the token may not ask is reported as unknown, not as an error.
async fn repository_facts(client: &Client, full: &str, author: &str) -> (String, String) {
    let Some((owner, name)) = full.split_once('/') else {
        return ("unknown".into(), "unknown".into());
    };
    let state = match client.get_repo(owner, name).await {
        Ok(Some(r)) if r.archived => "archived".to_string(),
        Ok(Some(_)) => "exists".to_string(),
        Ok(None) => "**not found**".to_string(),
        Err(e) => format!("unknown ({})", brief(&e)),
    };
    if state != "exists" || author.is_empty() {
        return (state, "unknown".into());
    }
    let role = match client
        .get::<Permission>(&["repos", owner, name, "collaborators", author, "permission"])
        .await
    {
        Ok(Some(p)) => p.permission,
        Ok(None) => "none".to_string(),
        Err(e) => format!("unknown ({})", brief(&e)),
    };
    (state, role)
}

fn brief(e: &github::Error) -> &'static str {
    if e.is_refusal() {
        "the token may not ask"
    } else if e.is_unavailable() {
        "GitHub did not answer"
    } else {
        "unexpected answer"
    }
}
