//! Keeps `docs/ARCHITECTURE.md` true: every workspace crate has its row in the table of crates,
//! and every row names a crate that exists.

use std::collections::BTreeSet;
use std::path::Path;

/// The `name` of each `crates/*/Cargo.toml`.
fn workspace_crates(root: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .unwrap_or_else(|| panic!("{} has no name", manifest.display()));
        names.insert(name.trim_matches('"').to_string());
    }
    names
}

/// The crate each row of the table names: rows start with `` | `NAME` | ``.
fn documented_crates(map: &str) -> BTreeSet<String> {
    map.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_workspace_crate_has_a_line_in_the_architecture_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md is the map of the crates");
    let crates = workspace_crates(&root);
    let documented = documented_crates(&map);
    assert!(crates.contains("gatehouse-core"), "{crates:?}");
    let missing: Vec<_> = crates.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md has no line for {missing:?}: add one to its table of crates \
         (what the crate is for and what it is not for)"
    );
    let gone: Vec<_> = documented.difference(&crates).collect();
    assert!(
        gone.is_empty(),
        "docs/ARCHITECTURE.md describes {gone:?}, which is no workspace crate"
    );
}

#[test]
fn a_row_is_read_by_its_first_cell() {
    let rows = "| crate | for |\n| --- | --- |\n| `a-b` | x |\n| `c` | `d` |\nprose `e` |\n";
    assert_eq!(
        documented_crates(rows),
        BTreeSet::from(["a-b".to_string(), "c".to_string()])
    );
}
