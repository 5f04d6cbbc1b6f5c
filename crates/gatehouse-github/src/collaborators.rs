//! Who holds which role on a repository: its collaborators (`GET
//! /repos/{owner}/{repo}/collaborators?affiliation=all`, schema `collaborator`) and a team's
//! repositories (`GET /orgs/{org}/teams/{team_slug}/repos`). With `affiliation=all` the list
//! holds everyone with access: outside collaborators, members with access through teams or
//! the organisation's base permission, and owners; anyone absent has no role.
//!
//! And who is in a team: `GET /orgs/{org}/teams/{team_slug}/members` (operation
//! `teams/list-members-in-org`, items `simple-user`), members of its child teams included
//! (GitHub's default), matched by account id.

use serde::Deserialize;

use crate::client::{Client, Conditional, Error};

/// A role on a repository, as GitHub names it (`role_name`), strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain => "maintain",
            Role::Write => "write",
            Role::Triage => "triage",
            Role::Read => "read",
        }
    }

    /// GitHub's role name; `None` for a custom role's name.
    pub fn parse(name: &str) -> Option<Role> {
        Some(match name.to_ascii_lowercase().as_str() {
            "admin" => Role::Admin,
            "maintain" => Role::Maintain,
            "write" | "push" => Role::Write,
            "triage" => Role::Triage,
            "read" | "pull" => Role::Read,
            _ => return None,
        })
    }
}

/// One person with access to a repository, and their role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collaborator {
    pub login: String,
    pub id: i64,
    /// `None` when GitHub gave neither a known role name nor permissions.
    pub role: Option<Role>,
}

#[derive(Deserialize)]
struct CollaboratorAnswer {
    login: String,
    id: i64,
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default)]
    permissions: Option<Permissions>,
}

/// `permissions` of a collaborator: what each role allows.
#[derive(Deserialize)]
struct Permissions {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    maintain: bool,
    #[serde(default)]
    push: bool,
    #[serde(default)]
    triage: bool,
    #[serde(default)]
    pull: bool,
}

impl CollaboratorAnswer {
    /// The role: `role_name` when it is one of GitHub's; for a custom role, the strongest
    /// base permission it carries.
    fn into_collaborator(self) -> Collaborator {
        let from_permissions = self.permissions.and_then(|p| {
            [
                (p.admin, Role::Admin),
                (p.maintain, Role::Maintain),
                (p.push, Role::Write),
                (p.triage, Role::Triage),
                (p.pull, Role::Read),
            ]
            .into_iter()
            .find_map(|(on, role)| on.then_some(role))
        });
        Collaborator {
            role: self
                .role_name
                .as_deref()
                .and_then(Role::parse)
                .or(from_permissions),
            login: self.login,
            id: self.id,
        }
    }
}

/// A member of a team: what gatehouse reads of GitHub's `simple-user` (`login` and `id` are
/// required there).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TeamMember {
    pub login: String,
    /// The numeric account id: what a member is matched by (a login can be renamed).
    pub id: i64,
}

#[derive(Deserialize)]
struct RepositoryName {
    full_name: String,
}

impl Client {
    /// Everyone with access to `repository` and their roles, asked only if changed since the
    /// answer whose `ETag` is `etag` (a 304 costs no rate limit). `None` when GitHub has no
    /// such repository (or the token may not see it).
    pub async fn collaborators(
        &self,
        repository: &str,
        etag: Option<&str>,
    ) -> Result<Option<Conditional<Vec<Collaborator>>>, Error> {
        let Some((owner, name)) = repository.split_once('/') else {
            return Err(Error::Settings(format!(
                "`{repository}` is not an owner/name repository"
            )));
        };
        let answer: Option<Conditional<Vec<CollaboratorAnswer>>> = self
            .get_all_if_changed(
                &["repos", owner, name, "collaborators"],
                &[("affiliation", "all")],
                None,
                etag,
            )
            .await?;
        Ok(answer.map(|c| match c {
            Conditional::NotModified => Conditional::NotModified,
            Conditional::Modified { value, etag } => Conditional::Modified {
                value: value
                    .into_iter()
                    .map(CollaboratorAnswer::into_collaborator)
                    .collect(),
                etag,
            },
        }))
    }

    /// The repositories (`owner/name`) a team has access to; `None` when GitHub knows no such
    /// team (deleted, say).
    pub async fn team_repositories(
        &self,
        org: &str,
        team_slug: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        let repos: Option<Vec<RepositoryName>> = self
            .get_all(&["orgs", org, "teams", team_slug, "repos"], None)
            .await?;
        Ok(repos.map(|r| r.into_iter().map(|r| r.full_name).collect()))
    }

    /// Everyone in the organisation's team `team_slug` (members of its child teams too), every
    /// page; `None` when GitHub knows no such team (deleted or renamed, say) or the token may
    /// not see it.
    pub async fn team_members(
        &self,
        org: &str,
        team_slug: &str,
    ) -> Result<Option<Vec<TeamMember>>, Error> {
        self.get_all(&["orgs", org, "teams", team_slug, "members"], None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_is_the_role_name_or_the_strongest_permission_of_a_custom_role() {
        let read = |json: &str| {
            serde_json::from_str::<CollaboratorAnswer>(json)
                .unwrap()
                .into_collaborator()
                .role
        };
        assert_eq!(
            read(
                r#"{"login": "a", "id": 1, "role_name": "maintain", "permissions": {"admin": false, "maintain": true, "push": true, "triage": true, "pull": true}}"#
            ),
            Some(Role::Maintain)
        );
        assert_eq!(
            read(
                r#"{"login": "a", "id": 1, "role_name": "release-manager", "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true}}"#
            ),
            Some(Role::Write)
        );
        assert_eq!(read(r#"{"login": "a", "id": 1}"#), None);
    }
}
