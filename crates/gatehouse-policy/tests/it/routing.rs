//! Label routing and project naming, against the simplest possible statement of the rule.

use gatehouse_core::Repo;
use gatehouse_core::names::{label_key, label_pattern, never_routes};
use gatehouse_policy::{Policy, compile};
use jiff::civil::date;
use proptest::prelude::*;

const RESOURCES: &[&str] = &[
    "gpu-large",
    "cpu-large",
    "Mixed-Case",
    "dots.and_underscores",
    // Longer than 63 bytes: `compile` records key lengths in a 64-bit mask whose last bit
    // stands for every length from 63 up, so these must still route (and their prefixes not).
    "a-label-long-enough-to-share-the-last-bit-of-the-length-mask-with-others",
    "a-label-long-enough-to-share-the-last-bit-of-the-length-mask-with-others-too",
    // Patterns: every label whose key starts with the text before the `*`; an exact label that
    // a pattern also matches wins.
    "namespace-profile-*",
    "Depot-*",
    "namespace-profile-gpu",
];

fn policy() -> Policy {
    let mut files = vec![(
        "gatehouse.yml".to_string(),
        "org: Conda-Forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [t] }\nproviders:\n  c: { kind: cirun, access_repo: .cirun }\n".to_string(),
    )];
    for (i, r) in RESOURCES.iter().enumerate() {
        files.push((
            format!("resources/r{i}.yml"),
            format!("name: r{i}\nprovider: c\nlabels: [{r}]\n"),
        ));
    }
    compile(&Repo::from_sources(files), date(2026, 1, 1))
}

