//! Run approvals as a fact of the decision: an approval of the pull request's head commit by
//! someone who may start the resource's jobs stands in for the people rule of that commit's
//! pull-request jobs, and for nothing else.

use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_policy::{
    Actor, Decision, DenyRule, Job, JobContext, Permission, Policy, Run, RunApproval, Usage,
    compile,
};
use jiff::civil::{Date, date};

const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const FORK: &str = "someone/pytorch-cpu-feedstock";

fn policy() -> Policy {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\nbots:\n  - { github: regro-cf-autotick-bot, id: 36490558 }\n",
        ),
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nusers: { roles: [admin, maintain, write], require_tos: true }\nquota: { project_minutes_per_month: 3000 }\n",
        ),
        (
            "resources/cpu.yml",
            "name: cpu\nprovider: cirun\nlabels: [cirun-openstack-cpu-large]\n",
        ),
        (
            "resources/nightly.yml",
            "name: nightly\nprovider: cirun\nlabels: [cirun-nightly]\nbots: trusted\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-03-01\n  - resource: cpu\n    pull_request: true\n    granted: 2026-03-01\n  - resource: nightly\n    pull_request: true\n    granted: 2026-03-01\n",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: someone, id: 99 }\n- { github: regro-cf-autotick-bot, id: 36490558 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    compile(&repo, date(2026, 11, 28))
}

fn person(login: &str, id: i64, permission: Option<Permission>) -> Actor {
    Actor {
        login: login.into(),
        id,
        permission,
    }
}

fn someone() -> Actor {
    person("someone", 99, None)
}

/// A maintainer who accepted the terms.
fn wolfv() -> Actor {
    person("wolfv", 885054, Some(Permission::Write))
}

fn approval(by: Actor) -> RunApproval {
    RunApproval {
        approver: by,
        head_sha: SHA.into(),
        head_repository: FORK.into(),
        resources: Vec::new(),
    }
}

/// `someone`'s pull request from their fork, commit [`SHA`], on the GPU runner.
fn fork_pr(approved: Option<RunApproval>) -> JobContext {
    JobContext {
        repository: "conda-forge/pytorch-cpu-feedstock".into(),
        labels: vec!["cirun-openstack-gpu-large--1-linux_64".into()],
        event: "pull_request".into(),
        head_repository: Some(FORK.into()),
        head_owner: Some(someone()),
        actor: someone(),
        triggering_actor: None,
        workflow: None,
        git_ref: Some("refs/pull/7/merge".into()),
        usage: Usage::default(),
        today: Some(Day(date(2026, 11, 28))),
        head_sha: Some(SHA.into()),
        run_approval: approved,
        default_branch: None,
        teams: Default::default(),
    }
}

#[track_caller]
fn rule(j: &JobContext) -> Option<DenyRule> {
    let p = policy();
    let d = p.decide(j);
    let (again, _) = p.explain(j);
    assert_eq!(again, d, "explain agrees with decide");
    d.rule()
}

#[test]
fn an_approval_by_a_maintainer_lets_the_approved_commit_run() {
    assert_eq!(rule(&fork_pr(None)), Some(DenyRule::UserNotAllowed));
    let approved = fork_pr(Some(approval(wolfv())));
    assert_eq!(rule(&approved), None);
    assert!(matches!(policy().decide(&approved), Decision::Allow { .. }));
    let (_, steps) = policy().explain(&approved);
    assert!(
        steps
            .iter()
            .any(|s| s.passed && s.detail.contains("`wolfv` approved commit")),
        "{steps:#?}"
    );
    // A re-run the guard's App triggered: still the approved commit.
    let rerun = JobContext {
        triggering_actor: Some(person("gatehouse[bot]", 41898283, None)),
        ..approved
    };
    assert_eq!(rule(&rerun), None);
}

