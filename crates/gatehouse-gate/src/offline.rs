//! Deciding a job on the runner from a snapshot, when the guard cannot be reached.
//!
//! The decision is the policy's and the role facts': the resource is the pool's, usage is not
//! counted (no quotas, concurrency or approvals offline), and the triggering actor, whom the
//! runner's environment names by login only, is matched by login in the repository's
//! collaborator list. A fact the snapshot lacks (the repository's roles; the members of the
//! teams a grant names, which it never carries) denies the job `facts-unavailable`. The guard's webhook path decides the job again when it hears of it.
//!
//! The snapshot carries no run approvals (`/gatehouse run <sha>`, recorded by the guard as
//! they come) and not what `bots: trusted` needs (whether a push is to the project's default
//! branch), so offline a pull request or a bot's run that only an approval or that trust would
//! admit is refused, and the refusal says so: re-run once the runner reaches the guard, which
//! decides with them. (Carrying approvals would need a snapshot as fresh as the last comment;
//! a refusal that says why is the fail-closed answer.)

use gatehouse_policy::{
    Actor, Decision, DenyReason, DenyRule, Job, Missing, Permission, Policy, Run, Usage,
    is_pull_request_event,
};
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
        Decision::Undecided { resource, missing } => {
            Decision::facts_unavailable(policy, &job.repository, resource, missing)
        }
        d => d,
    };
    let message = if let Decision::Deny(d) = &decision
        && d.reason == DenyReason::FactsUnavailable(Missing::Teams)
    {
        // The snapshot carries no team members: someone the grant lets in through a team
        // alone cannot be judged here.
        Some(format!(
            "the runner could not reach the guard, and its policy snapshot does not say who is in the teams `{}`'s grant of `{}` names, so team membership could not be checked: gatehouse refuses the job rather than let it through. Re-run the job once the runner reaches the guard, or ask to be listed by name in the grant's `users`",
            policy
                .project_of(&job.repository)
                .unwrap_or(&job.repository),
            pool.resource
        ))
    } else if decision.rule() == Some(DenyRule::FactsUnavailable) {
        // The policy's own text speaks of asking GitHub; offline, the snapshot is what lacks it.
        Some(format!(
            "the runner could not reach the guard, and its policy snapshot holds no collaborator list for `{}`, so gatehouse cannot tell whether this job may use `{}` and refuses it rather than let it through. Re-run the job once the runner reaches the guard (a project granted since the snapshot was made is in the next one)",
            job.repository, pool.resource
        ))
    } else {
        let message = decision.message();
        match (message, unseen_offline(&decision, job)) {
            (Some(text), Some(note)) => Some(format!("{text}. {note}")),
            (message, _) => message,
        }
    };
    (decision, message)
}

