//! The security conformance table: one test per attack, each denied with the right code; and
//! the allowed cases next to them, so that a rule that denies everything fails too.

use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_policy::{
    Actor, Checked, Decision, DenyRule, Job, JobContext, Missing, Permission, Policy, Run, Usage,
    compile,
};
use jiff::civil::date;

fn policy() -> Policy {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
        ),
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nusers: { roles: [admin, maintain, write], require_tos: true }\nquota: { project_minutes_per_month: 3000, minutes_per_month: 20000 }\n",
        ),
        (
            "resources/cpu.yml",
            "name: cpu\nprovider: cirun\nlabels: [cirun-openstack-cpu-large]\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
        ),
        (
            "grants/tensorflow.yml",
            "project: tensorflow\ngrants:\n  - resource: cpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n    users: { users: [Wolfv] }\n",
        ),
        (
            "resources/big.yml",
            "name: big\nprovider: cirun\nlabels: [cirun-big]\ndefaults: { forks: false }\n",
        ),
        (
            "grants/scipy.yml",
            "project: scipy\ngrants:\n  - resource: big\n    pull_request: true\n    granted: 2026-03-01\n  - resource: gpu\n    pull_request: true\n    forks: false\n    granted: 2026-03-01\n",
        ),
        (
            "grants/numpy.yml",
            "project: numpy\ngrants:\n  - resource: big\n    pull_request: true\n    forks: true\n    granted: 2026-03-01\n",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: isuruf, id: 5234427 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    compile(&repo, date(2026, 11, 28))
}

fn wolfv() -> Actor {
    Actor {
        login: "wolfv".into(),
        id: 885054,
        permission: Some(Permission::Write),
    }
}

/// A push to pytorch-cpu asking for the GPU runner, by a maintainer who accepted the terms.
fn job() -> JobContext {
    JobContext {
        repository: "conda-forge/pytorch-cpu-feedstock".into(),
        labels: vec![
            "cirun-openstack-gpu-large--8075232475-linux_64".into(),
            "linux".into(),
            "x64".into(),
            "self-hosted".into(),
        ],
        event: "push".into(),
        head_repository: Some("conda-forge/pytorch-cpu-feedstock".into()),
        head_owner: None,
        actor: wolfv(),
        triggering_actor: Some(wolfv()),
        workflow: Some(".github/workflows/conda-build.yml".into()),
        git_ref: Some("refs/heads/main".into()),
        usage: Usage::default(),
        today: Some(Day(date(2026, 11, 28))),
        head_sha: None,
        run_approval: None,
        default_branch: None,
        teams: Default::default(),
    }
}

#[track_caller]
fn denied(j: JobContext, rule: DenyRule) {
    let p = policy();
    let d = p.decide(&j);
    assert_eq!(d.rule(), Some(rule), "{d:?}");
    let message = d.message().unwrap();
    assert!(!message.is_empty());
    // The explanation ends in the same rule.
    let (again, steps) = p.explain(&j);
    assert_eq!(again, d);
    let last = steps.last().unwrap();
    assert!(!last.passed);
    assert_eq!(last.rule, Checked::Rule(rule));
}

#[track_caller]
fn allowed(j: JobContext) {
    let p = policy();
    let d = p.decide(&j);
    assert!(
        matches!(d, Decision::Allow { .. }),
        "{d:?}: {:?}",
        d.message()
    );
    let (again, steps) = p.explain(&j);
    assert_eq!(again, d);
    assert!(steps.iter().all(|s| s.passed), "{steps:#?}");
}

#[test]
fn a_maintainers_push_is_allowed() {
    allowed(job());
}

#[test]
fn a_pull_request_from_the_repository_itself_is_allowed_on_a_pr_grant() {
    allowed(JobContext {
        event: "pull_request".into(),
        git_ref: Some("refs/pull/12/merge".into()),
        ..job()
    });
}

