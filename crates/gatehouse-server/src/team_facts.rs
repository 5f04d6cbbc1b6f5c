//! The guard's team facts: who is in each team a grant's user list names (Cirun's `teams`),
//! kept as every fact is ([`crate::fact_cache`]).
//!
//! Each such team's whole member list (`GET /orgs/{org}/teams/{team_slug}/members`, every
//! page) is fetched ahead of time (at start, on reload, before it goes stale) and made stale by
//! webhooks (`membership`, `team`). Members are matched by account id; absence from a fresh
//! list means not a member, and a job is never let in by a team nobody could read. A team
//! GitHub does not know (deleted, renamed, or hidden from the token) is such a failure too,
//! reported in `/healthz`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_github::Client;
use gatehouse_github::collaborators::TeamMember;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fact_cache::{Fact, FactCache, Fetch, Stored as StoredList, stored_entries};
use crate::store::{FactRow, FactTable, Store, TeamFactsWrite, Write, now_text, time_text};

/// Every team's member list, keyed by lower-cased slug.
pub type TeamFacts = FactCache<Members>;

/// One team's member list as the guard holds it.
pub type TeamMembers = Fact<Members>;

/// The account ids of a team's members.
#[derive(Clone, Debug, Default)]
pub struct Members(HashSet<i64>);

impl TeamMembers {
    /// Whether the person with this account id is a member.
    pub fn contains(&self, id: i64) -> bool {
        self.list.0.contains(&id)
    }
}

/// A member as stored (JSON in `team_facts.members`); the login only helps a reader.
#[derive(Serialize, Deserialize)]
struct Stored {
    login: String,
    id: i64,
}

fn members_json(members: &[TeamMember]) -> String {
    let stored: Vec<Stored> = members
        .iter()
        .map(|m| Stored {
            login: m.login.clone(),
            id: m.id,
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

impl StoredList for Members {
    const TABLE: FactTable = FactTable::Teams;

    fn from_row(row: &FactRow) -> Members {
        let members: Vec<Stored> = stored_entries(row);
        Members(members.into_iter().map(|m| m.id).collect())
    }
}

/// A team's members, asked of GitHub in the organisation `org`.
struct TeamMemberList<'a> {
    github: &'a Client,
    store: &'a Store,
    org: &'a str,
}

impl Fetch for TeamMemberList<'_> {
    type List = Members;
    type Answer = Vec<TeamMember>;

    fn what(&self, key: &str) -> String {
        format!("the members of team {}/{key}", self.org)
    }

    async fn ask(
        &self,
        key: &str,
        _held: Option<&TeamMembers>,
    ) -> Result<Option<Self::Answer>, gatehouse_github::Error> {
        self.github.team_members(self.org, key).await
    }

    fn unknown(&self, key: &str) -> anyhow::Error {
        // Nobody's membership can be known in a team GitHub does not show.
        anyhow::anyhow!(
            "GitHub has no team {}/{key}, or the token may not see it (it needs to read the organisation's members)",
            self.org
        )
    }

    async fn keep(
        &self,
        key: &str,
        members: Self::Answer,
        started: Timestamp,
        _held: Option<&TeamMembers>,
    ) -> anyhow::Result<Members> {
        self.store
            .commit(vec![Write::TeamFacts(TeamFactsWrite::Members {
                team: key.to_string(),
                members: members_json(&members),
                fetched_at: time_text(started),
                changed_at: now_text(),
            })])
            .await?;
        Ok(Members(members.iter().map(|m| m.id).collect()))
    }
}

impl TeamFacts {
    /// The team's list, fetched from GitHub unless it is fresh, waiting for a fetch already
    /// under way. Retries until `deadline`; an error says why it could not be had.
    pub async fn refresh(
        &self,
        github: &Client,
        store: &Store,
        org: &str,
        team: &str,
        ttl: Duration,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<TeamMembers>> {
        let fetch = TeamMemberList { github, store, org };
        self.obtain(&fetch, store, team, ttl, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_one_on_the_list() {
        let team = TeamMembers {
            fetched_at: Some("2026-12-06T11:30:00Z".parse().unwrap()),
            invalidated_at: None,
            list: Members(HashSet::from([1])),
        };
        assert!(team.contains(1));
        assert!(!team.contains(2));
    }
}
