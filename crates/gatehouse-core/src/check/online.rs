//! Online checks, split in two: the CLI gathers facts from GitHub (I/O, at the edge), and
//! [`check_online`] turns facts into findings (pure, tested without a network).

use std::collections::{BTreeSet, HashMap};

use crate::diag::{Diagnostic, Diagnostics};
use crate::model::RequestAction;
use crate::names::{login_key, validate_project_name};
use crate::repo::Repo;
use crate::span::Span;

/// What GitHub said about a project's repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoFact {
    Exists {
        archived: bool,
    },
    Missing,
    /// GitHub could not be asked (rate limit, server error); the reason says which.
    Unknown(String),
}

/// What GitHub said about a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserFact {
    Id(i64),
    Missing,
    Unknown(String),
}

#[derive(Clone, Debug, Default)]
pub struct OnlineFacts {
    /// By project name.
    pub repos: HashMap<String, RepoFact>,
    /// By lower-cased login.
    pub users: HashMap<String, UserFact>,
}

/// The projects and logins whose facts [`check_online`] needs, each once, sorted.
pub fn online_targets(repo: &Repo) -> (Vec<String>, Vec<String>) {
    let mut projects = BTreeSet::new();
    for f in &repo.grants {
        if validate_project_name(&f.value.project).is_ok() {
            projects.insert(f.value.project.value.clone());
        }
    }
    for e in &repo.requests {
        if let Some(r) = &e.value.request {
            for p in &r.projects {
                if validate_project_name(p).is_ok() {
                    projects.insert(p.value.clone());
                }
            }
        }
    }
    let mut logins: BTreeSet<String> = repo
        .tos
        .iter()
        .flat_map(|t| t.value.iter())
        .map(|e| e.github.value.clone())
        .collect();
    for (_, reviewers) in reviewer_lists(repo) {
        logins.extend(reviewers.users.iter().map(|u| u.value.clone()));
    }
    (projects.into_iter().collect(), logins.into_iter().collect())
}

/// Every reviewer list: gatehouse.yml's, and each resource's own, with the file it is in.
fn reviewer_lists(repo: &Repo) -> Vec<(&str, &crate::model::Reviewers)> {
    let mut out = Vec::new();
    if let Some(s) = &repo.settings {
        out.push((s.path.as_str(), &s.value.reviewers));
    }
    for r in &repo.resources {
        if let Some(rev) = &r.value.reviewers {
            out.push((r.path.as_str(), rev));
        }
    }
    out
}

