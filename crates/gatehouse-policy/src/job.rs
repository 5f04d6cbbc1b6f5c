//! The job context: everything `decide` needs to know about one CI job.
//!
//! The guard builds it from `workflow_job` and `workflow_run` webhooks plus the facts it holds
//! (each person's role on the repository, the members of the teams a grant names, the usage
//! counters); `gatehouse decide` reads it as
//! JSON. While the guard is still learning a job's facts (the run's event and people, the
//! people's roles), it decides with what it has through the [`Job`] trait: rules that need a
//! missing fact wait, the others may already deny.

use std::collections::BTreeMap;

use gatehouse_core::duration::Day;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::run_approval::RunApproval;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobContext {
    /// `owner/name` of the repository the job runs in.
    pub repository: String,
    /// The job's `runs-on` labels.
    pub labels: Vec<String>,
    /// The event that triggered the workflow (`push`, `pull_request`, ...).
    pub event: String,
    /// `owner/name` of the repository the code comes from; differs from `repository` for a
    /// pull request from a fork. A pull-request event without one counts as a fork whose
    /// owner is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository: Option<String>,
    /// The owner of the fork a pull request comes from (whose code runs), with their role on
    /// `repository`. Judged like `actor` for a fork's job; a fork's job without it is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_owner: Option<Actor>,
    /// Who caused the run (for a re-run: who caused the original run).
    pub actor: Actor,
    /// Who triggered this run (differs from `actor` on a re-run by someone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggering_actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    /// The commit the run builds (`workflow_run.head_sha`): what a run approval names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// The repository's default branch (`repository.default_branch`): a push of a bot there
    /// may use a resource that says `bots: trusted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// The run approval of the pull request's head commit the guard holds in force for this
    /// run, if any (its approver's `permission` as the guard looked it up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_approval: Option<RunApproval>,
    /// The day the job is judged on (expiry). The guard and the CLI fill it in; when absent,
    /// the day the policy was compiled is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<Day>,
    /// The members (numeric account ids) of the organisation's teams (by slug) that the
    /// grant's user list names, as the caller looked them up: `{"core": [885054, 123]}`. A
    /// team the grant names that is absent here is unknown, so a person it would let in is not
    /// let in (the decision is `facts-unavailable`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub teams: BTreeMap<String, Vec<i64>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub login: String,
    /// The numeric GitHub account id: what identifies a person across renames.
    pub id: i64,
    /// The person's role on the repository; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
}

/// A role on a repository, as GitHub's collaborator permission API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Admin => "admin",
            Permission::Maintain => "maintain",
            Permission::Write => "write",
            Permission::Triage => "triage",
            Permission::Read => "read",
            Permission::None => "none",
        }
    }

    /// The bit of this role in a [`crate::Policy`] role mask; `none` has none.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Permission::Admin => 1,
            Permission::Maintain => 2,
            Permission::Write => 4,
            Permission::Triage => 8,
            Permission::Read => 16,
            Permission::None => 0,
        }
    }
}

/// Minutes already used in the current calendar month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// By this project on the routed resource.
    #[serde(default)]
    pub project_minutes: u64,
    /// By every project on the routed resource.
    #[serde(default)]
    pub resource_minutes: u64,
}

impl JobContext {
    /// The actor whose permissions are checked besides `actor`, when it is someone else.
    pub fn triggering(&self) -> &Actor {
        self.triggering_actor.as_ref().unwrap_or(&self.actor)
    }
}

/// A fact a decision may have to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// The run: its event, head repository and people (from `workflow_run`, or the API).
    Run,
    /// Who holds which role on the repository (the guard's role facts).
    Roles,
    /// Who is in the teams a grant's user list names (the guard's team facts).
    Teams,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Run => "run",
            Missing::Roles => "roles",
            Missing::Teams => "teams",
        }
    }
}

