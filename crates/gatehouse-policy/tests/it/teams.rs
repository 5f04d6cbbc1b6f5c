//! Grants whose user list names GitHub teams (Cirun's `teams`): a member of one of the teams
//! is let in as someone listed by name is (roles and terms of service still apply), someone
//! in none is refused `not-listed` with a message that names the teams, and a team whose
//! members are not known never lets anyone in: the decision waits, then fails closed.

use std::collections::BTreeMap;

use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_policy::{
    Actor, Decision, DenyReason, DenyRule, Job, JobContext, Missing, Permission, Policy, Run,
    Usage, Who, compile,
};
use jiff::civil::{Date, date};

const WOLFV: i64 = 885054;
const ISURUF: i64 = 5234427;
/// Accepted the terms of service, listed nowhere, in no team.
const OUTSIDER: i64 = 42;
/// In team `gpu-users`, never accepted the terms of service.
const NO_TERMS: i64 = 77;

fn policy() -> Policy {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
        ),
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nusers: { roles: [admin, maintain, write], require_tos: true }\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    users: { users: [wolfv], teams: [GPU-Users, core] }\n",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: isuruf, id: 5234427 }\n- { github: outsider, id: 42 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    compile(&repo, date(2026, 11, 28))
}

fn person(login: &str, id: i64, permission: Permission) -> Actor {
    Actor {
        login: login.into(),
        id,
        permission: Some(permission),
    }
}

/// A push to pytorch-cpu on the GPU runner by `actor`, with the members of the teams as the
/// caller knows them.
fn push_by(actor: Actor, teams: &[(&str, &[i64])]) -> JobContext {
    JobContext {
        repository: "conda-forge/pytorch-cpu-feedstock".into(),
        labels: vec!["cirun-openstack-gpu-large".into(), "self-hosted".into()],
        event: "push".into(),
        head_repository: Some("conda-forge/pytorch-cpu-feedstock".into()),
        head_owner: None,
        actor,
        triggering_actor: None,
        workflow: None,
        git_ref: Some("refs/heads/main".into()),
        usage: Usage::default(),
        today: Some(Day(date(2026, 11, 28))),
        head_sha: None,
        run_approval: None,
        default_branch: None,
        teams: teams
            .iter()
            .map(|(slug, ids)| (slug.to_string(), ids.to_vec()))
            .collect(),
    }
}

#[test]
fn a_member_of_a_named_team_is_let_in_without_being_listed_by_name() {
    let p = policy();
    let isuruf = person("isuruf", ISURUF, Permission::Write);
    // The slug as GitHub spells it; the grant wrote `GPU-Users`.
    let job = push_by(isuruf, &[("gpu-users", &[ISURUF]), ("core", &[])]);
    assert!(matches!(p.decide(&job), Decision::Allow { .. }));
    // The second team lets in as the first does.
    let job = push_by(
        person("isuruf", ISURUF, Permission::Maintain),
        &[("gpu-users", &[]), ("core", &[ISURUF])],
    );
    assert!(matches!(p.decide(&job), Decision::Allow { .. }));
}

#[test]
fn someone_in_none_of_the_teams_is_refused_with_a_message_that_names_them() {
    let p = policy();
    let job = push_by(
        person("outsider", OUTSIDER, Permission::Write),
        &[("gpu-users", &[ISURUF]), ("core", &[WOLFV])],
    );
    let d = p.decide(&job);
    assert_eq!(d.rule(), Some(DenyRule::UserNotAllowed));
    let Decision::Deny(denial) = &d else {
        unreachable!()
    };
    assert_eq!(denial.reason, DenyReason::NotListed { who: Who::Actor });
    let message = d.message().unwrap();
    assert!(
        message.contains(
            "is in none of the teams it names (`conda-forge/GPU-Users`, `conda-forge/core`)"
        ),
        "{message}"
    );
    assert!(message.contains("or join one of those teams"), "{message}");
}

#[test]
fn a_team_member_still_needs_a_role_and_the_terms_of_service() {
    let p = policy();
    let teams: &[(&str, &[i64])] = &[("gpu-users", &[ISURUF, NO_TERMS]), ("core", &[])];
    let reader = push_by(person("isuruf", ISURUF, Permission::Read), teams);
    let d = p.decide(&reader);
    assert!(
        matches!(&d, Decision::Deny(x) if matches!(x.reason, DenyReason::MissingRole { .. })),
        "{d:?}"
    );
    let no_terms = push_by(person("newcomer", NO_TERMS, Permission::Write), teams);
    let d = p.decide(&no_terms);
    assert!(
        matches!(&d, Decision::Deny(x) if matches!(x.reason, DenyReason::TermsNotAccepted { .. })),
        "{d:?}"
    );
}