/// A pull request from `owner`'s fork of pytorch-cpu, started by a maintainer (who reopened
/// or labelled it, say).
fn fork_pr(owner: Option<Actor>) -> JobContext {
    let fork = owner.as_ref().map_or("ghost", |o| o.login.as_str());
    JobContext {
        event: "pull_request".into(),
        head_repository: Some(format!("{fork}/pytorch-cpu-feedstock")),
        head_owner: owner,
        git_ref: Some("refs/pull/12/merge".into()),
        ..job()
    }
}

fn outsider() -> Actor {
    Actor {
        login: "attacker".into(),
        id: 31337,
        permission: None,
    }
}

#[test]
fn a_maintainers_own_fork_runs_on_a_pr_grant() {
    // How conda-forge works: maintainers open pull requests from their own forks.
    allowed(fork_pr(Some(wolfv())));
}

#[test]
fn an_outsiders_fork_is_denied_whoever_triggers_it() {
    // The maintainer who reopened it is the actor; the code is the outsider's.
    denied(fork_pr(Some(outsider())), DenyRule::UserNotAllowed);
    // An outsider's fork that somehow carries a role still needs the terms of service.
    let mut j = fork_pr(Some(Actor {
        permission: Some(Permission::Write),
        ..outsider()
    }));
    denied(j.clone(), DenyRule::UserNotAllowed);
    j.head_owner = Some(wolfv());
    allowed(j);
}

#[test]
fn a_bots_fork_is_denied_even_when_a_maintainer_triggers_it() {
    let bot = Actor {
        login: "regro-cf-autotick-bot".into(),
        id: 36490558,
        permission: None,
    };
    denied(fork_pr(Some(bot)), DenyRule::UserNotAllowed);
}

#[test]
fn a_fork_whose_owner_is_unknown_is_denied() {
    denied(fork_pr(None), DenyRule::UserNotAllowed);
    // A pull-request event without a head repository (the fork was deleted) is such a fork.
    denied(
        JobContext {
            head_repository: None,
            ..fork_pr(Some(wolfv()))
        },
        DenyRule::UserNotAllowed,
    );
    let p = policy();
    let j = fork_pr(None);
    let message = p.decide(&j).message().unwrap();
    assert!(message.contains("no known owner"), "{message}");
}

#[test]
fn forks_false_on_a_grant_or_its_resource_refuses_forks() {
    let on = |project: &str, label: &str| JobContext {
        repository: format!("conda-forge/{project}-feedstock"),
        labels: vec![label.into()],
        head_repository: Some(format!("wolfv/{project}-feedstock")),
        ..fork_pr(Some(wolfv()))
    };
    // The grant says `forks: false`.
    denied(
        on("scipy", "cirun-openstack-gpu-large"),
        DenyRule::EventNotAllowed,
    );
    // The resource says `defaults: { forks: false }` and the grant says nothing.
    denied(on("scipy", "cirun-big"), DenyRule::EventNotAllowed);
    // The grant's `forks: true` overrides its resource's default.
    allowed(on("numpy", "cirun-big"));
    // Neither matters for the project's own branches.
    allowed(JobContext {
        head_repository: Some("conda-forge/scipy-feedstock".into()),
        head_owner: None,
        ..on("scipy", "cirun-big")
    });
}

#[test]
fn pull_request_target_is_always_denied() {
    denied(
        JobContext {
            event: "pull_request_target".into(),
            ..job()
        },
        DenyRule::EventNotAllowed,
    );
}

#[test]
fn a_pull_request_without_pr_permission_is_denied() {
    let j = JobContext {
        repository: "conda-forge/tensorflow-feedstock".into(),
        head_repository: Some("conda-forge/tensorflow-feedstock".into()),
        labels: vec!["cirun-openstack-cpu-large".into()],
        event: "pull_request".into(),
        ..job()
    };
    denied(j, DenyRule::EventNotAllowed);
}

#[test]
fn a_rerun_by_a_non_maintainer_of_a_maintainers_run_is_denied() {
    denied(
        JobContext {
            triggering_actor: Some(Actor {
                login: "drive-by".into(),
                id: 999,
                permission: Some(Permission::Read),
            }),
            ..job()
        },
        DenyRule::UserNotAllowed,
    );
}

