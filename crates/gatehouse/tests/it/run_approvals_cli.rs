//! Run approvals (`/gatehouse run <sha>`) in `audit --db` and `history --db`: the binary on a
//! guard's store, SQLite and PostgreSQL, filled through the store's own writes as the guard
//! makes them (an approval, the jobs whose decisions stood on it, their counted minutes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gatehouse_server::Store;
use gatehouse_server::store::{ApprovedRun, RunApprovalRecord, Write};
use serde_json::Value;

use crate::db::{Backend, Db};
use crate::support::fs;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(workspace())
        .args(args)
        .args(["--today", "2026-11-29"])
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN")
        .env_remove("CIRUN_API_KEY")
        .output()
        .unwrap()
}

const REPOSITORY: &str = "conda-forge/pytorch-cpu-feedstock";
const FORK: &str = "drive-by/pytorch-cpu-feedstock";
const HEAD: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const RESOURCE: &str = "cirun-openstack-gpu-large";

fn approval(pull: i64, day: u8) -> RunApprovalRecord {
    RunApprovalRecord {
        source: format!("comment:{pull}"),
        repository: REPOSITORY.into(),
        pull_number: pull,
        head_sha: HEAD.into(),
        head_repository: FORK.into(),
        resources: String::new(),
        approver_login: "ann".into(),
        approver_id: 11,
        approved_at: format!("2026-11-{day:02}T10:00:00Z"),
        expires_at: format!("2026-11-{:02}T10:00:00Z", day + 1),
        runs: 3,
    }
}

fn minutes(job_id: i64, minutes: i64) -> Write {
    Write::Minutes {
        job_id,
        project: "pytorch-cpu".into(),
        resource: RESOURCE.into(),
        day: "2026-11-20".into(),
        minutes,
    }
}

/// Ann approves five pull requests of `drive-by`'s fork; under the first, two jobs run (200
/// and 20 minutes) while pytorch-cpu's other ten jobs ran 20 minutes each.
async fn fill(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let approvals: Vec<Write> = (1..=5)
        .map(|pull| Write::RunApproval(approval(pull, 10 + pull as u8)))
        .collect();
    store.commit(approvals).await.unwrap();
    let first = store
        .recent_run_approvals(Some(REPOSITORY), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.approval.pull_number == 1)
        .unwrap()
        .id;
    let mut writes: Vec<Write> = (0..10).map(|j| minutes(j, 20)).collect();
    for (job_id, m) in [(900, 200), (901, 20)] {
        writes.push(Write::ApprovedRun(ApprovedRun::Job {
            approval_id: first,
            job_id,
            run_id: 90,
            run_attempt: 1,
            delivery_id: format!("job-{job_id}"),
            at: "2026-11-11T10:05:00Z".into(),
        }));
        writes.push(minutes(job_id, m));
    }
    store.commit(writes).await.unwrap();
}

/// `audit --db`'s run-approval findings (code, message) on the access repository `dir`.
fn audit_findings(dir: &str, url: &str) -> Vec<(String, String)> {
    let out = gatehouse(&["audit", dir, "--db", url, "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("audit-run-approval"))
        })
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A copy of the example whose gatehouse.yml ends with `extra`.
fn example_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy_dir(&workspace().join("examples/conda-forge"), dir.path());
    let settings = dir.path().join("gatehouse.yml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{text}{extra}\n")).unwrap();
    dir
}

fn scenario(url: &str) {
    let found = audit_findings("examples/conda-forge", url);
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(c, m)| (c.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "audit-run-approval-long-job",
                "job 900 ran 200 minutes under `ann`'s run approval of commit 6dcb09b5b578 (conda-forge/pytorch-cpu-feedstock#1 from drive-by/pytorch-cpu-feedstock), more than 3 times `pytorch-cpu`'s median job (20 minutes over 12 jobs)"
            ),
            (
                "audit-run-approvals-of-one-account",
                "`ann` approved 5 pull requests of `drive-by` for managed runners (conda-forge/pytorch-cpu-feedstock#1, conda-forge/pytorch-cpu-feedstock#2, conda-forge/pytorch-cpu-feedstock#3, conda-forge/pytorch-cpu-feedstock#4, conda-forge/pytorch-cpu-feedstock#5)"
            ),
        ],
    );

    // The thresholds are gatehouse.yml's: over the last 16 days only pull requests 3 to 5 were
    // approved (the long job's approval is older), which 3 pull requests report and the default
    // 5 do not.
    let (code, message) = {
        let dir = example_with("run_approvals: { audit: { days: 16, many_pulls: 3 } }");
        let found = audit_findings(dir.path().to_str().unwrap(), url);
        assert_eq!(found.len(), 1, "{found:#?}");
        found[0].clone()
    };
    assert_eq!(code, "audit-run-approvals-of-one-account");
    assert!(
        message.starts_with("`ann` approved 3 pull requests of `drive-by`"),
        "{message}"
    );
    let dir = example_with("run_approvals: { audit: { days: 16 } }");
    assert_eq!(audit_findings(dir.path().to_str().unwrap(), url), vec![]);
    // A job must run more than `factor` times the median: 200 minutes is not 20 times 20.
    let dir = example_with("run_approvals: { audit: { factor: 20 } }");
    let found = audit_findings(dir.path().to_str().unwrap(), url);
    assert!(
        found
            .iter()
            .all(|(c, _)| c != "audit-run-approval-long-job"),
        "{found:#?}"
    );

    // `history --db`: the project's grant events and its run approvals, by day.
    let out = gatehouse(&[
        "history",
        "pytorch-cpu",
        "--dir",
        "examples/conda-forge",
        "--db",
        url,
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let approved: Vec<&Value> = events
        .iter()
        .filter(|e| e["change"] == "run-approved")
        .collect();
    assert_eq!(approved.len(), 5, "{events:#?}");
    assert_eq!(approved[0]["date"], "2026-11-11");
    assert_eq!(approved[0]["author"], "ann");
    assert_eq!(
        approved[0]["subject"],
        "pull request #1 from drive-by/pytorch-cpu-feedstock"
    );
    assert_eq!(
        approved[0]["details"],
        "commit 6dcb09b5b578 approved for managed runners by ann; 2 job(s) ran under it, 220 minutes counted"
    );
    assert!(
        events.iter().any(|e| e["change"] == "granted"),
        "the grant events are there too: {events:#?}"
    );
    // Another project's history has none of them.
    let out = gatehouse(&[
        "history",
        "tinygrad",
        "--dir",
        "examples/conda-forge",
        "--db",
        url,
        "--format",
        "json",
    ]);
    let events: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        events.iter().all(|e| e["change"] != "run-approved"),
        "{events:#?}"
    );
}

#[test]
fn audit_and_history_read_run_approvals_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("guard.db").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(fill(&url));
    scenario(&url);
}

#[test]
fn audit_and_history_read_run_approvals_from_postgres() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(Db::new(Backend::Postgres));
    rt.block_on(fill(&db.url));
    scenario(&db.url);
}
