//! Merge-to-live latency of `gatehouse apply --confirm`: from the start of the run that follows
//! a merged request to the moment every loopback provider (Cirun's policy, the app
//! installation, the runner group) lets the new project in, and to the end of the run (which
//! also opens the project's configuration pull request). Target: under 5 s. Cirun in both
//! modes: `.access.yml` committed to `.cirun` (the default), and `via: api` (Cirun's `PUT`,
//! then the merge of the pull request Cirun opens); Cirun's grant is live once merged.
//!
//! Not a criterion benchmark: each sample is one process run against the stateful fakes of
//! `tests/it/support`, timed from outside by polling the fakes.
//!
//! `cargo bench -p gatehouse --bench apply_latency`

// The integration tests' support, of which this benchmark uses only the world.
#[allow(dead_code)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::world::{GRANT_ALL, Options, world_with};

const SAMPLES: usize = 10;

fn main() {
    println!(
        "| Cirun via | projects already granted | mutation spacing | live at every provider (median / max) | whole run (median / max) | GitHub + Cirun calls per run (mutating) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for api in [false, true] {
        for background in [10, 1000] {
            for spacing in ["0", "1000"] {
                measure(api, background, spacing);
            }
        }
    }
}

fn measure(api: bool, background: usize, spacing_ms: &str) {
    let w = world_with(
        background,
        Options {
            cirun_api: api,
            ..Default::default()
        },
    );
    let env = [("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", Some(spacing_ms))];
    // The background grants reach the providers first (quickly: this is not measured).
    let seed = w.run_env(
        &["apply", "--confirm"],
        &[("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", Some("0"))],
    );
    assert_eq!(seed.code, Some(0), "{seed}");
    let mut live = Vec::new();
    let mut whole = Vec::new();
    let mut calls = Vec::new();
    for i in 0..SAMPLES {
        let project = format!("new{i:02}");
        let feedstock = format!("conda-forge/{project}-feedstock");
        w.github.set_file(
            &feedstock,
            "recipe/conda_build_config.yaml",
            "zlib:\n- 1.3\n",
        );
        w.request(
            &project,
            &format!("action: grant\nprojects: [{project}]\n{GRANT_ALL}send_pr: true\n"),
        );
        let before = w.github.gate.calls().len() + w.cirun.gate.calls().len();
        let mutations_before = w.mutations();
        let started = Instant::now();
        let mut child = w
            .command(&["apply", "--confirm"], &env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut live_at = None;
        loop {
            if live_at.is_none() && w.holds(&project) == (true, true, true) {
                live_at = Some(started.elapsed());
            }
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{project}: {status}");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        whole.push(started.elapsed());
        let live_at = live_at.unwrap_or_else(|| {
            assert_eq!(w.holds(&project), (true, true, true));
            started.elapsed()
        });
        live.push(live_at);
        assert_eq!(w.github.pulls_in(&feedstock).len(), 1, "{project}");
        calls.push((
            w.github.gate.calls().len() + w.cirun.gate.calls().len() - before,
            w.mutations() - mutations_before,
        ));
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        format!(
            "{:.0} ms / {:.0} ms",
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        )
    };
    calls.sort();
    let (all, mutating) = calls[calls.len() / 2];
    println!(
        "| {} | {background} | {spacing_ms} ms | {} | {} | {all} ({mutating}) |",
        if api { "api" } else { "access-repo" },
        stats(&mut live),
        stats(&mut whole),
    );
}