#[test]
fn a_renamed_account_whose_login_matches_but_id_does_not_is_denied() {
    let impostor = Actor {
        login: "wolfv".into(),
        id: 4242,
        permission: Some(Permission::Write),
    };
    denied(
        JobContext {
            actor: impostor.clone(),
            triggering_actor: Some(impostor),
            ..job()
        },
        DenyRule::UserNotAllowed,
    );
}

#[test]
fn a_login_differing_only_in_case_is_allowed_when_ids_match() {
    let shouting = Actor {
        login: "WOLFV".into(),
        ..wolfv()
    };
    allowed(JobContext {
        actor: shouting.clone(),
        triggering_actor: Some(shouting.clone()),
        ..job()
    });
    // And in a grant's user list, which is by login.
    allowed(JobContext {
        repository: "conda-forge/tensorflow-feedstock".into(),
        head_repository: None,
        labels: vec!["cirun-openstack-cpu-large".into()],
        actor: shouting.clone(),
        triggering_actor: Some(shouting),
        ..job()
    });
}

#[test]
fn someone_outside_a_grants_user_list_is_denied() {
    let isuruf = Actor {
        login: "isuruf".into(),
        id: 5234427,
        permission: Some(Permission::Admin),
    };
    denied(
        JobContext {
            repository: "conda-forge/tensorflow-feedstock".into(),
            head_repository: None,
            labels: vec!["cirun-openstack-cpu-large".into()],
            actor: isuruf.clone(),
            triggering_actor: Some(isuruf),
            ..job()
        },
        DenyRule::UserNotAllowed,
    );
}

#[test]
fn a_suffixed_label_of_another_resource_is_denied() {
    // pytorch-cpu holds only `gpu`; the `cpu` label with a generated suffix must not pass.
    denied(
        JobContext {
            labels: vec![
                "cirun-openstack-cpu-large--123-linux_64".into(),
                "linux".into(),
            ],
            ..job()
        },
        DenyRule::NoGrant,
    );
}

#[test]
fn two_managed_labels_in_one_job_are_denied() {
    denied(
        JobContext {
            labels: vec![
                "cirun-openstack-gpu-large".into(),
                "Cirun-OpenStack-CPU-Large--1".into(),
            ],
            ..job()
        },
        DenyRule::AmbiguousLabels,
    );
}

#[test]
fn the_same_resource_twice_is_not_ambiguous() {
    allowed(JobContext {
        labels: vec![
            "cirun-openstack-gpu-large".into(),
            "CIRUN-OPENSTACK-GPU-LARGE--77".into(),
        ],
        ..job()
    });
}

#[test]
fn an_expired_grant_is_denied_the_day_after_it_expires() {
    allowed(JobContext {
        today: Some(Day(date(2027, 3, 1))),
        ..job()
    });
    denied(
        JobContext {
            today: Some(Day(date(2027, 3, 2))),
            ..job()
        },
        DenyRule::Expired,
    );
}

#[test]
fn a_project_whose_name_is_a_prefix_of_a_granted_project_is_denied() {
    denied(
        JobContext {
            repository: "conda-forge/pytorch-feedstock".into(),
            head_repository: Some("conda-forge/pytorch-feedstock".into()),
            ..job()
        },
        DenyRule::NoGrant,
    );
    // Nor one that extends it.
    denied(
        JobContext {
            repository: "conda-forge/pytorch-cpu-extra-feedstock".into(),
            head_repository: None,
            ..job()
        },
        DenyRule::NoGrant,
    );
}

#[test]
fn another_organisations_repository_is_denied() {
    denied(
        JobContext {
            repository: "evil-org/pytorch-cpu-feedstock".into(),
            head_repository: None,
            ..job()
        },
        DenyRule::NoGrant,
    );
    denied(
        JobContext {
            repository: "conda-forge/pytorch-cpu".into(),
            head_repository: None,
            ..job()
        },
        DenyRule::NoGrant,
    );
}

#[test]
fn someone_without_accepted_terms_is_denied() {
    let newcomer = Actor {
        login: "newcomer".into(),
        id: 31337,
        permission: Some(Permission::Maintain),
    };
    denied(
        JobContext {
            actor: newcomer.clone(),
            triggering_actor: Some(newcomer),
            ..job()
        },
        DenyRule::UserNotAllowed,
    );
}