#[test]
fn unknown_team_members_never_let_anyone_in() {
    let p = policy();
    // One team known (not a member), the other not known: undecided, never allowed.
    let job = push_by(
        person("isuruf", ISURUF, Permission::Write),
        &[("gpu-users", &[WOLFV])],
    );
    assert_eq!(
        p.decide(&job),
        Decision::Undecided {
            resource: p.resource_by_name("gpu").unwrap(),
            missing: Missing::Teams,
        }
    );
    // A member of the known team passes whatever the other says.
    let job = push_by(
        person("isuruf", ISURUF, Permission::Write),
        &[("gpu-users", &[ISURUF])],
    );
    assert!(matches!(p.decide(&job), Decision::Allow { .. }));
    // Someone listed by name needs no team.
    let job = push_by(person("wolfv", WOLFV, Permission::Write), &[]);
    assert!(matches!(p.decide(&job), Decision::Allow { .. }));
    // The terms of service still deny while the teams are unknown.
    let job = push_by(person("newcomer", NO_TERMS, Permission::Write), &[]);
    assert_eq!(p.decide(&job).rule(), Some(DenyRule::UserNotAllowed));
    // Denied for want of the fact, the message says what could not be checked.
    let job = push_by(person("isuruf", ISURUF, Permission::Write), &[]);
    let d = Decision::facts_unavailable(
        &p,
        &job.repository,
        p.resource_by_name("gpu").unwrap(),
        Missing::Teams,
    );
    let message = d.message().unwrap();
    assert!(
        message.contains("team membership could not be checked"),
        "{message}"
    );
}

/// The guard's view: a person's team membership is known per team, or not at all.
struct Guarded {
    job: JobContext,
    known: BTreeMap<&'static str, Vec<i64>>,
}

impl Job for Guarded {
    fn repository(&self) -> &str {
        self.job.repository()
    }
    fn labels(&self) -> &[String] {
        self.job.labels()
    }
    fn today(&self) -> Option<Date> {
        self.job.today()
    }
    fn usage(&self) -> Usage {
        self.job.usage()
    }
    fn run(&self) -> Option<Run<'_>> {
        self.job.run()
    }
    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        self.job.role(person)
    }
    fn in_team(&self, team: &str, person: &Actor) -> Option<bool> {
        let members = self.known.get(team.to_ascii_lowercase().as_str())?;
        Some(members.contains(&person.id))
    }
}

#[test]
fn a_job_that_says_nothing_of_teams_lets_in_only_the_people_listed_by_name() {
    // The trait's default: membership unknown.
    struct Silent(JobContext);
    impl Job for Silent {
        fn repository(&self) -> &str {
            self.0.repository()
        }
        fn labels(&self) -> &[String] {
            self.0.labels()
        }
        fn today(&self) -> Option<Date> {
            self.0.today()
        }
        fn usage(&self) -> Usage {
            self.0.usage()
        }
        fn run(&self) -> Option<Run<'_>> {
            self.0.run()
        }
        fn role(&self, person: &Actor) -> Option<Option<Permission>> {
            self.0.role(person)
        }
    }
    let p = policy();
    let member = push_by(
        person("isuruf", ISURUF, Permission::Write),
        &[("gpu-users", &[ISURUF])],
    );
    assert!(matches!(
        p.decide(&Silent(member)),
        Decision::Undecided {
            missing: Missing::Teams,
            ..
        }
    ));
    let listed = push_by(person("wolfv", WOLFV, Permission::Write), &[]);
    assert!(matches!(p.decide(&Silent(listed)), Decision::Allow { .. }));
    // With the trait answering per team, as the guard does.
    let guarded = Guarded {
        job: push_by(person("isuruf", ISURUF, Permission::Write), &[]),
        known: BTreeMap::from([("gpu-users", vec![ISURUF]), ("core", vec![])]),
    };
    assert!(matches!(p.decide(&guarded), Decision::Allow { .. }));
}
