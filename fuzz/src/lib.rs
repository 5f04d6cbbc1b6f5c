//! What the fuzz targets share: a small, valid access repository that a fuzzed file is added to,
//! so that the checks run against the fuzzed file with something to compare it to.

use std::sync::OnceLock;

use gatehouse_core::{Repo, Severity, check};
use jiff::civil::date;

/// Fixed files around the fuzzed one. They pass `gatehouse check` on their own.
const FIXED: &[(&str, &str)] = &[
    (
        "gatehouse.yml",
        "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n  namespace: { kind: github-app, installation_id: 1 }\n",
    ),
    (
        "resources/cirun-openstack-gpu-large.yml",
        "name: cirun-openstack-gpu-large\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nmax_duration: 1y\nusers: { require_tos: true }\n",
    ),
    (
        "resources/namespace.yml",
        "name: namespace\nprovider: namespace\nlabels: [namespace-profile-linux]\n",
    ),
    (
        "grants/pytorch-cpu.yml",
        "project: pytorch-cpu\ngrants:\n  - resource: cirun-openstack-gpu-large\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    ),
    (
        "people/tos.yml",
        "- { github: jaimergp, id: 2559438, accepted: 2026-01-15 }\n",
    ),
];

/// The fixed files, parsed once: parsing them again on every input would take most of the
/// fuzzer's time.
fn fixed_repo() -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(|| {
        let repo = Repo::from_sources(FIXED.iter().map(|(p, c)| (*p, c.as_bytes())));
        let diags = check::run_all(&repo, date(2026, 11, 28));
        assert!(
            diags.is_empty(),
            "the fixed files do not pass: {:?}",
            diags.sorted()
        );
        repo
    })
}

/// Loads the fixed repository plus `data` at `path` and runs every offline check, as
/// `gatehouse check` does. Panics (the fuzzer's finding) if a diagnostic is malformed.
pub fn check_with(path: &str, data: &[u8]) {
    // The same as `Repo::from_sources` over the fixed files and this one.
    let one = Repo::from_sources([(path, data)]);
    let mut repo = fixed_repo().clone();
    repo.grants.extend(one.grants);
    repo.requests.extend(one.requests);
    repo.load_errors.extend(one.load_errors);
    repo.grants.sort_by(|a, b| a.path.cmp(&b.path));
    repo.requests.sort_by(|a, b| a.path.cmp(&b.path));

    let diags = check::run_all(&repo, date(2026, 11, 28));
    for d in diags.sorted() {
        assert!(!d.message.is_empty(), "empty message: {d:?}");
        if d.severity == Severity::Error {
            assert!(!d.file.is_empty(), "error without a file: {d:?}");
        }
        // Only the fuzzed file can be wrong; the fixed ones are valid (a duplicate grant is
        // reported in whichever of the two files sorts last).
        if d.severity == Severity::Error && d.file != path {
            assert_eq!(d.code, "duplicate-grant", "error in a fixed file: {d:?}");
        }
    }
}

/// The bundled example (`examples/conda-forge`), compiled once: what the router and the
/// workflow scanner are fuzzed against.
pub fn example_policy() -> &'static gatehouse_policy::Policy {
    static POLICY: OnceLock<gatehouse_policy::Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/conda-forge");
        let repo = gatehouse_core::repo::load_dir(&dir).expect("the bundled example loads");
        gatehouse_policy::compile(&repo, date(2026, 11, 28))
    })
}

/// A policy with every form a resource's labels take (issue 13): Namespace's family by pattern
/// with one exact label under it, Depot's by pattern, Cirun's exact labels, and runner groups
/// (one serving two resources). What the router is fuzzed against, besides the example.
pub fn routing_policy() -> &'static gatehouse_policy::Policy {
    static POLICY: OnceLock<gatehouse_policy::Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n  namespace: { kind: github-app, installation_id: 1 }\n  depot: { kind: github-app, installation_id: 2 }\n  gpu-pool: { kind: runner-group, group: gpu }\n  big-pool: { kind: runner-group, group: Big }\n",
            ),
            ("resources/namespace.yml", "name: namespace\nprovider: namespace\nlabels: ['namespace-profile-*']\n"),
            ("resources/namespace-gpu.yml", "name: namespace-gpu\nprovider: namespace\nlabels: [namespace-profile-gpu]\n"),
            ("resources/depot.yml", "name: depot\nprovider: depot\nlabels: ['depot-*']\n"),
            ("resources/cirun-gpu.yml", "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\n"),
            ("resources/pool.yml", "name: pool\nprovider: gpu-pool\n"),
            ("resources/big-a.yml", "name: big-a\nprovider: big-pool\nlabels: [big-a]\n"),
            ("resources/big-b.yml", "name: big-b\nprovider: big-pool\nlabels: [big-b]\n"),
        ]);
        let diags = check::run_all(&repo, date(2026, 11, 28));
        assert!(diags.is_empty(), "the routing policy does not pass: {:?}", diags.sorted());
        gatehouse_policy::compile(&repo, date(2026, 11, 28))
    })
}

/// Audit's questions answered from the compiled policy, as `gatehouse audit` answers them.
pub struct PolicyLedger(pub &'static gatehouse_policy::Policy);

impl gatehouse_core::audit::Ledger for PolicyLedger {
    fn project_of(&self, name: &str) -> Option<String> {
        let full = format!("{}/{name}", self.0.org());
        self.0.project_of(&full).map(str::to_string)
    }

    fn route(&self, labels: &[&str], group: Option<&str>) -> gatehouse_core::audit::Routed {
        use gatehouse_core::audit::Routed;
        match self.0.route_job(labels.iter().copied(), group) {
            Ok(None) => Routed::None,
            Ok(Some(id)) => Routed::One(self.0.resource(id).name.to_string()),
            Err((a, b)) => Routed::Ambiguous(
                self.0.resource(a).name.to_string(),
                self.0.resource(b).name.to_string(),
            ),
        }
    }

    fn grant(&self, project: &str, resource: &str) -> gatehouse_core::audit::GrantState {
        use gatehouse_core::audit::GrantState;
        let today = self.0.compiled_on();
        match self.0.grants().find(|(_, g)| {
            g.project.eq_ignore_ascii_case(project)
                && &*self.0.resource(g.resource).name == resource
        }) {
            None => GrantState::None,
            Some((_, g)) => match g.expires {
                Some(day) if day < today => GrantState::Expired(day),
                _ => GrantState::Active {
                    pull_request: g.pull_request,
                },
            },
        }
    }
}