#[test]
fn someone_without_a_role_is_denied() {
    let outsider = Actor {
        permission: None,
        ..wolfv()
    };
    denied(
        JobContext {
            actor: outsider,
            ..job()
        },
        DenyRule::UserNotAllowed,
    );
}

#[test]
fn exhausted_quotas_deny_with_the_reset_date() {
    let p = policy();
    let j = JobContext {
        usage: Usage {
            project_minutes: 3000,
            resource_minutes: 100,
        },
        ..job()
    };
    denied(j.clone(), DenyRule::QuotaExhausted);
    let msg = p.decide(&j).message().unwrap();
    assert!(msg.contains("resets on 2026-12-01"), "{msg}");
    denied(
        JobContext {
            usage: Usage {
                project_minutes: 0,
                resource_minutes: 20000,
            },
            ..job()
        },
        DenyRule::QuotaExhausted,
    );
    allowed(JobContext {
        usage: Usage {
            project_minutes: 2999,
            resource_minutes: 19999,
        },
        ..job()
    });
}

#[test]
fn jobs_without_managed_labels_are_not_managed() {
    let p = policy();
    for labels in [
        vec!["ubuntu-latest"],
        vec!["self-hosted", "linux", "x64"],
        vec!["Self-Hosted--cirun-openstack-gpu-large"],
        vec![],
    ] {
        let j = JobContext {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            ..job()
        };
        assert_eq!(p.decide(&j), Decision::NotManaged, "{labels:?}");
    }
}

#[test]
fn messages_say_what_to_do() {
    let p = policy();
    let j = JobContext {
        repository: "conda-forge/pytorch-feedstock".into(),
        head_repository: None,
        ..job()
    };
    let msg = p.decide(&j).message().unwrap();
    assert_eq!(
        msg,
        "`pytorch` has no grant for `gpu`. To ask for one, file a request in the access repository: `action: grant`, `projects: [pytorch]`, `resources: [gpu]`"
    );
}

#[test]
fn pull_request_review_events_need_the_pull_request_permission_too() {
    for event in [
        "pull_request_review",
        "pull_request_review_comment",
        "PULL_REQUEST",
    ] {
        denied(
            JobContext {
                repository: "conda-forge/tensorflow-feedstock".into(),
                head_repository: Some("conda-forge/tensorflow-feedstock".into()),
                labels: vec!["cirun-openstack-cpu-large".into()],
                event: event.into(),
                ..job()
            },
            DenyRule::EventNotAllowed,
        );
    }
    denied(
        JobContext {
            event: "Pull_Request_Target".into(),
            ..job()
        },
        DenyRule::EventNotAllowed,
    );
}

// ---------------------------------------------------------------------------------------------
// Jobs whose facts the guard is still fetching: the rules that can be judged are; a deny needs
// no missing fact, an allow never comes without them.

/// The guard's view of [`job()`] with its run or its people's roles not known yet.
struct Partial {
    job: JobContext,
    run_known: bool,
    roles_known: bool,
}

impl Job for Partial {
    fn repository(&self) -> &str {
        self.job.repository()
    }
    fn labels(&self) -> &[String] {
        self.job.labels()
    }
    fn today(&self) -> Option<jiff::civil::Date> {
        self.job.today()
    }
    fn usage(&self) -> Usage {
        self.job.usage
    }
    fn run(&self) -> Option<Run<'_>> {
        self.run_known.then(|| self.job.run()).flatten()
    }
    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        self.roles_known.then_some(person.permission)
    }
}

fn partial(job: JobContext, run_known: bool, roles_known: bool) -> Decision {
    policy().decide(&Partial {
        job,
        run_known,
        roles_known,
    })
}

/// [`job()`] as a caller that routed it already sees it ([`Job::routed`]).
struct Routed {
    job: JobContext,
    routed: gatehouse_policy::Routed,
}

