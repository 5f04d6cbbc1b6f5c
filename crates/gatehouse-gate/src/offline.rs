//! Deciding a job on the runner from a snapshot, when the guard cannot be reached.
//!
//! The decision is the policy's and the role facts': the resource is the pool's, usage is not
//! counted (no quotas, concurrency or approvals offline), and the triggering actor, whom the
//! runner's environment names by login only, is matched by login in the repository's
//! collaborator list. A fact the snapshot lacks (the repository's roles) denies the job
//! `facts-unavailable`. The guard's webhook path decides the job again when it hears of it.

use gatehouse_policy::{Actor, Decision, DenyRule, Job, Permission, Policy, Run, Usage};
use jiff::civil::Date;

use crate::runner::RunnerJob;
use crate::snapshot::{Pool, RepoRoles};

/// The job as the offline decision sees it.
struct OfflineJob<'a> {
    job: &'a RunnerJob,
    resource: &'a str,
    today: Date,
    roles: Option<&'a RepoRoles>,
    actor: Actor,
    triggering: Option<Actor>,
    head_owner: Option<Actor>,
}

fn person(login: &str, id: i64) -> Actor {
    Actor {
        login: login.to_string(),
        id,
        permission: None,
    }
}

impl Job for OfflineJob<'_> {
    fn repository(&self) -> &str {
        &self.job.repository
    }

    fn labels(&self) -> &[String] {
        &[]
    }

    fn resource(&self) -> Option<&str> {
        Some(self.resource)
    }

    fn today(&self) -> Option<Date> {
        Some(self.today)
    }

    fn usage(&self) -> Usage {
        Usage::default()
    }

    fn run(&self) -> Option<Run<'_>> {
        Some(Run {
            event: &self.job.event,
            head_repository: self.job.head_repository.as_deref(),
            head_owner: self.head_owner.as_ref(),
            actor: &self.actor,
            triggering_actor: self.triggering.as_ref(),
            // Offline there are no run approvals to match it against, and no bot is trusted.
            head_sha: None,
            git_ref: None,
            default_branch: None,
        })
    }

    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        let roles = self.roles?;
        Some(
            roles
                .people
                .iter()
                .find(|(id, _, _)| *id == person.id)
                .map(|(_, _, role)| *role),
        )
    }
}

/// Decides `job` on `pool`'s resource from the snapshot's policy (compiled: `policy`) and
/// role facts; returns the decision and, for a denial, its message.
pub fn decide(
    policy: &Policy,
    roles: Option<&RepoRoles>,
    pool: &Pool,
    job: &RunnerJob,
    today: Date,
) -> (Decision, Option<String>) {
    // The environment names the triggering actor by login: its id is the collaborator list's
    // (someone it does not list has no role, and an id nobody accepted the terms with).
    let triggering = (!job.triggering_actor.eq_ignore_ascii_case(&job.actor.0)).then(|| {
        let id = roles
            .and_then(|r| {
                r.people
                    .iter()
                    .find(|(_, login, _)| login.eq_ignore_ascii_case(&job.triggering_actor))
            })
            .map_or(0, |(id, _, _)| *id);
        person(&job.triggering_actor, id)
    });
    let view = OfflineJob {
        job,
        resource: &pool.resource,
        today,
        roles,
        actor: person(&job.actor.0, job.actor.1),
        triggering,
        head_owner: job.head_owner.as_ref().map(|(l, id)| person(l, *id)),
    };
    let decision = match policy.decide(&view) {
        Decision::Undecided { resource, missing } => Decision::facts_unavailable(resource, missing),
        d => d,
    };
    let message = if decision.rule() == Some(DenyRule::FactsUnavailable) {
        // The policy's own text speaks of asking GitHub; offline, the snapshot is what lacks it.
        Some(format!(
            "the runner could not reach the guard, and its policy snapshot holds no collaborator list for `{}`, so gatehouse cannot tell whether this job may use `{}` and refuses it rather than let it through. Re-run the job once the runner reaches the guard (a project granted since the snapshot was made is in the next one)",
            job.repository, pool.resource
        ))
    } else {
        decision.message(policy, &view)
    };
    (decision, message)
}
