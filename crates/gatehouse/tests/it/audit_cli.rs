//! `gatehouse audit` end to end: the binary on the committed sample checkouts
//! (`examples/audit-projects/`, against `examples/conda-forge/`), on hostile checkouts, on a
//! real SQLite database of the guard, and online against a loopback GitHub that fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;

use crate::db::{Backend, Db};
use crate::support;

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

fn json_findings(out: &Output) -> Vec<(String, u64, String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const SAMPLES: &str = "examples/audit-projects";

/// Every problem planted in the sample checkouts (see examples/audit-projects/README.md), and
/// nothing else: pytorch-cpu-feedstock, which uses only what it holds, has no finding.
#[test]
fn audit_finds_every_planted_problem_and_nothing_else() {
    let out = gatehouse(&[
        "audit",
        "examples/conda-forge",
        "--projects",
        SAMPLES,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = |rel: &str| format!("{SAMPLES}/{rel}");
    let e =
        |file: &str, line: u64, code: &str| (p(file), line, code.to_string(), "error".to_string());
    let w = |file: &str, line: u64, code: &str| {
        (p(file), line, code.to_string(), "warning".to_string())
    };
    let expected = vec![
        // Holds the GPU without pull requests, yet conda-forge.yml builds them.
        e(
            "conda-smithy-feedstock/.github/workflows/conda-build.yml",
            24,
            "audit-pr-not-granted",
        ),
        e(
            "conda-smithy-feedstock/recipe/conda_build_config.yaml",
            2,
            "audit-pr-not-granted",
        ),
        // Cirun runners of its own, outside the catalogue.
        w("cutlass-feedstock/.cirun.yml", 5, "audit-own-cirun-runner"),
        // A half-edited workflow: reported, not a crash.
        w(
            "cutlass-feedstock/.github/workflows/broken.yml",
            3,
            "audit-unreadable",
        ),
        // A runner chosen by a repository variable: not visible in the file.
        w(
            "cutlass-feedstock/.github/workflows/nightly.yml",
            8,
            "audit-label-expression",
        ),
        // pull_request_target with the runner named by the pull request's branch.
        e(
            "libmagma-feedstock/.github/workflows/benchmark.yml",
            8,
            "audit-label-expression",
        ),
        // A comment starts a GPU job (the label in other case still routes).
        e(
            "libmagma-feedstock/.github/workflows/gpu-tests-on-comment.yml",
            10,
            "audit-fork-reachable",
        ),
        // Not a feedstock: can hold no grant; and pull_request_target reaches the GPU.
        e(
            "staged-recipes/.github/workflows/test-gpu.yml",
            8,
            "audit-fork-reachable",
        ),
        e(
            "staged-recipes/.github/workflows/test-gpu.yml",
            8,
            "audit-no-grant",
        ),
        // A resource tensorflow holds no grant of, behind the `--` suffix.
        e(
            "tensorflow-feedstock/.github/workflows/docs.yml",
            8,
            "audit-no-grant",
        ),
        // workflow_run after builds of forks' pull requests reaches the GPU.
        e(
            "tensorflow-feedstock/.github/workflows/gpu-smoke-test.yml",
            12,
            "audit-fork-reachable",
        ),
        // Asks for the GPU before its request was merged.
        e(
            "tinygrad-feedstock/.github/workflows/conda-build.yml",
            24,
            "audit-no-grant",
        ),
        e(
            "tinygrad-feedstock/recipe/conda_build_config.yaml",
            2,
            "audit-no-grant",
        ),
    ];
    assert_eq!(json_findings(&out), expected);
}

/// A resource with a time limit (`max_job_minutes: 120`): every job that runs on it and would
/// outlive the limit is reported, where it is fixed: no `timeout-minutes`, one above the limit,
/// or a feedstock's conda-forge.yml that lets conda-smithy give its build 360 minutes (or sets
/// 1,440). A job that stops itself within the limit is not; without the limit nothing is (the
/// test above).
#[test]
fn audit_reports_jobs_that_would_outlive_a_resources_time_limit() {
    let ledger = copy_of(&workspace().join("examples/conda-forge"));
    let resource = ledger
        .path()
        .join("resources/cirun-openstack-gpu-large.yml");
    let text = std::fs::read_to_string(&resource).unwrap();
    std::fs::write(&resource, format!("{text}max_job_minutes: 120\n")).unwrap();
    let projects = copy_of(&workspace().join(SAMPLES));
    write(
        projects.path(),
        "tinygrad-feedstock/.github/workflows/quick.yml",
        "on: push\njobs:\n  quick:\n    runs-on: cirun-openstack-gpu-large\n    timeout-minutes: 60\n    steps:\n      - run: nvidia-smi\n",
    );
    let out = gatehouse(&[
        "audit",
        ledger.path().to_str().unwrap(),
        "--projects",
        projects.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let prefix = format!("{}/", projects.path().display());
    let found: Vec<(String, u64, String)> = json_findings(&out)
        .into_iter()
        .filter(|(_, _, code, _)| code == "audit-job-timeout")
        .map(|(file, line, _, severity)| {
            (
                file.strip_prefix(&prefix).unwrap_or(&file).to_string(),
                line,
                severity,
            )
        })
        .collect();
    let w = |file: &str, line: u64| (file.to_string(), line, "warning".to_string());
    assert_eq!(
        found,
        vec![
            // timeout-minutes: 360, generated by conda-smithy ...
            w(
                "conda-smithy-feedstock/.github/workflows/conda-build.yml",
                15
            ),
            // ... because conda-forge.yml sets none for the build that asks for the GPU.
            w("conda-smithy-feedstock/recipe/conda_build_config.yaml", 2),
            // No timeout-minutes at all.
            w(
                "libmagma-feedstock/.github/workflows/gpu-tests-on-comment.yml",
                10
            ),
            w("libmagma-feedstock/recipe/conda_build_config.yaml", 2),
            // 1,440 minutes in the workflow and in conda-forge.yml.
            w(
                "pytorch-cpu-feedstock/.github/workflows/conda-build.yml",
                19
            ),
            w("pytorch-cpu-feedstock/conda-forge.yml", 11),
            w("staged-recipes/.github/workflows/test-gpu.yml", 8),
            w(
                "tensorflow-feedstock/.github/workflows/gpu-smoke-test.yml",
                12
            ),
            w("tinygrad-feedstock/.github/workflows/conda-build.yml", 15),
            w("tinygrad-feedstock/recipe/conda_build_config.yaml", 2),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn audit_speaks_human_github_and_sarif() {
    let args = ["audit", "examples/conda-forge", "--projects", SAMPLES];
    let human = gatehouse(&args);
    assert_eq!(human.status.code(), Some(1));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("error[audit-no-grant]: `cirun-openstack-cpu-medium--${{ github.run_id }}-docs` (routed as `cirun-openstack-cpu-medium`"),
        "{text}"
    );
    assert!(
        text.contains(
            "examples/audit-projects/tensorflow-feedstock/.github/workflows/docs.yml:8:14"
        ),
        "{text}"
    );
    assert!(text.trim_end().ends_with("10 errors, 3 warnings"), "{text}");

    let github = gatehouse(&[&args[..], &["--format", "github"]].concat());
    let lines: Vec<_> = String::from_utf8_lossy(&github.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 13);
    assert!(lines.iter().any(|l| l.starts_with(
        "::error file=examples/audit-projects/libmagma-feedstock/.github/workflows/gpu-tests-on-comment.yml,line=10,"
    )));

    let sarif = gatehouse(&[&args[..], &["--format", "sarif"]].concat());
    assert_eq!(sarif.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 13);
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
    }
    let no_grant = rules.iter().find(|r| r["id"] == "audit-no-grant").unwrap();
    assert_eq!(no_grant["properties"]["security-severity"], "8.0");
}

#[test]
fn a_clean_project_exits_zero_and_bad_arguments_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("pytorch-cpu-feedstock/.github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("conda-build.yml"),
        "on: [push, pull_request]\njobs:\n  b:\n    runs-on: [cirun-openstack-gpu-large, linux]\n",
    )
    .unwrap();
    let projects = dir.path().to_str().unwrap();
    let out = gatehouse(&["audit", "examples/conda-forge", "--projects", projects]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no problems found"));

    let missing = gatehouse(&["audit", "examples/conda-forge", "--projects", "no/such/dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/dir"));
    let nothing = gatehouse(&["audit", "examples/conda-forge"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to audit"));
}

/// Links, huge files, alias bombs, binary garbage and deep nesting: findings, never a crash,
/// and nothing outside the checkouts is read.
#[test]
fn hostile_checkouts_are_findings_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("secret.yml"),
        "on: pull_request_target\njobs:\n  x:\n    runs-on: cirun-openstack-gpu-large\n",
    )
    .unwrap();
    let wf = dir.path().join("evil-feedstock/.github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    std::fs::write(wf.join("bomb.yml"), bomb).unwrap();
    std::fs::write(wf.join("huge.yml"), "#".repeat(2 * 1024 * 1024)).unwrap();
    std::fs::write(wf.join("garbage.yml"), [0xff, 0xfe, 0x00, 0x9c]).unwrap();
    std::fs::write(wf.join("deep.yml"), "[".repeat(10_000)).unwrap();
    std::fs::write(wf.join("jobs-not-a-map.yml"), "on: push\njobs: 3\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.yml"), wf.join("link.yml")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-feedstock")).unwrap();

    let projects = dir.path().to_str().unwrap();
    let out = gatehouse(&[
        "audit",
        "examples/conda-forge",
        "--projects",
        projects,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<(String, String)> = json_findings(&out)
        .into_iter()
        .map(|(f, _, c, _)| (f.rsplit('/').next().unwrap().to_string(), c))
        .collect();
    let want: Vec<(String, String)> = [
        "bomb.yml",
        "deep.yml",
        "garbage.yml",
        "huge.yml",
        "link.yml",
        "linked-feedstock",
    ]
    .iter()
    .map(|f| (f.to_string(), "audit-unreadable".to_string()))
    .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(found_sorted, want, "{found:?}");
}

/// Grants with no allowed job in the last N days, read from a real SQLite database created
/// with the guard's own schema, without changing it.
#[test]
fn idle_grants_come_from_the_guards_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("guard.db");
    let url = format!("sqlite://{}", db.display());
    let repo = gatehouse_core::repo::load_dir(&workspace().join("examples/conda-forge")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The guard creates its tables; the rows are written here as the guard would.
        let store = gatehouse_server::Store::connect(&url).await.unwrap();
        drop(store);
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let mut n = 0;
        for file in &repo.grants {
            for g in &file.value.grants {
                let project = file.value.project.value.as_str();
                let resource = g.resource.value.as_str();
                let (outcome, at) = match (project, resource) {
                    // Only denied jobs: still idle.
                    ("conda-smithy", _) => ("deny", "2026-11-20T10:00:00Z"),
                    // The last allowed job is older than 90 days.
                    ("ray-packages", _) => ("allow", "2026-05-01T08:30:00.5Z"),
                    _ => ("allow", "2026-11-01T12:00:00Z"),
                };
                n += 1;
                sqlx::query(
                    "INSERT INTO decisions (delivery_id, job_id, run_id, repository, project, resource, outcome, decided_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(format!("d{n}"))
                .bind(n)
                .bind(n)
                .bind(format!("conda-forge/{project}-feedstock"))
                .bind(project)
                .bind(resource)
                .bind(outcome)
                .bind(at)
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        pool.close().await;
    });
    // One connection stays open from here to the end, as the running guard's would. sqlx's
    // `close()` returns before SQLite has closed the file (its worker threads finish that
    // later), and the last connection to close copies the WAL into the main file and deletes
    // it: without a connection held open, that copy could land while the bytes below are read,
    // or a checkpoint could give up because another one was under way, and the comparison
    // would fail although `audit` wrote nothing. With `keeper` open no other close checkpoints.
    let mut keeper = runtime
        .block_on(sqlx::SqliteConnection::connect(&url))
        .unwrap();
    // The WAL copied into the main file (retried while a closing connection still holds the
    // checkpoint lock), so that the main file's bytes are the whole content, and the counter
    // SQLite bumps whenever another connection commits.
    let mut settled = || {
        runtime.block_on(async {
            let mut attempts = 0;
            loop {
                let (busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(&mut keeper)
                        .await
                        .unwrap();
                if busy == 0 && log == copied {
                    break;
                }
                attempts += 1;
                assert!(
                    attempts < 100,
                    "the WAL cannot be checkpointed: {busy} {log} {copied}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let (version,): (i64,) = sqlx::query_as("PRAGMA data_version")
                .fetch_one(&mut keeper)
                .await
                .unwrap();
            let wal = std::fs::read(dir.path().join("guard.db-wal")).unwrap_or_default();
            (version, std::fs::read(&db).unwrap(), wal)
        })
    };
    let before = settled();
    assert!(before.2.is_empty(), "the WAL was not emptied");
    let out = gatehouse(&[
        "audit",
        "examples/conda-forge",
        "--db",
        &url,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = json_findings(&out);
    let w = |file: &str, line: u64| {
        (
            format!("examples/conda-forge/{file}"),
            line,
            "audit-idle-grant".to_string(),
            "warning".to_string(),
        )
    };
    assert_eq!(
        found,
        [
            w("grants/conda-smithy.yml", 3),
            w("grants/ray-packages.yml", 3)
        ]
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the last was on 2026-05-01"), "{text}");
    assert!(text.contains("the guard has recorded none"), "{text}");
    let after = settled();
    assert!(after.0 == before.0, "audit committed to the database");
    assert!(after.1 == before.1, "audit changed the database");
    drop(keeper);

    // A database that does not exist is not created.
    let absent = dir.path().join("absent.db");
    let out = gatehouse(&[
        "audit",
        "examples/conda-forge",
        "--db",
        &format!("sqlite://{}", absent.display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!absent.exists());
}

/// `audit --db` flags a project whose minutes this week are more than 4 times the median of
/// its previous 8 weeks (gatehouse.yml's `guard.outliers` defaults), from the guard's counted
/// minutes; a steady project is not flagged. On the guard's SQLite file and on PostgreSQL.
fn a_project_far_above_its_usual_week_is_flagged(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(async {
        let db = Db::new(backend).await;
        let store = gatehouse_server::Store::connect(&db.url).await.unwrap();
        // `--today 2026-11-29`, a Sunday: this week began on 2026-11-23.
        let mut rows = vec![
            ("pytorch-cpu", "2026-11-25".to_string(), 500),
            ("xformers", "2026-11-24".to_string(), 120),
        ];
        for k in 1..=8 {
            let monday = jiff::civil::date(2026, 11, 23) - jiff::Span::new().weeks(k);
            rows.push(("pytorch-cpu", monday.to_string(), 100));
            rows.push(("xformers", monday.to_string(), 100));
        }
        let writes = rows
            .into_iter()
            .enumerate()
            .map(
                |(n, (project, day, minutes))| gatehouse_server::store::Write::Minutes {
                    job_id: n as i64,
                    project: project.into(),
                    resource: "cirun-openstack-gpu-large".into(),
                    day,
                    minutes,
                },
            )
            .collect();
        store.commit(writes).await.unwrap();
        db
    });
    let out = gatehouse(&[
        "audit",
        "examples/conda-forge",
        "--db",
        &db.url,
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let flagged: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "audit-usage-outlier")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        flagged,
        [
            "`pytorch-cpu` used 500 minutes this week, more than 4 times its usual week (100 minutes, the median of its previous 8 weeks)"
        ],
        "{doc:#}"
    );
}

#[test]
fn a_project_far_above_its_usual_week_is_flagged_on_sqlite() {
    a_project_far_above_its_usual_week_is_flagged(Backend::Sqlite);
}

#[test]
fn a_project_far_above_its_usual_week_is_flagged_on_postgres() {
    a_project_far_above_its_usual_week_is_flagged(Backend::Postgres);
}

/// The loopback GitHub (`gatehouse-fake`), standing for Cirun too, failing every request, in
/// turn with 422, 403 and 500, with the request itself, headers included, in the answer's
/// `message`: a client that quoted answers without care would quote the token.
fn serve_echoing_failures(token: &str) -> String {
    let fake = support::FakeGitHub::with_token(token);
    fake.gate.echo_all(&[422, 403, 500]);
    support::serve_github(fake).0
}

#[test]
fn no_secret_reaches_the_output_when_github_fails() {
    let token = "ghp_S3cr3tTokenThatMustNeverBePrinted0001";
    let url = serve_echoing_failures(token);
    let cirun = "cirun-S3cr3tKeyThatMustNeverBePrinted0002";
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(workspace())
        .args([
            "audit",
            "examples/conda-forge",
            "--online",
            "--today",
            "2026-11-29",
        ])
        .env("NO_COLOR", "1")
        .env("GITHUB_TOKEN", token)
        .env("CIRUN_API_KEY", cirun)
        .env("GATEHOUSE_GITHUB_API", &url)
        .env("GATEHOUSE_CIRUN_API", &url)
        .env("GATEHOUSE_HTTP_MAX_WAIT_SECS", "0")
        .env("GATEHOUSE_HTTP_BACKOFF_MS", "1")
        .env("GATEHOUSE_HTTP_TIMEOUT_MS", "2000")
        .env("GATEHOUSE_LOG", "trace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The failures were reported, with the fake's messages quoted (the request line shows).
    assert!(
        stdout.contains("could not") && stdout.contains("GET /"),
        "the fake's failures were not reported:\n{stdout}\n{stderr}"
    );
    for secret in [token, cirun] {
        assert!(!stdout.contains(secret), "secret in stdout:\n{stdout}");
        assert!(!stderr.contains(secret), "secret in stderr:\n{stderr}");
    }
}

/// The router the guard and audit share, over the bundled example's compiled policy: any
/// labels route without panicking; case and a `--` suffix never change the route; generic labels
/// never add one.
mod routing {
    use super::workspace;
    use proptest::prelude::*;

    fn policy() -> &'static gatehouse_policy::Policy {
        static POLICY: std::sync::OnceLock<gatehouse_policy::Policy> = std::sync::OnceLock::new();
        POLICY.get_or_init(|| {
            let repo =
                gatehouse_core::repo::load_dir(&workspace().join("examples/conda-forge")).unwrap();
            gatehouse_policy::compile(&repo, jiff::civil::date(2026, 11, 29))
        })
    }

    fn managed() -> Vec<(String, String)> {
        let repo =
            gatehouse_core::repo::load_dir(&workspace().join("examples/conda-forge")).unwrap();
        repo.resources
            .iter()
            .flat_map(|r| {
                r.value
                    .labels
                    .iter()
                    .map(move |l| (l.value.clone(), r.value.name.value.clone()))
            })
            .collect()
    }

    fn flip_case(s: &str, mask: u64) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn routing_never_panics_and_agrees_with_itself(
            noise in proptest::collection::vec("\\PC{0,40}", 0..6),
            pick in 0usize..64,
            mask in any::<u64>(),
            suffix in "[ -~]{0,30}",
        ) {
            let policy = policy();
            let labels = managed();
            let name = |r: Result<Option<gatehouse_policy::ResourceId>, _>| match r {
                Ok(Some(id)) => Ok(Some(policy.resource(id).name.to_string())),
                Ok(None) => Ok(None),
                Err((a, b)) => Err((policy.resource(a).name.to_string(), policy.resource(b).name.to_string())),
            };
            // Any text: no panic, and case does not matter.
            let plain = name(policy.route(noise.iter().map(String::as_str)));
            let flipped: Vec<String> = noise.iter().map(|l| flip_case(l, mask)).collect();
            prop_assert_eq!(&plain, &name(policy.route(flipped.iter().map(String::as_str))));
            // Generic labels add nothing.
            let mut generic = noise.clone();
            generic.extend(["self-hosted", "linux", "x64"].map(String::from));
            prop_assert_eq!(&plain, &name(policy.route(generic.iter().map(String::as_str))));
            // A managed label, in any case, with any `--` suffix, routes to its resource.
            let (label, resource) = &labels[pick % labels.len()];
            let disguised = format!("{}--{suffix}", flip_case(label, mask));
            prop_assert_eq!(name(policy.route([disguised.as_str()])), Ok(Some(resource.clone())));
        }
    }
}

/// The messages of the findings with `code`.
fn with_code<'a>(found: &'a [(String, String)], code: &str) -> Vec<&'a str> {
    found
        .iter()
        .filter(|(c, _)| c == code)
        .map(|(_, m)| m.as_str())
        .collect()
}

/// `audit --online` against the stateful loopback fakes, after `apply` has brought every
/// provider in line: a repository an owner added to a runner group by hand, and one removed
/// from the app installation by hand, are drift; a runner group that allows public
/// repositories and holds a repository without a grant is reported, one whose repositories all
/// hold grants is not.
#[test]
fn audit_online_reports_hand_edits_and_public_runner_groups() {
    use support::world::{GROUP_ID, INSTALLATION, world};
    let w = world(2);
    let applied = w.run(&["apply", "--confirm"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    assert_eq!(w.holds("b00"), (true, true, true));
    w.github.gate.reset_calls();
    w.cirun.gate.reset_calls();
    let audit = || {
        let run = w.run(&["audit", "--online", "--format", "json"]);
        let doc: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"));
        let found: Vec<(String, String)> = doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["code"] != "audit-unverified")
            .map(|d| {
                (
                    d["code"].as_str().unwrap().to_string(),
                    d["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (run, found)
    };

    // In line with the ledger: nothing to report.
    let (run, found) = audit();
    assert_eq!(found, [], "{run}");
    assert_eq!(run.code, Some(0), "{run}");

    // Hand edits behind gatehouse's back.
    w.github
        .add_to_runner_group("gpu", "conda-forge/intruder-feedstock");
    {
        let mut s = w.github.state.lock().unwrap();
        let held = s.installations.get_mut(&INSTALLATION).unwrap();
        let first = *held.iter().next().unwrap();
        held.remove(&first);
    }
    let (run, found) = audit();
    assert_eq!(run.code, Some(1), "{run}");
    let drift = with_code(&found, "audit-drift");
    assert_eq!(drift.len(), 2, "{run}");
    assert!(
        drift
            .iter()
            .any(|m| m.contains("`gpu-pool`") && m.contains("intruder")),
        "{run}"
    );
    assert!(
        drift
            .iter()
            .any(|m| m.contains("`namespace`") && m.contains("b00")),
        "{run}"
    );
    assert!(
        !found
            .iter()
            .any(|(code, _)| code == "audit-public-runner-group"),
        "{run}"
    );

    // The same groups, now allowing public repositories: only the repository without a grant
    // is reported, in the group that holds it.
    {
        let mut s = w.github.state.lock().unwrap();
        s.public_groups.insert(GROUP_ID);
        s.public_groups.insert(GROUP_ID + 1);
    }
    w.github
        .add_to_runner_group("other", "conda-forge/b01-feedstock");
    let (run, found) = audit();
    let public = with_code(&found, "audit-public-runner-group");
    assert_eq!(public.len(), 2, "{run}");
    assert!(
        public
            .iter()
            .any(|m| m.contains("`gpu`") && m.contains("conda-forge/intruder-feedstock")),
        "{run}"
    );
    // b01 holds gpu-runner, but `other` serves no resource: no grant covers it there.
    assert!(
        public
            .iter()
            .any(|m| m.contains("`other`") && m.contains("conda-forge/b01-feedstock")),
        "{run}"
    );
    // Auditing wrote nothing at any provider.
    assert_eq!(w.mutations(), 0, "{run}");
}

/// `dir` copied to a fresh temporary folder.
fn copy_of(dir: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    support::fs::copy_dir(dir, out.path());
    out
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// conda-forge/pytorch-cpu-feedstock as it builds on Namespace (2026-06): an excerpt of its
/// generated `.github/workflows/conda-build.yml`, its `conda-forge.yml` triggers and its
/// `recipe/conda_build_config.yaml` labels.
const PYTORCH_WORKFLOW: &str = "\
name: Build conda package
on:
  push:

  pull_request:

jobs:
  build:
    name: ${{ matrix.CONFIG }}
    runs-on: ${{ matrix.runs_on }}
    timeout-minutes: 1440
    strategy:
      fail-fast: false
      max-parallel: 50
      matrix:
        include:
          - CONFIG: linux_64_blas_implgenericc_stdlib_version2.17channel_targetsconda-forge_maincuda_compiler_version12.9is_rcFalse
            DOCKER_IMAGE: quay.io/condaforge/linux-anvil-x86_64:alma10
            os: ubuntu
            runs_on: ['namespace-profile-16cpu-on-linux-64;container.privileged=true;container.mount-scratch=true']
          - CONFIG: osx_arm64_channel_targetsconda-forge_mainis_rcFalse
            os: macos
            runs_on: ['namespace-profile-12cpu-on-osx-arm64']
          - CONFIG: win_64_channel_targetsconda-forge_maincuda_compiler_version13.0is_rcFalse
            os: windows
            runs_on: ['namespace-profile-16cpu-4x-on-windows-64']
";
const PYTORCH_CONFIG: &str =
    "github_actions:\n  timeout_minutes: 1440\n  triggers:\n  - push\n  - pull_request\n";
const PYTORCH_BUILD_CONFIG: &str = "\
# https://github.com/conda-forge/.cirun
github_actions_labels:
- namespace-profile-16cpu-on-linux-64       # [linux]
- namespace-profile-12cpu-on-osx-arm64      # [osx]
- namespace-profile-16cpu-4x-on-windows-64  # [win]
";

/// The example with Namespace served by pattern (`namespace-profile-*`) and held by pytorch-cpu
/// without pull requests, and a runner group: audit routes Namespace's `;` labels, its
/// patterns and `runs-on: { group: ... }` as the guard does.
#[test]
fn audit_routes_namespace_labels_patterns_and_groups_like_the_guard() {
    let access = copy_of(&workspace().join("examples/conda-forge"));
    let root = access.path();
    write(
        root,
        "resources/namespace.yml",
        "name: namespace\nprovider: namespace\nlabels: ['namespace-profile-*']\nmax_duration: 1y\n",
    );
    std::fs::remove_file(root.join("requests/pytorch-cpu-namespace.yml")).unwrap();
    let grants = std::fs::read_to_string(root.join("grants/pytorch-cpu.yml")).unwrap();
    write(
        root,
        "grants/pytorch-cpu.yml",
        &format!(
            "{grants}  - resource: namespace\n    granted: 2026-05-01\n    expires: 2027-05-01\n"
        ),
    );
    let settings = std::fs::read_to_string(root.join("gatehouse.yml")).unwrap();
    write(
        root,
        "gatehouse.yml",
        &format!("{settings}  gpu-pool: {{ kind: runner-group, group: gpu }}\n"),
    );
    write(
        root,
        "resources/gpu-pool.yml",
        "name: gpu-pool\nprovider: gpu-pool\nmax_duration: 1y\n",
    );
    let check = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", root.to_str().unwrap(), "--today", "2026-11-29"])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let projects = tempfile::tempdir().unwrap();
    let p = projects.path();
    for project in ["pytorch-cpu-feedstock", "tensorflow-feedstock"] {
        write(
            p,
            &format!("{project}/.github/workflows/conda-build.yml"),
            PYTORCH_WORKFLOW,
        );
        write(p, &format!("{project}/conda-forge.yml"), PYTORCH_CONFIG);
        write(
            p,
            &format!("{project}/recipe/conda_build_config.yaml"),
            PYTORCH_BUILD_CONFIG,
        );
    }
    write(
        p,
        "tensorflow-feedstock/.github/workflows/gpu.yml",
        "on: push\njobs:\n  test:\n    runs-on: { group: GPU }\n",
    );
    let out = gatehouse(&[
        "audit",
        root.to_str().unwrap(),
        "--projects",
        p.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let found: Vec<(String, u64, String)> = json_findings(&out)
        .into_iter()
        .map(|(f, line, code, _)| {
            (
                f.strip_prefix(p.to_str().unwrap()).unwrap().to_string(),
                line,
                code,
            )
        })
        .collect();
    let f = |file: &str, line: u64, code: &str| (file.to_string(), line, code.to_string());
    let wf = "/pytorch-cpu-feedstock/.github/workflows/conda-build.yml";
    let cfg = "/pytorch-cpu-feedstock/recipe/conda_build_config.yaml";
    let tf_wf = "/tensorflow-feedstock/.github/workflows/conda-build.yml";
    let tf_cfg = "/tensorflow-feedstock/recipe/conda_build_config.yaml";
    assert_eq!(
        found,
        [
            // pytorch-cpu holds Namespace, but not for the pull requests it builds.
            f(wf, 20, "audit-pr-not-granted"),
            f(wf, 23, "audit-pr-not-granted"),
            f(wf, 26, "audit-pr-not-granted"),
            f(cfg, 3, "audit-pr-not-granted"),
            f(cfg, 4, "audit-pr-not-granted"),
            f(cfg, 5, "audit-pr-not-granted"),
            f(tf_wf, 20, "audit-no-grant"),
            f(tf_wf, 23, "audit-no-grant"),
            f(tf_wf, 26, "audit-no-grant"),
            // The runner group serves `gpu-pool`, which tensorflow does not hold.
            f(
                "/tensorflow-feedstock/.github/workflows/gpu.yml",
                4,
                "audit-no-grant"
            ),
            f(tf_cfg, 3, "audit-no-grant"),
            f(tf_cfg, 4, "audit-no-grant"),
            f(tf_cfg, 5, "audit-no-grant"),
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An organisation that lets some accounts commit requests with no pull request says so in
/// gatehouse.yml (`accept_unreviewed`); `audit` lists every such account.
#[test]
fn audit_lists_the_accounts_whose_requests_go_unreviewed() {
    let root = tempfile::tempdir().unwrap();
    let projects = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "gatehouse.yml",
        "org: cf\nreviewers: { teams: [core] }\naccept_unreviewed:\n  - { github: admin, id: 42 }\n",
    );
    let out = gatehouse(&[
        "audit",
        "--format",
        "json",
        "--projects",
        projects.path().to_str().unwrap(),
        root.path().to_str().unwrap(),
    ]);
    let found = json_findings(&out);
    assert!(
        found
            .iter()
            .any(|(file, line, code, _)| file.ends_with("gatehouse.yml")
                && *line == 4
                && code == "accept-unreviewed"),
        "{found:?}"
    );
}

/// `audit --online` reads Cirun's runner catalogue (`.cirun.global.yml` in the provider's
/// `access_repo`, here conda-forge's real one) and reports every catalogue runner that no
/// resource of the provider names, at its line: a runner nobody's grant governs.
#[test]
fn audit_online_reports_catalogue_runners_no_resource_names() {
    const CATALOGUE: &str = include_str!("../../../../fixtures/conda-forge/cirun-global.yml");
    let w = support::world::world(1);
    let applied = w.run(&["apply", "--confirm"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    w.github
        .set_file("conda-forge/.cirun", ".cirun.global.yml", CATALOGUE);
    let unnamed = || {
        let run = w.run(&["audit", "--online", "--format", "json"]);
        let doc: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"));
        let found: Vec<String> = doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["code"] == "audit-cirun-unnamed-runner")
            .map(|d| d["message"].as_str().unwrap().to_string())
            .collect();
        (run, found)
    };
    // The world's one Cirun resource (`cirun-gpu`) names none of conda-forge's 11 runners.
    let (run, found) = unnamed();
    assert_eq!(found.len(), 11, "{run}");
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        found
            .iter()
            .any(|m| m.contains("`cirun-openstack-gpu-xlarge`")
                && m.contains("conda-forge/.cirun/.cirun.global.yml, line 14")),
        "{run}"
    );
    // A resource named after a runner governs it: no longer reported.
    support::world::write(
        w.path(),
        "resources/cirun-openstack-gpu-xlarge.yml",
        "name: cirun-openstack-gpu-xlarge\nprovider: cirun\nlabels: [cirun-openstack-gpu-xlarge]\n",
    );
    let (run, found) = unnamed();
    assert_eq!(found.len(), 10, "{run}");
    assert!(
        !found
            .iter()
            .any(|m| m.contains("`cirun-openstack-gpu-xlarge`")),
        "{run}"
    );
    // A catalogue Cirun cannot read is said, not passed over.
    w.github
        .set_file("conda-forge/.cirun", ".cirun.global.yml", "runners: 3\n");
    let run = w.run(&["audit", "--online", "--format", "json"]);
    assert!(
        run.stdout.contains("audit-unverified")
            && run
                .stdout
                .contains("could not read Cirun's runner catalogue"),
        "{run}"
    );
}
