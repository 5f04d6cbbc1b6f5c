//! Arbitrary bytes as a project's workflow, `conda-forge.yml` and `conda_build_config.yaml`,
//! audited against the bundled example: findings only, never a panic, each finding placed in
//! the fuzzed project.

#![no_main]

use gatehouse_core::audit::{BUILD_CONFIG, CONDA_FORGE_YML, audit_project};
use gatehouse_fuzz::{PolicyLedger, example_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ledger = PolicyLedger(example_policy());
    // The same bytes in each of the three places audit reads, and as a second workflow next to
    // a conda-forge.yml that turns on self-hosted pull request builds.
    let files: Vec<(String, Vec<u8>)> = [
        ".github/workflows/conda-build.yml",
        CONDA_FORGE_YML,
        BUILD_CONFIG,
    ]
    .iter()
    .map(|p| (p.to_string(), data.to_vec()))
    .collect();
    for d in audit_project(&ledger, "pytorch-cpu-feedstock", &files).sorted() {
        assert!(!d.message.is_empty(), "empty message: {d:?}");
        assert!(
            d.file.starts_with("pytorch-cpu-feedstock/"),
            "finding outside the project: {d:?}"
        );
    }
    let with_config = vec![
        (
            CONDA_FORGE_YML.to_string(),
            b"github_actions:\n  self_hosted: true\n  triggers: [push, pull_request]\n".to_vec(),
        ),
        (".github/workflows/other.yml".to_string(), data.to_vec()),
        (BUILD_CONFIG.to_string(), data.to_vec()),
    ];
    for d in audit_project(&ledger, "conda-smithy-feedstock", &with_config).sorted() {
        assert!(!d.message.is_empty(), "empty message: {d:?}");
    }
});