/// What the run says about a job: the event and the people whose checks apply.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    pub event: &'a str,
    pub head_repository: Option<&'a str>,
    pub head_owner: Option<&'a Actor>,
    pub actor: &'a Actor,
    /// `None` when it is `actor` again.
    pub triggering_actor: Option<&'a Actor>,
    /// The commit the run builds, when known.
    pub head_sha: Option<&'a str>,
    /// The ref the run builds (`refs/heads/main`), when known.
    pub git_ref: Option<&'a str>,
    /// The repository's default branch, when known.
    pub default_branch: Option<&'a str>,
}

/// What a decision reads about a job. [`JobContext`] knows every fact; the guard's view of a
/// job may lack the run or the people's roles while it fetches them. A rule that needs a
/// missing fact is skipped; if no later rule denies, the decision is
/// [`crate::Decision::Undecided`], never an allow.
pub trait Job {
    fn repository(&self) -> &str;
    fn labels(&self) -> &[String];
    /// The runner group that took the job, once known (`runs-on: { group: ... }` jobs name
    /// none in their labels): routes the job when its labels do not.
    fn runner_group(&self) -> Option<&str> {
        None
    }
    /// The resource the job runs on, when where it runs says so (the gate on a runner serving
    /// one resource): then its labels are not routed.
    fn resource(&self) -> Option<&str> {
        None
    }
    /// Where the job routes, when the caller routed it already (the guard routes each job
    /// once, to know whether it is managed at all): `decide` then starts from it and does not
    /// route again. It must be what [`crate::Policy::route_job`] says of [`Job::labels`] and
    /// [`Job::runner_group`], or of [`Job::resource`].
    fn routed(&self) -> Option<crate::decide::Routed> {
        None
    }
    /// The day the job is judged on; `None`: the day the policy was compiled.
    fn today(&self) -> Option<Date>;
    fn usage(&self) -> Usage;
    /// `None` while the run is unknown.
    fn run(&self) -> Option<Run<'_>>;
    /// `person`'s role on the repository: `Some(None)` for no role, `None` while unknown.
    /// `person` is one of [`Job::run`]'s people.
    fn role(&self, person: &Actor) -> Option<Option<Permission>>;
    /// Whether `person` is a member of the organisation's team `team` (a slug, as a grant's
    /// `teams` names it; matched by account id): `None` while unknown. A person whom only a
    /// team would let in is then not let in: the decision waits for the fact and, without it,
    /// is `facts-unavailable`. Unknown unless the one deciding says otherwise.
    fn in_team(&self, team: &str, person: &Actor) -> Option<bool> {
        let _ = (team, person);
        None
    }
    /// The run approval of the run's head commit held in force for this job, if any
    /// ([`crate::RunApproval`]); its approver's role is asked through [`Job::role`].
    fn run_approval(&self) -> Option<&RunApproval> {
        None
    }
    /// What a run approval is written with (`/gatehouse run`), when the one deciding takes
    /// them (the guard): a denial by the people rule then says who can approve and how.
    fn run_approval_phrase(&self) -> Option<&str> {
        None
    }
}

impl Job for JobContext {
    fn repository(&self) -> &str {
        &self.repository
    }

    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn today(&self) -> Option<Date> {
        self.today.map(|d| d.0)
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn run(&self) -> Option<Run<'_>> {
        Some(Run {
            event: &self.event,
            head_repository: self.head_repository.as_deref(),
            head_owner: self.head_owner.as_ref(),
            actor: &self.actor,
            triggering_actor: self.triggering_actor.as_ref(),
            head_sha: self.head_sha.as_deref(),
            git_ref: self.git_ref.as_deref(),
            default_branch: self.default_branch.as_deref(),
        })
    }

    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        Some(person.permission)
    }

    fn run_approval(&self) -> Option<&RunApproval> {
        self.run_approval.as_ref()
    }

    fn in_team(&self, team: &str, person: &Actor) -> Option<bool> {
        // Slugs are matched case-insensitively: a team written twice in two spellings is
        // one team, with the members of both.
        let mut known = false;
        for (_, members) in self
            .teams
            .iter()
            .filter(|(s, _)| s.eq_ignore_ascii_case(team))
        {
            if members.contains(&person.id) {
                return Some(true);
            }
            known = true;
        }
        known.then_some(false)
    }
}
