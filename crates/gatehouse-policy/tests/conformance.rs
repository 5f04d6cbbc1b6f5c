//! The security conformance table: one test per attack, each denied with the right code; and
//! the allowed cases next to them, so that a rule that denies everything fails too.

use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_policy::{Actor, Decision, DenyRule, JobContext, Permission, Policy, Usage, compile};
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
        actor: wolfv(),
        triggering_actor: Some(wolfv()),
        workflow: Some(".github/workflows/conda-build.yml".into()),
        git_ref: Some("refs/heads/main".into()),
        usage: Usage::default(),
        today: Some(Day(date(2026, 11, 28))),
    }
}

#[track_caller]
fn denied(j: JobContext, rule: DenyRule) {
    let p = policy();
    let d = p.decide(&j);
    assert_eq!(d.rule(), Some(rule), "{d:?}");
    let message = d.message(&p, &j).unwrap();
    assert!(!message.is_empty());
    // The explanation ends in the same rule.
    let (again, steps) = p.explain(&j);
    assert_eq!(again, d);
    let last = steps.last().unwrap();
    assert!(!last.passed);
    assert_eq!(last.rule, rule.code());
}

#[track_caller]
fn allowed(j: JobContext) {
    let p = policy();
    let d = p.decide(&j);
    assert!(
        matches!(d, Decision::Allow { .. }),
        "{d:?}: {:?}",
        d.message(&p, &j)
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

#[test]
fn a_fork_pull_request_on_a_pr_enabled_grant_is_denied() {
    denied(
        JobContext {
            event: "pull_request".into(),
            head_repository: Some("attacker/pytorch-cpu-feedstock".into()),
            ..job()
        },
        DenyRule::EventNotAllowed,
    );
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
    let msg = p.decide(&j).message(&p, &j).unwrap();
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
    let msg = p.decide(&j).message(&p, &j).unwrap();
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
