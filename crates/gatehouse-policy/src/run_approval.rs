//! Run approvals: someone who may start a resource's jobs for a project approves one pull
//! request's head commit for managed runners (`/gatehouse run <sha>`, or an approving review
//! saying so). While the guard holds it in force (same head commit from the same head
//! repository, within its hours and its runs), it stands in for the people rule (rule 4) of
//! that commit's pull-request jobs, and for nothing else: the grant, the event (never
//! `pull_request_target`), forks, quotas and caps still apply.
//!
//! The approval is a fact of the decision like a person's role: the guard finds the one that
//! matches a job's run and hands it to [`crate::Policy::decide`] through [`crate::Job`]; the
//! rule that says whether it counts is here, once. Whether an approval is still in force
//! (its time and its run allowance) is the guard's to know (it holds the clock and the
//! counts); this module judges the commit, the resource and the approver.
//!
//! Not to be confused with the approvals of access requests (`gatehouse approvals`), which
//! count reviews of a request pull request.

use serde::{Deserialize, Serialize};

use crate::compile::{CompiledGrant, CompiledResource, Policy};
use crate::job::{Actor, Permission, Run};

/// One run approval, as the guard recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunApproval {
    /// Who approved (login and numeric account id) and, in a job context, their role on the
    /// repository (looked up like the job's people's, never read from the comment).
    pub approver: Actor,
    /// The approved commit: the pull request's head when it was approved (full SHA).
    pub head_sha: String,
    /// `owner/name` of the repository the commit comes from (a fork, or the repository
    /// itself).
    pub head_repository: String,
    /// The resources approved; empty: every resource the project holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

impl RunApproval {
    /// Whether this approval is about the run's code on `resource`: a pull-request event of
    /// exactly the approved commit from exactly the approved head repository.
    pub fn covers(&self, run: &Run<'_>, head_sha: Option<&str>, resource: &str) -> bool {
        crate::decide::is_pull_request_event(run.event)
            && head_sha.is_some_and(|sha| sha.eq_ignore_ascii_case(&self.head_sha))
            && run
                .head_repository
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.head_repository))
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(resource)))
    }
}

/// Why someone's run approval does not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotApprover {
    /// Their role on the repository is not one that may start the resource's jobs.
    Role(Option<Permission>),
    /// They are not in the grant's list of users.
    NotListed,
    /// They have not accepted the resource's terms of service.
    Terms,
    /// A bot of `gatehouse.yml`: never a maintainer, so never an approver.
    Bot,
}

impl NotApprover {
    pub fn describe(self) -> String {
        match self {
            NotApprover::Role(p) => format!(
                "has {} on the repository",
                p.map_or("no role".to_string(), |p| format!(
                    "the `{}` role",
                    p.as_str()
                ))
            ),
            NotApprover::NotListed => "is not in the grant's list of users".into(),
            NotApprover::Terms => {
                "has not accepted the resource's terms of service (matched by account id)".into()
            }
            NotApprover::Bot => "is a bot (`bots` in gatehouse.yml), never a maintainer".into(),
        }
    }
}

/// Whether the person with `role` may approve runs on `resource` under `grant`: exactly who
/// may start its jobs (role, user list, terms of service, by account id). An approval by the
/// pull request's author passes only when the author could start the jobs anyway, since the
/// author is judged by the same checks.
pub(crate) fn may_approve(
    policy: &Policy,
    res: &CompiledResource,
    grant: &CompiledGrant,
    approver: &Actor,
    role: Option<Permission>,
) -> Result<(), NotApprover> {
    if policy.is_bot(approver.id) {
        return Err(NotApprover::Bot);
    }
    if !res.allows(role) {
        return Err(NotApprover::Role(role));
    }
    if !grant.allows_user(approver.id) {
        return Err(NotApprover::NotListed);
    }
    if res.require_tos && !policy.accepted_tos(approver.id) {
        return Err(NotApprover::Terms);
    }
    Ok(())
}

impl Policy {
    /// Whether `approver`, holding `role` on `repository`, may approve runs of that
    /// repository's project on the resource named `resource` on `today`: `Ok` when the project
    /// holds a grant in force and the approver passes its people checks. The guard asks this
    /// when an approval arrives, to answer it; [`Policy::decide`] asks again for each job.
    pub fn may_approve_runs(
        &self,
        repository: &str,
        resource: &str,
        approver: &Actor,
        role: Option<Permission>,
        today: jiff::civil::Date,
    ) -> Result<(), Option<NotApprover>> {
        let id = self.resource_by_name(resource).ok_or(None)?;
        let project = self.project_of(repository).ok_or(None)?;
        let grant = self
            .grant_of(project.to_ascii_lowercase().as_bytes(), id)
            .map(|g| self.grant(g))
            .filter(|g| g.validity().on(today) == gatehouse_core::model::Standing::Active)
            .ok_or(None)?;
        may_approve(self, self.resource(id), grant, approver, role).map_err(Some)
    }

    /// The names of the resources `repository`'s project holds a grant of on `today`.
    pub fn granted_resources(&self, repository: &str, today: jiff::civil::Date) -> Vec<String> {
        let Some(project) = self.project_of(repository) else {
            return Vec::new();
        };
        let key = project.to_ascii_lowercase();
        self.grants()
            .filter(|(_, g)| {
                g.project.eq_ignore_ascii_case(&key)
                    && g.validity().on(today) == gatehouse_core::model::Standing::Active
            })
            .map(|(_, g)| self.resource(g.resource).name.to_string())
            .collect()
    }
}