/// What the snapshot cannot show about a job the people rule denied: a run approval of a pull
/// request's commit, or a trusted bot's push. `None` when neither could have admitted it.
fn unseen_offline(decision: &Decision, job: &RunnerJob) -> Option<String> {
    let Decision::Deny(denial) = decision else {
        return None;
    };
    if denial.rule != DenyRule::UserNotAllowed {
        return None;
    }
    let what = if matches!(denial.reason, DenyReason::Bot { .. }) {
        "a maintainer's approval of this commit (`/gatehouse run <sha>`) or the resource's trust in bots' pushes to the default branch (`bots: trusted`)"
    } else if is_pull_request_event(&job.event) {
        "a maintainer's approval of this pull request's commit (`/gatehouse run <sha>`)"
    } else {
        return None;
    };
    Some(format!(
        "The runner could not reach the guard and decided from its policy snapshot, which carries neither run approvals nor the facts bots' trust needs, so it could not see {what}. If there is one, re-run the job once the runner reaches the guard: the guard decides with them, and its webhook path decides every job again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::Repo;
    use jiff::civil::date;

    const BOT: (&str, i64) = ("regro-cf-autotick-bot", 36490558);
    const MAINTAINER: (&str, i64) = ("wolfv", 885054);
    const OUTSIDER: (&str, i64) = ("drive-by", 7);

    fn policy() -> Policy {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nbots:\n  - { github: regro-cf-autotick-bot, id: 36490558 }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: cirun\nlabels: [gpu]\nusers: { roles: [admin, maintain, write] }\nbots: trusted\n",
            ),
            (
                "grants/numpy.yml",
                "project: numpy\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-01-01\n",
            ),
        ]);
        gatehouse_policy::compile(&repo, date(2026, 11, 29))
    }

    fn roles() -> RepoRoles {
        RepoRoles {
            repository: "conda-forge/numpy-feedstock".into(),
            fetched_at: 0,
            people: vec![
                (MAINTAINER.1, MAINTAINER.0.into(), Permission::Write),
                (BOT.1, BOT.0.into(), Permission::Write),
            ],
        }
    }

    fn job(event: &str, actor: (&str, i64), fork: Option<(&str, i64)>) -> RunnerJob {
        RunnerJob {
            repository: "conda-forge/numpy-feedstock".into(),
            event: event.into(),
            run_id: 1,
            run_attempt: 1,
            job: "build".into(),
            runner_name: "gpu-1".into(),
            actor: (actor.0.into(), actor.1),
            triggering_actor: actor.0.into(),
            head_repository: fork.map(|(owner, _)| format!("{owner}/numpy-feedstock")),
            head_owner: fork.map(|(l, id)| (l.to_string(), id)),
            workflow_ref: None,
            git_ref: Some("refs/heads/main".into()),
        }
    }

    fn offline(job: &RunnerJob) -> (Option<DenyRule>, String) {
        let pool = Pool {
            name: "gpu".into(),
            resource: "gpu".into(),
            allow_when_unreachable: false,
        };
        let roles = roles();
        let (d, message) = decide(&policy(), Some(&roles), &pool, job, date(2026, 11, 29));
        (d.rule(), message.unwrap_or_default())
    }

    #[test]
    fn offline_a_person_let_in_only_through_a_team_is_refused_saying_why() {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: cirun\nlabels: [gpu]\nusers: { roles: [admin, maintain, write] }\n",
            ),
            (
                "grants/numpy.yml",
                "project: numpy\ngrants:\n  - resource: gpu\n    granted: 2026-01-01\n    users: { users: [{ github: wolfv, id: 885054 }], teams: [gpu-users] }\n",
            ),
        ]);
        let policy = gatehouse_policy::compile(&repo, date(2026, 11, 29));
        let pool = Pool {
            name: "gpu".into(),
            resource: "gpu".into(),
            allow_when_unreachable: false,
        };
        let mut roles = roles();
        roles.people.push((8, "isuruf".into(), Permission::Write));
        let today = date(2026, 11, 29);
        // Someone not listed by name: whether they are in `gpu-users` is not in the snapshot.
        let member = job("push", ("isuruf", 8), None);
        let (d, told) = decide(&policy, Some(&roles), &pool, &member, today);
        assert_eq!(d.rule(), Some(DenyRule::FactsUnavailable));
        let told = told.unwrap_or_default();
        assert!(
            told.contains("team membership could not be checked"),
            "{told}"
        );
        // Someone listed by name runs offline as online.
        let listed = job("push", MAINTAINER, None);
        let (d, _) = decide(&policy, Some(&roles), &pool, &listed, today);
        assert!(matches!(d, Decision::Allow { .. }), "{d:?}");
    }

    #[test]
    fn a_refusal_that_an_approval_or_bots_trust_could_lift_says_the_guard_decides_with_them() {
        // An outsider's fork pull request: an approval of its commit could admit it online.
        let (rule, told) = offline(&job("pull_request", OUTSIDER, Some(OUTSIDER)));
        assert_eq!(rule, Some(DenyRule::UserNotAllowed), "{told}");
        assert!(
            told.contains("could not see a maintainer's approval of this pull request's commit (`/gatehouse run <sha>`)")
                && told.contains("re-run the job once the runner reaches the guard"),
            "{told}"
        );
        // A bot's push to the default branch of a resource that trusts bots: the snapshot
        // cannot tell the default branch, so the bot is refused, and told why.
        let (rule, told) = offline(&job("push", BOT, None));
        assert_eq!(rule, Some(DenyRule::UserNotAllowed), "{told}");
        assert!(told.contains("(`bots: trusted`)"), "{told}");
        // A push by someone without a role: nothing offline hides what would admit it.
        let (rule, told) = offline(&job("push", OUTSIDER, None));
        assert_eq!(rule, Some(DenyRule::UserNotAllowed), "{told}");
        assert!(!told.contains("policy snapshot"), "{told}");
        // A maintainer's own pull request runs offline as online.
        let mut own = job("pull_request", MAINTAINER, None);
        own.head_repository = Some("conda-forge/numpy-feedstock".into());
        own.head_owner = Some(("conda-forge".into(), 11897326));
        let (rule, told) = offline(&own);
        assert_eq!(rule, None, "{told}");
    }
}
