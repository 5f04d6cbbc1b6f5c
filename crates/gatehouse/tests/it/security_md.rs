//! SECURITY.md cannot rot: every attack in its tables names at least one test, and every test it
//! names exists as a function somewhere in the workspace's crates.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The rows of the attack tables: (id, tests named in the last cell).
fn attack_rows(text: &str) -> Vec<(String, Vec<String>)> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        // | # | attack | control | tests |, with an id such as `X1` or `W3`.
        let is_attack = cells.len() == 4
            && cells[0].len() >= 2
            && cells[0]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
            && cells[0][1..].chars().all(|c| c.is_ascii_digit());
        if !is_attack {
            continue;
        }
        let tests = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        rows.push((cells[0].to_string(), tests));
    }
    rows
}

#[test]
fn every_attack_names_tests_that_exist() {
    let text = std::fs::read_to_string(workspace().join("SECURITY.md")).unwrap();
    let rows = attack_rows(&text);
    assert!(
        rows.len() >= 30,
        "only {} attacks found in SECURITY.md's tables",
        rows.len()
    );

    let mut files = Vec::new();
    rust_files(&workspace().join("crates"), &mut files);
    let sources: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut missing = Vec::new();
    for (id, tests) in &rows {
        assert!(!tests.is_empty(), "attack {id} names no test");
        for name in tests {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "attack {id}: `{name}` is not a test function name"
            );
            let needle = format!("fn {name}(");
            if !sources.iter().any(|s| s.contains(&needle)) {
                missing.push(format!("{id}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist: {missing:#?}"
    );
}

#[test]
fn the_parser_sees_ids_and_test_cells() {
    let rows = attack_rows(
        "| # | attack | control | tests |\n| --- | --- | --- | --- |\n| X1 | a | b | `one_test`, `two_test` |\n| not | a | b | `x` |\n",
    );
    assert_eq!(
        rows,
        [(
            "X1".to_string(),
            vec!["one_test".to_string(), "two_test".to_string()]
        )]
    );
}
