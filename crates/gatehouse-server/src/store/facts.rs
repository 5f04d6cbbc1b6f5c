//! The guard's facts in the store ([`crate::fact_cache`]): the role facts (`role_facts`, one
//! collaborator list per repository) and the team facts (`team_facts`, one member list per
//! team a grant names), each list with when its fetch started and when a webhook last made it
//! stale. The tables are in `store/schema.rs`; the writes go through [`super::Write`] like
//! every other change, so every replica reads what one of them learnt.

use super::{Param, Pool, Statement, Store};

/// A table of facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactTable {
    /// `role_facts`: each repository's collaborators (with their ETag).
    Roles,
    /// `team_facts`: each team's members.
    Teams,
}

/// One list as stored (times as [`super::time_text`] writes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactRow {
    /// The lower-cased repository (`owner/name`) or team slug.
    pub key: String,
    /// The list as JSON; `None` when never fetched.
    pub list: Option<String>,
    /// The ETag GitHub gave with the list (role facts only).
    pub etag: Option<String>,
    pub fetched_at: Option<String>,
    pub invalidated_at: Option<String>,
    pub changed_at: String,
}

/// A change to the team facts.
#[derive(Clone, Debug)]
pub enum TeamFactsWrite {
    /// A team's member list (`members`, JSON) from a fetch that started at `fetched_at`;
    /// ignored when a fetch that started later was stored already.
    Members {
        team: String,
        members: String,
        fetched_at: String,
        changed_at: String,
    },
    /// A webhook said a team's members changed at `at`: its list is stale until fetched
    /// again. `None`: every team's.
    Invalidate { team: Option<String>, at: String },
}

/// A fetch's result replaces the stored one unless a fetch that started later was stored.
const UPSERT_MEMBERS: &str = "INSERT INTO team_facts (team, members, fetched_at, changed_at)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (team) DO UPDATE SET members = excluded.members,
        fetched_at = excluded.fetched_at, changed_at = excluded.changed_at
    WHERE team_facts.fetched_at IS NULL OR team_facts.fetched_at < excluded.fetched_at";
const INVALIDATE_TEAM: &str = "INSERT INTO team_facts (team, invalidated_at, changed_at)
    VALUES ($1, $2, $2)
    ON CONFLICT (team) DO UPDATE SET invalidated_at = excluded.invalidated_at,
        changed_at = excluded.changed_at";
const INVALIDATE_ALL_TEAMS: &str = "UPDATE team_facts SET invalidated_at = $1, changed_at = $1";

impl TeamFactsWrite {
    pub(super) fn statement(&self) -> Statement<'_> {
        fn t(s: &str) -> Param<'_> {
            Param::Text(Some(s))
        }
        match self {
            TeamFactsWrite::Members {
                team,
                members,
                fetched_at,
                changed_at,
            } => (
                UPSERT_MEMBERS,
                vec![t(team), t(members), t(fetched_at), t(changed_at)],
            ),
            TeamFactsWrite::Invalidate {
                team: Some(team),
                at,
            } => (INVALIDATE_TEAM, vec![t(team), t(at)]),
            TeamFactsWrite::Invalidate { team: None, at } => (INVALIDATE_ALL_TEAMS, vec![t(at)]),
        }
    }
}

impl Store {
    /// The lists of `table` whose row changed at or after `since` (every row when `None`),
    /// oldest change first.
    pub async fn facts_since(
        &self,
        table: FactTable,
        since: Option<&str>,
    ) -> anyhow::Result<Vec<FactRow>> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let sql = match table {
            FactTable::Roles => {
                "SELECT repository, people, etag, fetched_at, invalidated_at, changed_at
                FROM role_facts WHERE CAST($1 AS TEXT) IS NULL OR changed_at >= $1
                ORDER BY changed_at"
            }
            FactTable::Teams => {
                "SELECT team, members, CAST(NULL AS TEXT), fetched_at, invalidated_at, changed_at
                FROM team_facts WHERE CAST($1 AS TEXT) IS NULL OR changed_at >= $1
                ORDER BY changed_at"
            }
        };
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| FactRow {
                key: r.0,
                list: r.1,
                etag: r.2,
                fetched_at: r.3,
                invalidated_at: r.4,
                changed_at: r.5,
            })
            .collect())
    }
}
