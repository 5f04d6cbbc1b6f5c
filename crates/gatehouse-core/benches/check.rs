//! What `gatehouse check` costs on a conda-forge-scale repository, minus printing.
//!
//! The repository is generated once per scale (`fixture::generate`, as `gatehouse gen-fixture`
//! does) into a temporary folder; each iteration then reads it from disk and runs every check.
//! Reading and parsing (`load`), parsing alone from memory (`parse`) and the checks alone
//! (`check`) are also measured apart, to show where the time goes.
//!
//! `cargo bench -p gatehouse-core --bench check`; results and targets are in docs/BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use gatehouse_core::fixture::{FixtureSpec, generate};
use gatehouse_core::{Repo, check, repo};
use jiff::civil::{Date, date};

const TODAY: Date = date(2026, 11, 28);
const SCALES: &[usize] = &[1, 10];

struct Fixture {
    scale: usize,
    files: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

fn write_fixture(scale: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let spec = FixtureSpec {
        seed: 42,
        scale,
        today: TODAY,
    };
    let files = generate(spec);
    for (path, contents) in &files {
        let full = dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create a fixture folder");
        }
        std::fs::write(&full, contents).expect("write a fixture file");
    }
    let diags = check_dir(dir.path());
    if diags.has_errors() {
        let codes: Vec<_> = diags.iter().map(|d| (d.code, d.file.as_str())).collect();
        eprintln!("note: the scale {scale} fixture does not pass the checks: {codes:?}");
    }
    Fixture { scale, files, dir }
}

fn check_dir(dir: &Path) -> gatehouse_core::Diagnostics {
    let repo = repo::load_dir(dir).expect("the fixture loads");
    check::run_all(&repo, TODAY)
}

fn bench_check(c: &mut Criterion) {
    let fixtures: Vec<Fixture> = SCALES.iter().map(|&s| write_fixture(s)).collect();

    let mut group = c.benchmark_group("gatehouse-check");
    // One run at scale 10 takes about a second: a few flat samples are enough.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    for Fixture { scale, files, dir } in &fixtures {
        let dir = dir.path();
        group.bench_with_input(BenchmarkId::new("load+check", scale), dir, |b, dir| {
            b.iter(|| black_box(check_dir(dir)))
        });
        group.bench_with_input(BenchmarkId::new("load", scale), dir, |b, dir| {
            b.iter(|| black_box(repo::load_dir(dir).expect("the fixture loads")))
        });
        group.bench_with_input(BenchmarkId::new("parse", scale), files, |b, files| {
            b.iter(|| {
                let sources = files.iter().map(|(p, c)| (p.as_str(), c.as_bytes()));
                black_box(Repo::from_sources(sources))
            })
        });
        let loaded = repo::load_dir(dir).expect("the fixture loads");
        group.bench_with_input(BenchmarkId::new("check", scale), &loaded, |b, loaded| {
            b.iter(|| black_box(check::run_all(loaded, TODAY)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
