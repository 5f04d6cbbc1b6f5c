//! `gatehouse site` end to end: the files it writes, how it replaces an older site, the history
//! and pull-request links it reads from git, and the pages in a real browser (Debian's chromium,
//! driven by tests/browser/site.mjs) against a loopback copy of the site and the live guard.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use crate::db::{Backend, Db};
use crate::support::fs;

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_TODAY", "2026-11-29")
        .output()
        .unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge")
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn site_of(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "site",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    gatehouse(&args)
}

#[test]
fn site_writes_pages_and_json_for_the_example_and_the_same_bytes_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for out in [&a, &b] {
        let o = site_of(&example(), out, &["--no-history"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("17 resources"));
    }
    let files = tree(&a);
    for f in [
        "index.html",
        "requests.html",
        "resources/cirun-openstack-gpu-large.html",
        "projects/pytorch-cpu.html",
        "v1/resources.json",
        "v1/grants.json",
        "v1/requests.json",
        "v1/projects.json",
        "v1/projects/pytorch-cpu.json",
        "v1/tos-users.json",
        "assets/site.css",
        "assets/search.js",
    ] {
        assert!(files.contains_key(f), "{f} missing: {:?}", files.keys());
    }
    assert_eq!(files, tree(&b), "two runs give byte-identical files");
    let grants: serde_json::Value = serde_json::from_slice(&files["v1/grants.json"]).unwrap();
    assert_eq!(grants["version"], 1);
    assert_eq!(grants["date"], "2026-11-29");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "a published folder is readable by everyone");
    }
}