#[test]
fn an_approval_covers_exactly_its_commit_its_head_repository_and_its_resources() {
    let other_commit = JobContext {
        head_sha: Some("c0ffee5b57875f334f61aebed695e2e4193db5e0".into()),
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&other_commit), Some(DenyRule::UserNotAllowed));
    let unknown_commit = JobContext {
        head_sha: None,
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&unknown_commit), Some(DenyRule::UserNotAllowed));
    let other_fork = JobContext {
        head_repository: Some("mallory/pytorch-cpu-feedstock".into()),
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&other_fork), Some(DenyRule::UserNotAllowed));
    let cpu_only = RunApproval {
        resources: vec!["cpu".into()],
        ..approval(wolfv())
    };
    assert_eq!(
        rule(&fork_pr(Some(cpu_only.clone()))),
        Some(DenyRule::UserNotAllowed)
    );
    let on_cpu = JobContext {
        labels: vec!["cirun-openstack-cpu-large".into()],
        ..fork_pr(Some(cpu_only))
    };
    assert_eq!(rule(&on_cpu), None);
    // Not a pull request: a push of the same commit is judged by its people alone.
    let push = JobContext {
        event: "push".into(),
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&push), Some(DenyRule::UserNotAllowed));
}

#[test]
fn only_someone_who_may_start_the_jobs_can_approve_them() {
    for (who, why) in [
        (person("wolfv", 885054, Some(Permission::Triage)), "triage"),
        (person("wolfv", 885054, None), "no role"),
        (
            person("isuruf", 5234427, Some(Permission::Write)),
            "no terms",
        ),
        // The author approving their own pull request: only if they could run it anyway.
        (someone(), "the author"),
    ] {
        assert_eq!(
            rule(&fork_pr(Some(approval(who)))),
            Some(DenyRule::UserNotAllowed),
            "{why}"
        );
    }
}

#[test]
fn every_other_rule_still_applies() {
    let target = JobContext {
        event: "pull_request_target".into(),
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&target), Some(DenyRule::EventNotAllowed));
    let spent = JobContext {
        usage: Usage {
            project_minutes: 3000,
            resource_minutes: 3000,
        },
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&spent), Some(DenyRule::QuotaExhausted));
    let no_grant = JobContext {
        repository: "conda-forge/numpy-feedstock".into(),
        ..fork_pr(Some(approval(wolfv())))
    };
    assert_eq!(rule(&no_grant), Some(DenyRule::NoGrant));
}

/// The guard's view: a job context whose decider takes run approvals with a phrase.
struct Guarded(JobContext);

impl Job for Guarded {
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
    fn run_approval_phrase(&self) -> Option<&str> {
        Some("/gatehouse run")
    }
}

#[test]
fn a_pull_request_denied_by_the_people_rule_is_told_who_can_approve_it_and_how() {
    let p = policy();
    let job = Guarded(fork_pr(None));
    let d = p.decide(&job);
    let text = d.message().unwrap();
    assert!(
        text.contains("`/gatehouse run 6dcb09b5b578`")
            && text.contains("the admin, maintain, write role on `conda-forge/pytorch-cpu-feedstock`, terms of service accepted"),
        "{text}"
    );
    // Not on a push, and not where run approvals are not taken (`gatehouse decide`).
    let push = Guarded(JobContext {
        event: "push".into(),
        ..fork_pr(None)
    });
    let text = p.decide(&push).message().unwrap();
    assert!(!text.contains("/gatehouse run"), "{text}");
    let plain = fork_pr(None);
    let text = p.decide(&plain).message().unwrap();
    assert!(!text.contains("/gatehouse run"), "{text}");
}

#[test]
fn the_guard_asks_the_policy_who_may_approve() {
    let p = policy();
    let today = date(2026, 11, 28);
    let repo = "conda-forge/pytorch-cpu-feedstock";
    assert_eq!(
        p.may_approve_runs(repo, "gpu", &wolfv(), Some(Permission::Write), today),
        Ok(())
    );
    assert!(
        p.may_approve_runs(repo, "gpu", &someone(), None, today)
            .is_err()
    );
    assert!(
        p.may_approve_runs(
            "conda-forge/numpy-feedstock",
            "gpu",
            &wolfv(),
            Some(Permission::Write),
            today
        )
        .is_err()
    );
    assert_eq!(p.granted_resources(repo, today), ["gpu", "cpu", "nightly"]);
}

