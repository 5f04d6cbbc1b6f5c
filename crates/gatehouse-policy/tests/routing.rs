//! Label routing and project naming, against the simplest possible statement of the rule.

use gatehouse_core::Repo;
use gatehouse_core::names::{is_generic_label, label_key};
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

/// The rule, stated plainly: the resources whose label equals the label's key.
fn expected_routes(labels: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = labels
        .iter()
        .filter(|l| !is_generic_label(l))
        .filter_map(|l| {
            let key = label_key(l);
            RESOURCES.iter().position(|r| r.to_ascii_lowercase() == key)
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
                    "gpu",
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
            match suffix.len() % 3 {
                0 => base,
                1 => format!("{base}--{suffix}"),
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