/// The rule, stated plainly: the resource whose label equals the label's key, or else the
/// resources whose pattern the key starts with; never a generic or hosted-runner label.
fn expected_routes(labels: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = labels
        .iter()
        .map(|l| label_key(l))
        .filter(|key| !key.is_empty() && !never_routes(key.as_bytes()))
        .flat_map(|key| {
            let resource_keys = || RESOURCES.iter().map(|r| r.to_ascii_lowercase()).enumerate();
            match resource_keys().find(|(_, r)| *r == key) {
                Some((i, _)) => vec![i],
                None => resource_keys()
                    .filter(|(_, r)| {
                        matches!(label_pattern(r), Ok(Some(prefix)) if key.starts_with(prefix))
                    })
                    .map(|(i, _)| i)
                    .collect(),
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn label() -> impl Strategy<Value = String> {
    let known = prop::sample::select(
        RESOURCES
            .iter()
            .map(|s| s.to_string())
            .chain(
                [
                    "self-hosted",
                    "linux",
                    "x64",
                    "macos",
                    "ubuntu-latest",
                    "windows-2022",
                    "macos-14",
                    "gpu",
                    "namespace-profile-",
                    "namespace-profile-16cpu-on-linux-64",
                    "namespace-profile-gpu-large",
                    "depot-ubuntu-24.04",
                    "depot",
                ]
                .map(String::from),
            )
            .collect::<Vec<_>>(),
    );
    let decorated = (known, any::<bool>(), "[a-z0-9_-]{0,12}", "\\PC{0,4}").prop_map(
        |(base, upper, suffix, noise)| {
            let base = if upper {
                base.to_ascii_uppercase()
            } else {
                base
            };
            match suffix.len() % 5 {
                0 => base,
                1 => format!("{base}--{suffix}"),
                2 => format!("{base};{suffix}"),
                3 => format!("{base}{suffix}"),
                _ => format!("{base}{noise}"),
            }
        },
    );
    prop_oneof![4 => decorated, 1 => "\\PC{0,20}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn routing_follows_the_label_rule(labels in prop::collection::vec(label(), 0..6)) {
        let p = policy();
        let expected = expected_routes(&labels);
        let got = p.route(labels.iter().map(String::as_str));
        match expected.as_slice() {
            [] => prop_assert_eq!(got, Ok(None)),
            [one] => prop_assert_eq!(got.map(|r| r.map(|id| p.resource(id).name.to_string())), Ok(Some(format!("r{one}")))),
            _ => prop_assert!(got.is_err(), "{:?} should be ambiguous", labels),
        }
    }

    #[test]
    fn projects_are_the_orgs_suffixed_repositories(owner in "(conda-forge|CONDA-FORGE|other|)", name in "[A-Za-z0-9._-]{0,20}", suffix in "(-feedstock|-FEEDSTOCK|)") {
        let p = policy();
        let repository = format!("{owner}/{name}{suffix}");
        let expected = (owner.eq_ignore_ascii_case("conda-forge") && !suffix.is_empty() && !name.is_empty())
            .then_some(name.as_str());
        prop_assert_eq!(p.project_of(&repository), expected);
    }
}

/// A repository shaped like conda-forge's with the providers of issue 13: Namespace's labels
/// by pattern (with one exact label for a bigger machine), Depot's by pattern, a Cirun label,
/// and two runner groups (one serving two resources).
fn providers_policy() -> Policy {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n  namespace: { kind: github-app, installation_id: 1 }\n  depot: { kind: github-app, installation_id: 2 }\n  gpu-pool: { kind: runner-group, group: GPU }\n  big-pool: { kind: runner-group, group: big }\n",
        ),
        (
            "resources/namespace.yml",
            "name: namespace\nprovider: namespace\nlabels: ['namespace-profile-*']\n",
        ),
        (
            "resources/namespace-gpu.yml",
            "name: namespace-gpu\nprovider: namespace\nlabels: [namespace-profile-gpu]\n",
        ),
        (
            "resources/depot.yml",
            "name: depot\nprovider: depot\nlabels: ['depot-*']\n",
        ),
        (
            "resources/cirun-gpu.yml",
            "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\n",
        ),
        (
            "resources/pool-gpu.yml",
            "name: pool-gpu\nprovider: gpu-pool\nlabels: [pool-gpu]\n",
        ),
        (
            "resources/big-a.yml",
            "name: big-a\nprovider: big-pool\nlabels: [big-a]\n",
        ),
        (
            "resources/big-b.yml",
            "name: big-b\nprovider: big-pool\nlabels: [big-b]\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: namespace\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    compile(&repo, date(2026, 11, 28))
}

fn routed(
    p: &Policy,
    r: Result<
        Option<gatehouse_policy::ResourceId>,
        (gatehouse_policy::ResourceId, gatehouse_policy::ResourceId),
    >,
) -> Result<Option<String>, (String, String)> {
    let name = |id| p.resource(id).name.to_string();
    r.map(|o| o.map(name)).map_err(|(a, b)| (name(a), name(b)))
}

/// conda-forge/pytorch-cpu-feedstock's `runs_on` (.github/workflows/conda-build.yml, 2026-06):
/// Namespace's options after `;` used to make the label unknown, so the job was not managed
/// at all.
const PYTORCH_LINUX: &str =
    "namespace-profile-16cpu-on-linux-64;container.privileged=true;container.mount-scratch=true";

#[test]
fn namespace_labels_with_options_route_by_the_pattern() {
    let p = providers_policy();
    for labels in [
        vec![PYTORCH_LINUX],
        vec!["namespace-profile-12cpu-on-osx-arm64"],
        vec!["Namespace-Profile-16cpu-4x-on-windows-64", "self-hosted"],
        vec!["namespace-profile-gpu-large;x=1"],
    ] {
        assert_eq!(
            routed(&p, p.route(labels.iter().copied())),
            Ok(Some("namespace".into())),
            "{labels:?}"
        );
    }
    assert_eq!(
        routed(&p, p.route(["depot-ubuntu-24.04-8"])),
        Ok(Some("depot".into()))
    );
    // The exact label wins over the pattern that also matches it.
    assert_eq!(
        routed(
            &p,
            p.route(["namespace-profile-gpu;container.privileged=true"])
        ),
        Ok(Some("namespace-gpu".into()))
    );
    assert_eq!(
        routed(
            &p,
            p.route([
                "namespace-profile-gpu",
                "namespace-profile-16cpu-on-linux-64"
            ])
        ),
        Err(("namespace-gpu".into(), "namespace".into()))
    );
    // The prefix alone is not the family: `namespace-profile` lacks the `-`.
    assert_eq!(
        routed(&p, p.route(["namespace-profile", "depot"])),
        Ok(None)
    );
}

#[test]
fn a_namespace_job_with_options_is_decided_not_waved_through() {
    use gatehouse_policy::{Actor, Decision, DenyRule, JobContext, Permission, Usage};
    let p = providers_policy();
    let job = |repository: &str| JobContext {
        repository: repository.into(),
        labels: vec![PYTORCH_LINUX.into()],
        event: "push".into(),
        head_repository: Some(repository.into()),
        head_owner: None,
        actor: Actor {
            login: "wolfv".into(),
            id: 885054,
            permission: Some(Permission::Write),
        },
        triggering_actor: None,
        workflow: Some(".github/workflows/conda-build.yml".into()),
        git_ref: Some("refs/heads/main".into()),
        usage: Usage::default(),
        today: None,
        head_sha: None,
        run_approval: None,
        default_branch: None,
        teams: Default::default(),
    };
    assert!(matches!(
        p.decide(&job("conda-forge/pytorch-cpu-feedstock")),
        Decision::Allow { .. }
    ));
    assert_eq!(
        p.decide(&job("conda-forge/tensorflow-feedstock")).rule(),
        Some(DenyRule::NoGrant)
    );
}

#[test]
fn hosted_runner_labels_never_route_even_through_a_pattern() {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nreviewers: { teams: [core] }\nproviders:\n  c: { kind: cirun, access_repo: .cirun }\n",
        ),
        // `check` refuses both; compiled anyway, neither claims GitHub's runners.
        (
            "resources/u.yml",
            "name: u\nprovider: c\nlabels: ['u*', ubuntu-latest, self-hosted]\n",
        ),
    ]);
    let p = compile(&repo, date(2026, 11, 28));
    for label in [
        "ubuntu-latest",
        "ubuntu-24.04",
        "UBUNTU-22.04;x",
        "self-hosted",
    ] {
        assert_eq!(routed(&p, p.route([label])), Ok(None), "{label}");
    }
    assert_eq!(routed(&p, p.route(["ubuntu"])), Ok(Some("u".into())));
}

#[test]
fn runner_groups_route_to_their_resource_once_known() {
    let p = providers_policy();
    let job = |labels: &[&str], group: Option<&str>| {
        routed(&p, p.route_job(labels.iter().copied(), group))
    };
    // `runs-on: { group: gpu }` is queued with no labels and no group: nothing to route yet.
    assert_eq!(job(&[], None), Ok(None));
    // In progress on the group's runners (the group's name compares case-insensitively).
    assert_eq!(job(&[], Some("gpu")), Ok(Some("pool-gpu".into())));
    assert_eq!(
        job(&["pool-gpu", "linux"], Some("GPU")),
        Ok(Some("pool-gpu".into()))
    );
    // Labels of another resource on the group's runners ask for two resources.
    assert_eq!(
        job(&["cirun-openstack-gpu-large"], Some("gpu")),
        Err(("cirun-gpu".into(), "pool-gpu".into()))
    );
    // A group no provider manages (GitHub's hosted runners, the default group) changes nothing.
    assert_eq!(
        job(&["cirun-openstack-gpu-large"], Some("Default")),
        Ok(Some("cirun-gpu".into()))
    );
    assert_eq!(job(&["ubuntu-latest"], Some("GitHub Actions")), Ok(None));
    // A group serving two resources: the labels pick one, or the job is ambiguous.
    assert_eq!(job(&["big-b"], Some("big")), Ok(Some("big-b".into())));
    assert_eq!(job(&[], Some("big")), Err(("big-a".into(), "big-b".into())));
    assert_eq!(
        routed(&p, p.route_group(" Gpu ")),
        Ok(Some("pool-gpu".into()))
    );
    assert_eq!(routed(&p, p.route_group("other")), Ok(None));
}