/// The version-update bot: write access on the feedstock, terms accepted, listed in `bots`.
fn bot() -> Actor {
    person("regro-cf-autotick-bot", 36490558, Some(Permission::Write))
}

#[test]
fn a_bot_is_never_a_maintainer_but_its_pull_request_can_be_approved() {
    let p = policy();
    // Its push, whatever role GitHub gives it, is judged as a bot's.
    let push = JobContext {
        event: "push".into(),
        head_repository: Some("conda-forge/pytorch-cpu-feedstock".into()),
        head_owner: None,
        actor: bot(),
        head_sha: None,
        ..fork_pr(None)
    };
    assert_eq!(rule(&push), Some(DenyRule::UserNotAllowed));
    let text = p.decide(&push).message().unwrap();
    assert!(text.contains("is a bot"), "{text}");
    // Its pull request from its fork, approved by a maintainer's comment: runs.
    let bot_pr = |approval: Option<RunApproval>| JobContext {
        head_repository: Some("regro-cf-autotick-bot/pytorch-cpu-feedstock".into()),
        head_owner: Some(bot()),
        actor: bot(),
        run_approval: approval,
        ..fork_pr(None)
    };
    assert_eq!(rule(&bot_pr(None)), Some(DenyRule::UserNotAllowed));
    let approved = RunApproval {
        head_repository: "regro-cf-autotick-bot/pytorch-cpu-feedstock".into(),
        ..approval(wolfv())
    };
    assert_eq!(rule(&bot_pr(Some(approved.clone()))), None);
    // The bot approving (its own or anyone's) pull request counts for nothing.
    let by_bot = RunApproval {
        approver: bot(),
        ..approved
    };
    assert_eq!(rule(&bot_pr(Some(by_bot))), Some(DenyRule::UserNotAllowed));
    assert!(
        p.may_approve_runs(
            "conda-forge/pytorch-cpu-feedstock",
            "gpu",
            &bot(),
            Some(Permission::Write),
            date(2026, 11, 28)
        )
        .is_err()
    );
}

#[test]
fn a_resource_that_trusts_bots_takes_their_pushes_to_the_default_branch_only() {
    // The re-render bot pushes to pytorch-cpu's own `main` (code maintainers merged).
    let push = |labels: &str, branch: &str, default: Option<&str>| JobContext {
        labels: vec![labels.into()],
        event: "push".into(),
        head_repository: Some("conda-forge/pytorch-cpu-feedstock".into()),
        head_owner: None,
        actor: bot(),
        git_ref: Some(format!("refs/heads/{branch}")),
        default_branch: default.map(str::to_string),
        ..fork_pr(None)
    };
    assert_eq!(rule(&push("cirun-nightly", "main", Some("main"))), None);
    // Not on a resource that does not say so, not on another branch, not when the default
    // branch is unknown.
    for (job, why) in [
        (
            push("cirun-openstack-cpu-large", "main", Some("main")),
            "cpu",
        ),
        (push("cirun-nightly", "bot-rerun", Some("main")), "branch"),
        (push("cirun-nightly", "main", None), "unknown default"),
    ] {
        assert_eq!(rule(&job), Some(DenyRule::UserNotAllowed), "{why}");
    }
    // Its pull request (from its fork) still needs an approval of the commit.
    let pull = JobContext {
        labels: vec!["cirun-nightly".into()],
        head_repository: Some("regro-cf-autotick-bot/pytorch-cpu-feedstock".into()),
        head_owner: Some(bot()),
        actor: bot(),
        default_branch: Some("main".into()),
        ..fork_pr(None)
    };
    assert_eq!(rule(&pull), Some(DenyRule::UserNotAllowed));
    // A person without a role pushing to main is no bot: still denied.
    let stranger = JobContext {
        actor: person("stranger", 7, None),
        ..push("cirun-nightly", "main", Some("main"))
    };
    assert_eq!(rule(&stranger), Some(DenyRule::UserNotAllowed));
}