/// Findings from facts: repositories that are missing or archived, ToS logins whose id
/// changed hands, and reviewers (`users:`) whose login is not the account the approvals judge
/// matches them by.
pub fn check_online(repo: &Repo, facts: &OnlineFacts) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let repository = |p: &str| match &repo.settings {
        Some(s) => s.value.repository_of(p),
        None => p.to_string(),
    };
    let mut judge =
        |file: &str, span: Span, project: &str, holds: bool| match facts.repos.get(project) {
            Some(RepoFact::Missing) => diags.push(
                Diagnostic::error(
                    "repo-missing",
                    file,
                    span,
                    format!("repository {} does not exist", repository(project)),
                )
                .with_help("check the project name; a renamed repository needs its new name here"),
            ),
            Some(RepoFact::Exists { archived: true }) => diags.push(
                Diagnostic::error(
                    "repo-archived",
                    file,
                    span,
                    format!("repository {} is archived", repository(project)),
                )
                .with_help(if holds {
                    "file a revoke request: an archived project cannot use its grant"
                } else {
                    "an archived project cannot run jobs; close this request"
                }),
            ),
            Some(RepoFact::Unknown(why)) => diags.push(Diagnostic::warning(
                "online-unverified",
                file,
                span,
                format!("could not check repository {}: {why}", repository(project)),
            )),
            Some(RepoFact::Exists { archived: false }) | None => {}
        };
    for f in &repo.grants {
        judge(&f.path, f.value.project.span, &f.value.project, true);
    }
    for e in &repo.requests {
        let Some(r) = &e.value.request else { continue };
        if r.action.value == RequestAction::Revoke {
            continue;
        }
        for p in &r.projects {
            judge(&e.path, p.span, p, false);
        }
    }
    if let Some(tos) = &repo.tos {
        for entry in &tos.value {
            let file = tos.path.as_str();
            match facts.users.get(&login_key(&entry.github)) {
                Some(UserFact::Missing) => diags.push(
                    Diagnostic::error(
                        "tos-login-gone",
                        file,
                        entry.github.span,
                        format!("GitHub has no user `{}` any more", entry.github.value),
                    )
                    .with_help(format!(
                        "find account {} under its new login and update the entry, or remove it",
                        entry.id.value
                    )),
                ),
                Some(UserFact::Id(id)) if *id != entry.id.value.0 => diags.push(
                    Diagnostic::error(
                        "tos-id-mismatch",
                        file,
                        entry.id.span,
                        format!(
                            "login `{}` now belongs to account {id}, not {}: the account was renamed or the login taken by someone else",
                            entry.github.value, entry.id.value
                        ),
                    )
                    .with_help("the person with the listed id must accept the terms again under their current login"),
                ),
                Some(UserFact::Unknown(why)) => diags.push(Diagnostic::warning(
                    "online-unverified",
                    file,
                    entry.github.span,
                    format!("could not check login `{}`: {why}", entry.github.value),
                )),
                Some(UserFact::Id(_)) | None => {}
            }
        }
    }
    // Reviewers are matched by account id (people/tos.yml gives a login its id): a login with
    // no id there counts for nobody, and one whose login now names another account is not that
    // reviewer.
    for (file, reviewers) in reviewer_lists(repo) {
        for user in &reviewers.users {
            let listed = repo.account_of(&crate::model::GrantUser::Login(user.value.clone()));
            match (listed, facts.users.get(&login_key(user))) {
                (None, _) => diags.push(
                    Diagnostic::error(
                        "reviewer-no-id",
                        file,
                        user.span,
                        format!(
                            "reviewer `{}` has no account id in people/tos.yml, so their approval counts for nobody",
                            user.value
                        ),
                    )
                    .with_help("add `{ github: LOGIN, id: N }` for them to people/tos.yml"),
                ),
                (Some(id), Some(UserFact::Id(now))) if *now != id => diags.push(
                    Diagnostic::error(
                        "reviewer-id-mismatch",
                        file,
                        user.span,
                        format!(
                            "reviewer login `{}` now belongs to account {now}, not {id}: the reviewer was renamed or the login taken by someone else",
                            user.value
                        ),
                    )
                    .with_help("list the reviewer under their current login"),
                ),
                (Some(_), Some(UserFact::Missing)) => diags.push(Diagnostic::error(
                    "reviewer-login-gone",
                    file,
                    user.span,
                    format!("GitHub has no user `{}` any more", user.value),
                )),
                _ => {}
            }
        }
    }
    diags
}

#[cfg(test)]
mod reviewer_tests {
    use super::*;

    #[test]
    fn a_reviewer_login_that_names_another_account_or_no_id_is_an_error() {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: cf\nreviewers: { teams: [core], users: [dee, eve] }\n",
            ),
            ("people/tos.yml", "- { github: dee, id: 4242 }\n"),
        ]);
        let mut facts = OnlineFacts::default();
        facts.users.insert("dee".into(), UserFact::Id(777));
        facts.users.insert("eve".into(), UserFact::Id(5));
        let codes: Vec<&str> = check_online(&repo, &facts)
            .sorted()
            .iter()
            .map(|d| d.code)
            .collect();
        assert!(codes.contains(&"reviewer-id-mismatch"), "{codes:?}");
        assert!(codes.contains(&"reviewer-no-id"), "{codes:?}");
        facts.users.insert("dee".into(), UserFact::Id(4242));
        let codes: Vec<&str> = check_online(&repo, &facts)
            .sorted()
            .iter()
            .map(|d| d.code)
            .collect();
        assert!(!codes.contains(&"reviewer-id-mismatch"), "{codes:?}");
    }
}