#[test]
fn a_second_run_replaces_the_old_site_whole_and_a_foreign_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("public");
    assert!(
        site_of(&example(), &out, &["--no-history"])
            .status
            .success()
    );
    // A page of a project that no longer holds anything must not linger.
    std::fs::write(out.join("projects/revoked-long-ago.html"), "stale").unwrap();
    assert!(
        site_of(&example(), &out, &["--no-history"])
            .status
            .success()
    );
    assert!(!out.join("projects/revoked-long-ago.html").exists());
    assert!(out.join("index.html").exists());
    // Nothing is left behind beside it.
    let siblings: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");

    let foreign = tmp.path().join("docs");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.md"), "mine").unwrap();
    let o = site_of(&example(), &foreign, &["--no-history"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gatehouse did not write"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.md")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);

    let o = site_of(&tmp.path().join("missing"), &tmp.path().join("x"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
}

fn git(dir: &Path, args: &[&str], date: &str) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Carol",
            "-c",
            "user.email=c@example.org",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn project_pages_show_the_git_history_and_requests_link_their_pull_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    git(d, &["init", "-q"], "2026-01-01T00:00:00Z");
    write(
        d,
        "gatehouse.yml",
        "org: acme\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
    );
    write(
        d,
        "resources/gpu.yml",
        "name: gpu\nprovider: cirun\nlabels: [gpu]\n",
    );
    write(
        d,
        "grants/alpha.yml",
        "project: alpha\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    );
    git(d, &["add", "."], "2026-03-01T10:00:00Z");
    git(
        d,
        &["commit", "-q", "-m", "Grant gpu to alpha (#5)"],
        "2026-03-01T10:00:00Z",
    );
    write(
        d,
        "grants/alpha.yml",
        "project: alpha\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-06-01\n",
    );
    write(
        d,
        "requests/beta.yml",
        "action: grant\nprojects: [beta]\nresources: [gpu]\n",
    );
    git(d, &["add", "."], "2026-04-01T10:00:00Z");
    git(
        d,
        &["commit", "-q", "-m", "Merge pull request #9 from beta/gpu"],
        "2026-04-01T10:00:00Z",
    );
    write(
        d,
        "grants/gamma.yml",
        "project: gamma\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n",
    );
    git(d, &["add", "."], "2026-05-01T10:00:00Z");
    git(
        d,
        &["commit", "-q", "-m", "Grant gpu to gamma"],
        "2026-05-01T10:00:00Z",
    );
    git(d, &["rm", "-q", "grants/gamma.yml"], "2026-06-01T10:00:00Z");
    git(
        d,
        &["commit", "-q", "-m", "Revoke gamma"],
        "2026-06-01T10:00:00Z",
    );
    let out = d.join("public");
    let o = site_of(d, &out, &["--repo-url", "https://github.com/acme/access"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let alpha = std::fs::read_to_string(out.join("projects/alpha.html")).unwrap();
    let history = &alpha[alpha.find("id=\"history-table\"").expect("a history table")..];
    assert!(
        history.contains("<td class=\"date\">2026-03-01</td><td>granted</td>"),
        "{history}"
    );
    assert!(
        history.contains("<td class=\"date\">2026-04-01</td><td>changed</td>"),
        "{history}"
    );
    assert!(history.contains("until 2027-06-01"));
    assert!(history.contains("Carol: Grant gpu to alpha (#5)"));
    let requests = std::fs::read_to_string(out.join("requests.html")).unwrap();
    assert!(
        requests
            .contains("<a href=\"https://github.com/acme/access/pull/9\">requests/beta.yml</a>"),
        "{requests}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("v1/projects/alpha.json")).unwrap())
            .unwrap();
    assert_eq!(json["history"].as_array().unwrap().len(), 2);
    // The site reads every project's history in one pass; it is what `gatehouse history` says.
    let o = gatehouse(&[
        "history",
        "alpha",
        "--dir",
        d.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["history"], one);
    // The site folder inside the checkout is not part of the ledger.
    assert!(!alpha.contains("public"));
}

// ---- the browser test ----

/// Serves the files under `root` on loopback (GET only; no path leaves `root`).
async fn serve_dir(root: PathBuf) -> SocketAddr {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let root = root.clone();
        async move {
            let mut rel = uri.path().trim_start_matches('/').to_string();
            if rel.is_empty() || rel.ends_with('/') {
                rel.push_str("index.html");
            }
            if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                return StatusCode::NOT_FOUND.into_response();
            }
            let ct = match rel.rsplit_once('.').map(|x| x.1) {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css",
                Some("js") => "text/javascript",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            match tokio::fs::read(root.join(&rel)).await {
                Ok(bytes) => ([(header::CONTENT_TYPE, ct)], bytes).into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A sponsor's minutes for the example's large GPU runners, for the pool pages.
const POOL: &str = "sponsor: Example Cloud\nurl: https://cloud.example.org/open-source\n\
minutes: 20000\nstart: 2026-09-01\nend: 2027-03-31\nresources: [cirun-openstack-gpu-large]\n";

/// A copy of the example with a sponsor pool (`pools/gpu-credit.yml`): the example has none,
/// since no real sponsor's figures exist to put there.
fn example_with_a_pool(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    fs::copy_dir(&example(), &repo);
    write(&repo, "pools/gpu-credit.yml", POOL);
    repo
}

/// `gatehouse serve`'s router on `repo`, with twelve weeks of minutes in its store at `db`
/// (those on the large GPU runners paid from the pool).
async fn live_guard(repo: &Path, db: &str) -> SocketAddr {
    use gatehouse_server::store::{CreditWrite, Write};
    use gatehouse_server::{AppState, Secret, ServerConfig, router};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ServerConfig::new(
        repo.to_path_buf(),
        db.to_string(),
        Secret::new("browser-test"),
    );
    config.watch_interval = None;
    let state: Arc<AppState> = AppState::new(config).await.unwrap();
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let mut writes = Vec::new();
    for week in 0..12i64 {
        let day = today
            .checked_sub(jiff::Span::new().weeks(week))
            .unwrap()
            .to_string();
        for (i, (project, resource)) in [
            ("pytorch-cpu", "cirun-openstack-gpu-large"),
            ("xformers", "cirun-openstack-gpu-large"),
            ("pytorch-cpu", "cirun-openstack-cpu-large"),
        ]
        .into_iter()
        .enumerate()
        {
            let minutes = minutes_of(week, i as i64);
            writes.push(Write::Minutes {
                job_id: week * 10 + i as i64,
                project: project.into(),
                resource: resource.into(),
                day: day.clone(),
                minutes,
            });
            if resource == "cirun-openstack-gpu-large" && day.as_str() >= "2026-09-01" {
                writes.push(Write::Credit(CreditWrite::Settle {
                    job_id: week * 10 + i as i64,
                    holder: String::new(),
                    project: Some(project.into()),
                    resource: resource.into(),
                    day: day.clone(),
                    minutes,
                    fallback: Some(("gpu-credit".into(), 1)),
                }));
            }
        }
    }
    state.store().commit(writes).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The minutes [`live_guard`] counts for job `i` of the week `week` weeks ago.
fn minutes_of(week: i64, i: i64) -> i64 {
    60 + 25 * ((week * 7 + i * 3) % 11)
}

/// The minutes of each row of the table `spend-table` that names a resource: (resource,
/// minutes).
fn spend_rows(html: &str) -> Vec<(String, i64)> {
    let start = html
        .find("<table id=\"spend-table\"")
        .expect("a spend table");
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split("<tr")
        .filter_map(|row| {
            let at = row.find("resources/")? + "resources/".len();
            let resource = row[at..row[at..].find(".html")? + at].to_string();
            let cell = row.find("<td class=\"num\">")? + "<td class=\"num\">".len();
            let minutes = row[cell..cell + row[cell..].find('<')?].parse().ok()?;
            Some((resource, minutes))
        })
        .collect()
}

/// `gatehouse site --db` shows minutes and cost by month: the organisation's on the index,
/// each project's on its page, every counted minute of the last 12 months once.
async fn the_static_site_shows_minutes_by_month_of_each_project_from_the_database(
    backend: Backend,
) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = example_with_a_pool(tmp.path());
    let db = Db::new(backend).await;
    live_guard(&repo, &db.url).await;
    let out = tmp.path().join("public");
    let o = site_of(&repo, &out, &["--db", &db.url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let total = |rows: &[(String, i64)], resource: &str| -> i64 {
        rows.iter()
            .filter(|(r, _)| r == resource)
            .map(|(_, m)| m)
            .sum()
    };
    let gpu = "cirun-openstack-gpu-large";
    let cpu = "cirun-openstack-cpu-large";
    let weeks = |i| (0..12).map(|w| minutes_of(w, i)).sum::<i64>();
    let pytorch = spend_rows(&read("projects/pytorch-cpu.html"));
    assert_eq!(
        (total(&pytorch, gpu), total(&pytorch, cpu)),
        (weeks(0), weeks(2))
    );
    let xformers = spend_rows(&read("projects/xformers.html"));
    assert_eq!(
        (total(&xformers, gpu), total(&xformers, cpu)),
        (weeks(1), 0)
    );
    let org = spend_rows(&read("index.html"));
    assert_eq!(
        (total(&org, gpu), total(&org, cpu)),
        (weeks(0) + weeks(1), weeks(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_site_shows_minutes_by_month_from_sqlite() {
    the_static_site_shows_minutes_by_month_of_each_project_from_the_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_site_shows_minutes_by_month_from_postgres() {
    the_static_site_shows_minutes_by_month_of_each_project_from_the_database(Backend::Postgres)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_works_in_a_real_browser() {
    if std::env::var("GATEHOUSE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "\n!!!!! SKIPPED the browser test (GATEHOUSE_SKIP_BROWSER=1): the pages were NOT checked in chromium !!!!!\n"
        );
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let browser_dir = workspace.join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "chromium is not at {chromium}: run scripts/ensure-chromium.sh (or set GATEHOUSE_SKIP_BROWSER=1 to skip this test knowingly)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "tests/browser has no node_modules: run scripts/ensure-chromium.sh (it runs `npm ci` there)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let repo = example_with_a_pool(tmp.path());
    let db = format!("sqlite://{}", tmp.path().join("guard.db").display());
    let live_addr = live_guard(&repo, &db).await;
    // The static site reads the same store: usage and the pool's pages.
    let out = tmp.path().join("public");
    let o = site_of(&repo, &out, &["--db", &db]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(", 1 sponsor pools"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let static_addr = serve_dir(out).await;
    let artifacts = workspace.join("target/browser-artifacts");
    let mut node = Command::new("node");
    node.current_dir(&browser_dir)
        .arg("site.mjs")
        .arg(format!("http://{static_addr}"))
        .arg(format!("http://{live_addr}"))
        .arg(&artifacts)
        .env("CHROMIUM", &chromium);
    // The servers run on this runtime's threads while node drives the browser.
    let o = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs (scripts/ensure-chromium.sh installs Node.js)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stdout}");
    assert!(
        o.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for shot in [
        "index.png",
        "search.png",
        "resource-phone.png",
        "dashboard.png",
        "pool.png",
        "pool-live-phone.png",
    ] {
        let meta = std::fs::metadata(artifacts.join(shot)).unwrap();
        assert!(meta.len() > 1000, "{shot} is a real screenshot");
    }
}