impl Job for Routed {
    fn repository(&self) -> &str {
        self.job.repository()
    }
    fn labels(&self) -> &[String] {
        self.job.labels()
    }
    fn routed(&self) -> Option<gatehouse_policy::Routed> {
        Some(self.routed)
    }
    fn today(&self) -> Option<jiff::civil::Date> {
        self.job.today()
    }
    fn usage(&self) -> Usage {
        self.job.usage
    }
    fn run(&self) -> Option<Run<'_>> {
        self.job.run()
    }
    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        Some(person.permission)
    }
}

/// A job routed once is decided from that route, not from its labels again: the same as
/// routing them, and what the route says when it differs (the caller's route is the one).
#[test]
fn a_job_routed_by_its_caller_is_decided_from_that_route() {
    let p = policy();
    let labels = || job().labels.clone();
    let routed = p.route_job(labels().iter().map(String::as_str), None);
    let gpu = p.resource_by_name("gpu").unwrap();
    let cpu = p.resource_by_name("cpu").unwrap();
    assert_eq!(routed, Ok(Some(gpu)));
    let decide = |routed| p.decide(&Routed { job: job(), routed });
    assert_eq!(decide(routed), p.decide(&job()));
    assert!(matches!(decide(routed), Decision::Allow { .. }));
    assert_eq!(decide(Ok(None)), Decision::NotManaged);
    assert_eq!(
        decide(Err((gpu, cpu))).rule(),
        Some(DenyRule::AmbiguousLabels)
    );
    // `pytorch-cpu` holds no grant of `cpu`.
    assert_eq!(decide(Ok(Some(cpu))).rule(), Some(DenyRule::NoGrant));
}

#[test]
fn a_job_whose_facts_are_missing_is_undecided_never_allowed() {
    for (run, roles, missing) in [
        (false, false, Missing::Run),
        (false, true, Missing::Run),
        (true, false, Missing::Roles),
    ] {
        let d = partial(job(), run, roles);
        assert!(
            matches!(d, Decision::Undecided { missing: m, .. } if m == missing),
            "run known: {run}, roles known: {roles}: {d:?}"
        );
        assert_eq!(d.outcome(), "undecided");
    }
    assert!(matches!(partial(job(), true, true), Decision::Allow { .. }));
}

#[test]
fn rules_that_need_no_missing_fact_deny_at_once() {
    // No grant, and quotas: nothing about the run is needed.
    let no_grant = JobContext {
        repository: "conda-forge/numpy-feedstock".into(),
        ..job()
    };
    assert_eq!(
        partial(no_grant, false, false).rule(),
        Some(DenyRule::NoGrant)
    );
    let spent = JobContext {
        usage: Usage {
            project_minutes: 3000,
            resource_minutes: 0,
        },
        ..job()
    };
    assert_eq!(
        partial(spent, false, false).rule(),
        Some(DenyRule::QuotaExhausted)
    );
    // With the run known, the event and the local people checks (user list, terms of service)
    // deny while roles are still unknown.
    let target = JobContext {
        event: "pull_request_target".into(),
        ..job()
    };
    assert_eq!(
        partial(target, true, false).rule(),
        Some(DenyRule::EventNotAllowed)
    );
    let stranger = Actor {
        login: "stranger".into(),
        id: 77,
        permission: Some(Permission::Write),
    };
    let no_terms = JobContext {
        actor: stranger.clone(),
        triggering_actor: Some(stranger),
        ..job()
    };
    assert_eq!(
        partial(no_terms, true, false).rule(),
        Some(DenyRule::UserNotAllowed)
    );
    // An outsider's fork with no known owner is denied without any role.
    assert_eq!(
        partial(fork_pr(None), true, false).rule(),
        Some(DenyRule::UserNotAllowed)
    );
}

#[test]
fn facts_that_cannot_be_had_deny_with_a_message_that_says_to_rerun() {
    let p = policy();
    let Decision::Undecided { resource, missing } = partial(job(), true, false) else {
        panic!("undecided expected");
    };
    let d = Decision::facts_unavailable(&p, &job().repository, resource, missing);
    assert_eq!(d.rule(), Some(DenyRule::FactsUnavailable));
    let message = d.message().unwrap();
    assert!(message.contains("Re-run"), "{message}");
    assert!(message.contains("roles"), "{message}");
}
