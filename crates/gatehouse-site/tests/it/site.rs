//! The rendered site, read as a visitor and a bot would: every grant on its pages, repository
//! text escaped, JSON in the documented shape (docs/API.md), the same bytes every time.

use std::collections::BTreeMap;
use std::path::Path;

use gatehouse_core::Repo;
use gatehouse_core::repo::load_dir;
use gatehouse_site::queue::{HeldJob, Queue, QueueRow, RecentJob};
use gatehouse_site::usage::{Spend, WEEKS, weekly};
use gatehouse_site::{
    ApprovedJobShown, Dashboard, DashboardPage, DeniedJob, HistoryEvent, Ledger, LedgerInputs,
    ProjectResourceUsage, ProjectUsage, ResourceUsage, RunApprovalShown, Site, SiteOptions,
    render_dashboard, render_project_usage, render_resource_usage, render_site,
};
use jiff::civil::{Date, date};
use serde::Deserialize;

const TODAY: Date = date(2026, 11, 29);

fn example() -> Repo {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    load_dir(&dir).expect("the bundled example loads")
}

fn render(repo: &Repo, inputs: &LedgerInputs) -> (Ledger, Site) {
    let ledger = Ledger::build(repo, TODAY, inputs);
    let site = render_site(&ledger, &SiteOptions::default()).expect("renders");
    (ledger, site)
}

fn page<'a>(site: &'a Site, path: &str) -> &'a str {
    let bytes = site
        .files
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the site: {:?}", site.files.keys()));
    std::str::from_utf8(bytes).expect("UTF-8")
}

/// The rows of the table with this id, as the text between `<tr` and `</tr>`.
fn rows<'a>(html: &'a str, table_id: &str) -> Vec<&'a str> {
    let start = html
        .find(&format!("<table id=\"{table_id}\""))
        .unwrap_or_else(|| panic!("no table {table_id}"));
    let body = &html[start..];
    let body = &body[body.find("<tbody>").unwrap()..body.find("</tbody>").unwrap()];
    body.split("<tr").skip(1).collect()
}

const SETTINGS: &str = "org: acme\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n";

fn small_repo(extra: &[(&str, String)]) -> Repo {
    let mut files: Vec<(String, String)> = vec![
        ("gatehouse.yml".into(), SETTINGS.into()),
        (
            "resources/gpu.yml".into(),
            "name: gpu\nprovider: cirun\nlabels: [gpu]\ndescription: one V100\nspecs: { cpu: 4, gpu: 1x V100 }\neligibility: CUDA tests\nmax_duration: 1y\nquota: { project_minutes_per_month: 3000, minutes_per_month: 20000 }\n".into(),
        ),
        (
            "grants/alpha.yml".into(),
            "project: alpha\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-03-01\n    expires: 2026-12-09\n    request: https://github.com/acme/admin-requests/pull/7\n    approved_by: [carol]\n".into(),
        ),
        (
            "grants/beta.yml".into(),
            "project: beta\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n    request: https://github.com/acme/admin-requests/pull/8\n    approved_by: [dave, carol]\n".into(),
        ),
        (
            "requests/gamma.yml".into(),
            "action: grant\nprojects: [gamma]\nresources: [gpu]\nreason: tests need CUDA\n".into(),
        ),
    ];
    for (p, c) in extra {
        files.retain(|(q, _)| q != p);
        files.push((p.to_string(), c.clone()));
    }
    Repo::from_sources(files)
}

#[test]
fn every_grant_appears_on_its_resource_page_and_its_project_page() {
    let repo = example();
    let (ledger, site) = render(&repo, &LedgerInputs::default());
    let total: usize = repo.grants.iter().map(|f| f.value.grants.len()).sum();
    assert!(total > 20, "the example holds grants");
    assert_eq!(ledger.grants.len(), total);
    for f in &repo.grants {
        let project = f.value.project.as_str();
        let project_page = page(&site, &format!("projects/{project}.html"));
        let project_rows = rows(project_page, "grant-table");
        assert_eq!(project_rows.len(), f.value.grants.len(), "{project}");
        for g in &f.value.grants {
            let resource = g.resource.as_str();
            let resource_page = page(&site, &format!("resources/{resource}.html"));
            let link = format!("<a href=\"../projects/{project}.html\">{project}</a>");
            let row = rows(resource_page, "grant-table")
                .into_iter()
                .find(|r| r.contains(&link))
                .unwrap_or_else(|| panic!("{project} is not on {resource}'s page"));
            assert!(row.contains(&g.granted.value.to_string()), "{row}");
            if let Some(e) = &g.expires {
                assert!(row.contains(&e.value.to_string()), "{row}");
            }
            let link = format!("<a href=\"../resources/{resource}.html\">{resource}</a>");
            assert!(
                project_rows.iter().any(|r| r.contains(&link)),
                "{resource} is not on {project}'s page"
            );
        }
        // And in the project's JSON.
        let json: serde_json::Value =
            serde_json::from_slice(&site.files[&format!("v1/projects/{project}.json")]).unwrap();
        assert_eq!(
            json["grants"].as_array().unwrap().len(),
            f.value.grants.len()
        );
    }
    // The index lists every resource and links every project.
    let index = page(&site, "index.html");
    assert_eq!(rows(index, "resource-table").len(), repo.resources.len());
    for f in &repo.grants {
        assert!(index.contains(&format!("href=\"projects/{}.html\"", f.value.project.value)));
    }
}

#[test]
fn the_index_shows_each_resources_facts_and_counts() {
    let (_, site) = render(&small_repo(&[]), &LedgerInputs::default());
    let index = page(&site, "index.html");
    let row = rows(index, "resource-table")[0];
    for needle in [
        "<a href=\"resources/gpu.html\">gpu</a>",
        "one V100",
        "vCPU 4, GPU 1x V100",
        "cirun",
        "CUDA tests",
        "<td class=\"num\">2</td>",
        "20000 min/month in all; 3000 min/month per project",
        "<a href=\"requests.html\">1</a>",
    ] {
        assert!(row.contains(needle), "{needle} missing from {row}");
    }
    assert!(index.contains("<html lang=\"en\">"));
    assert!(index.contains("name=\"viewport\""));
    assert!(index.contains("<th scope=\"col\">Resource</th>"));
}

#[test]
fn grants_expiring_soon_are_highlighted_in_words_too() {
    let (ledger, site) = render(&small_repo(&[]), &LedgerInputs::default());
    let alpha = ledger.grants.iter().find(|g| g.project == "alpha").unwrap();
    assert_eq!(alpha.status, "expiring"); // 2026-12-09 is 10 days after TODAY
    let beta = ledger.grants.iter().find(|g| g.project == "beta").unwrap();
    assert_eq!(beta.status, "active");
    let rows = rows(page(&site, "resources/gpu.html"), "grant-table");
    let alpha_row = rows.iter().find(|r| r.contains(">alpha<")).unwrap();
    assert!(alpha_row.contains(
        "<mark class=\"expiring\">2026-12-09 <span class=\"note\">(expires soon)</span></mark>"
    ));
    assert!(alpha_row.contains("<td>yes</td>"), "pull requests allowed");
    assert!(alpha_row.contains("admin-requests#7"));
    let beta_row = rows.iter().find(|r| r.contains(">beta<")).unwrap();
    assert!(!beta_row.contains("expiring"));
    assert!(beta_row.contains("<td>no</td>"));
    assert!(
        beta_row.contains("carol, dave"),
        "approvers sorted: {beta_row}"
    );
}

#[test]
fn text_from_the_repository_is_escaped_and_script_links_are_not_links() {
    let evil = "<script>alert(1)</script> & \"quoted\"";
    let repo = small_repo(&[
        (
            "resources/gpu.yml",
            format!(
                "name: gpu\nprovider: cirun\nlabels: [gpu]\ndescription: '{evil}'\neligibility: 'A & B <b>bold</b>'\nspecs: {{ gpu: '<img src=x onerror=alert(2)>' }}\n"
            ),
        ),
        (
            "grants/alpha.yml",
            "project: alpha\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    request: 'javascript:alert(3)'\n    approved_by: ['<i>mallory</i>']\n".into(),
        ),
        (
            "requests/gamma.yml",
            "action: grant\nprojects: [gamma]\nresources: [gpu]\nreason: '</td><script>alert(4)</script>'\n".into(),
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    let mut history = BTreeMap::new();
    history.insert(
        "alpha".to_string(),
        vec![HistoryEvent {
            date: "2026-03-01".into(),
            change: "granted".into(),
            resource: "gpu".into(),
            details: "granted 2026-03-01; <script>alert(5)</script>".into(),
            commit: "abc".into(),
            author: "Eve <eve@example.org>".into(),
            subject: "x & y".into(),
        }],
    );
    let (_, site) = render(
        &repo,
        &LedgerInputs {
            history: Some(history),
            ..Default::default()
        },
    );
    for (path, bytes) in &site.files {
        if !path.ends_with(".html") {
            continue;
        }
        let html = std::str::from_utf8(bytes).unwrap();
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(!html.contains("<i>mallory"), "{path}");
        assert!(!html.contains("<b>bold"), "{path}");
        assert!(!html.contains("href=\"javascript:"), "{path}");
    }
    let resource = page(&site, "resources/gpu.html");
    assert!(resource.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    assert!(resource.contains("A &amp; B &lt;b&gt;bold&lt;/b&gt;"));
    // The unsafe request is shown as text, not as a link.
    assert!(
        resource.contains("<td>javascript:alert(3)</td>"),
        "{resource}"
    );
    let project = page(&site, "projects/alpha.html");
    assert!(project.contains("Eve &lt;eve@example.org&gt;: x &amp; y"));
    // JSON carries the text as it is (JSON escaping is the reader's business).
    let json: serde_json::Value = serde_json::from_slice(&site.files["v1/resources.json"]).unwrap();
    assert_eq!(json["resources"][0]["description"], evil);
}

#[test]
fn pending_requests_link_their_pull_requests() {
    let mut inputs = LedgerInputs::default();
    inputs.request_links.insert(
        "requests/gamma.yml".into(),
        "https://github.com/acme/access/pull/42".into(),
    );
    let (_, site) = render(&small_repo(&[]), &inputs);
    let html = page(&site, "requests.html");
    let rows = rows(html, "request-table");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]
            .contains("<a href=\"https://github.com/acme/access/pull/42\">requests/gamma.yml</a>"),
        "{}",
        rows[0]
    );
    assert!(rows[0].contains("tests need CUDA"));
    assert!(rows[0].contains("<a href=\"projects/gamma.html\">gamma</a>"));
    assert!(rows[0].contains("<a href=\"resources/gpu.html\">gpu</a>"));
    // The requesting project gets a page even before it holds anything.
    let gamma = page(&site, "projects/gamma.html");
    assert!(gamma.contains("gamma holds no resource."));
    assert!(gamma.contains("tests need CUDA"));
}

/// Project names compare case-insensitively: a request for `Alpha` is listed on the page of
/// `alpha` (the grant file's spelling), and gets no page of its own.
#[test]
fn a_request_in_another_case_is_listed_on_the_project_s_page() {
    let (_, site) = render(
        &small_repo(&[(
            "requests/alpha.yml",
            "action: renew\nprojects: [Alpha]\nresources: [gpu]\nreason: still CUDA\n".into(),
        )]),
        &LedgerInputs::default(),
    );
    assert!(
        site.files.keys().all(|f| !f.contains("projects/Alpha.")),
        "{:?}",
        site.files.keys()
    );
    assert!(page(&site, "projects/alpha.html").contains("still CUDA"));
    let rows = rows(page(&site, "requests.html"), "request-table");
    let row = rows.iter().find(|r| r.contains("still CUDA")).unwrap();
    assert!(
        row.contains("<a href=\"projects/alpha.html\">alpha</a>"),
        "{row}"
    );
}

#[test]
fn the_same_repository_gives_the_same_bytes() {
    let repo = example();
    let (_, a) = render(&repo, &LedgerInputs::default());
    let (_, b) = render(&repo, &LedgerInputs::default());
    assert_eq!(a.files, b.files);
    // Files read in another order make the same site.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let mut sources: Vec<(String, Vec<u8>)> = Vec::new();
    for sub in ["", "resources", "grants", "requests", "people"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let rel = if sub.is_empty() {
                    entry.file_name().to_string_lossy().to_string()
                } else {
                    format!("{sub}/{}", entry.file_name().to_string_lossy())
                };
                sources.push((rel, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    sources.sort();
    sources.reverse();
    let (_, c) = render(&Repo::from_sources(sources), &LedgerInputs::default());
    assert_eq!(a.files, c.files);
}

#[test]
fn a_resource_with_many_holders_is_split_over_pages() {
    let mut extra = Vec::new();
    for i in 0..1205 {
        extra.push((
            format!("grants/p{i:04}.yml"),
            format!("project: p{i:04}\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n"),
        ));
    }
    let extra: Vec<(&str, String)> = extra.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let (_, site) = render(&small_repo(&extra), &LedgerInputs::default());
    let first = page(&site, "resources/gpu.html");
    let second = page(&site, "resources/gpu~2.html");
    assert_eq!(rows(first, "grant-table").len(), 1000);
    assert_eq!(rows(second, "grant-table").len(), 1207 - 1000);
    assert!(first.contains("Page 1 of 2"));
    assert!(first.contains("href=\"gpu~2.html\""));
    assert!(second.contains(">p1204<"));
}

// The documented shape of v1 (docs/API.md), as strict types: an unknown or missing field fails.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ResourcesJson {
    version: u32,
    date: String,
    resources: Vec<ResourceJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ResourceJson {
    name: String,
    provider: String,
    description: Option<String>,
    eligibility: Option<String>,
    labels: Vec<String>,
    specs: BTreeMap<String, String>,
    max_duration: Option<String>,
    max_job_minutes: Option<u32>,
    quota: QuotaJson,
    cost: Option<serde_json::Value>,
    pull_request_default: bool,
    roles: Vec<String>,
    require_tos: bool,
    projects: usize,
    pending_requests: usize,
    page: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct QuotaJson {
    project_minutes_per_month: Option<u64>,
    minutes_per_month: Option<u64>,
    concurrency: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GrantsJson {
    version: u32,
    date: String,
    grants: Vec<GrantJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GrantJson {
    project: String,
    repository: Option<String>,
    resource: String,
    granted: String,
    expires: Option<String>,
    status: String,
    pull_request: bool,
    forks: bool,
    request: Option<String>,
    approved_by: Vec<String>,
    users: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RequestJson {
    file: String,
    action: String,
    admin_action: Option<String>,
    projects: Vec<String>,
    resources: Vec<String>,
    pull_request: Option<bool>,
    expires: Option<String>,
    reason: Option<String>,
    pull_request_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RequestsJson {
    version: u32,
    date: String,
    requests: Vec<RequestJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HistoryJson {
    date: String,
    change: String,
    resource: String,
    details: String,
    commit: String,
    author: String,
    subject: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProjectJson {
    version: u32,
    date: String,
    name: String,
    repository: Option<String>,
    grants: Vec<GrantJson>,
    pending_requests: Vec<RequestJson>,
    history: Option<Vec<HistoryJson>>,
    page: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProjectsJson {
    version: u32,
    date: String,
    projects: Vec<ProjectRefJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProjectRefJson {
    name: String,
    grants: usize,
    pending_requests: usize,
    json: String,
}

#[test]
fn json_files_have_the_documented_shape() {
    let repo = example();
    let (ledger, site) = render(&repo, &LedgerInputs::default());
    let r: ResourcesJson = serde_json::from_slice(&site.files["v1/resources.json"]).unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(r.date, "2026-11-29");
    assert_eq!(r.resources.len(), repo.resources.len());
    for res in &r.resources {
        assert!(site.files.contains_key(&res.page), "{}", res.page);
    }
    let g: GrantsJson = serde_json::from_slice(&site.files["v1/grants.json"]).unwrap();
    assert_eq!(g.grants.len(), ledger.grants.len());
    for grant in &g.grants {
        assert!(matches!(
            grant.status.as_str(),
            "active" | "expiring" | "expired"
        ));
        assert_eq!(grant.granted.len(), 10);
        assert_eq!(
            grant.repository.as_deref(),
            Some(format!("conda-forge/{}-feedstock", grant.project).as_str())
        );
    }
    let q: RequestsJson = serde_json::from_slice(&site.files["v1/requests.json"]).unwrap();
    assert_eq!(q.requests.len(), repo.requests.len());
    let p: ProjectsJson = serde_json::from_slice(&site.files["v1/projects.json"]).unwrap();
    assert_eq!(p.projects.len(), ledger.projects.len());
    for project in &p.projects {
        let one: ProjectJson = serde_json::from_slice(&site.files[&project.json]).unwrap();
        assert_eq!(one.name, project.name);
        assert_eq!(one.grants.len(), project.grants);
        assert!(one.history.is_none(), "no history was given");
    }
}

fn usage_fixture() -> Dashboard {
    let weeks = weekly(TODAY, [(date(2026, 11, 24), 600), (date(2026, 10, 5), 90)]);
    Dashboard {
        month: "2026-11".into(),
        resources: vec![ResourceUsage {
            resource: "gpu".into(),
            weeks,
            month: "2026-11".into(),
            month_minutes: 600,
            minutes_per_month: Some(20000),
            project_minutes_per_month: Some(3000),
            top_projects: vec![gatehouse_site::usage::ProjectMinutes {
                project: "alpha".into(),
                minutes: 600,
            }],
            month_cost: None,
        }],
        denied: vec![DeniedJob {
            decided_at: "2026-11-28T10:00:00Z".into(),
            repository: "acme/beta-feedstock".into(),
            resource: Some("gpu".into()),
            job_id: 1,
            run_id: 2,
            rule: Some("event-not-allowed".into()),
            message: Some("pull requests from forks <are> not allowed".into()),
            origin: "gate".into(),
        }],
        spend: Vec::new(),
        costs: Default::default(),
        outliers: Vec::new(),
    }
}

#[test]
fn the_dashboard_draws_a_chart_per_resource_with_quota_and_denials() {
    let d = usage_fixture();
    let page = DashboardPage {
        org: Some("acme"),
        date: "2026-11-29",
        root: "/",
    };
    let html = render_dashboard(&d, &page).unwrap();
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
    assert_eq!(html.matches("<rect class=\"bar\"").count(), WEEKS);
    assert!(html.contains("role=\"img\" aria-label=\"gpu: minutes per week"));
    assert!(html.contains("3% of 20000"), "600 of 20000 minutes");
    assert!(html.contains("<code>event-not-allowed</code>"));
    assert!(
        html.contains("<td>gate</td><td><code>event-not-allowed</code>"),
        "a denial says where it was decided"
    );
    assert!(html.contains("forks &lt;are&gt; not"));
    assert!(html.contains("href=\"/dashboard/resources/gpu\""));

    let html = render_resource_usage(&d.resources[0], None, &d.denied, &page).unwrap();
    assert!(html.contains("<rect class=\"bar\""));
    assert!(html.contains("<a href=\"/dashboard/projects/alpha\">alpha</a>"));
    assert!(html.contains("20% of 3000"), "alpha used 600 of its 3000");
    assert!(
        !html.contains("queue-table"),
        "no queue known, no queue shown"
    );
    // With the queue: its own row only, as `/queue` draws it.
    let row = |resource: &str, holding| QueueRow {
        resource: resource.into(),
        provider: "cirun".into(),
        queued: 3,
        running: holding,
        holding,
        concurrency: Some(4),
        oldest_queued_at: Some("2026-11-29T09:48:00Z".into()),
        oldest_wait_minutes: Some(12),
        ..QueueRow::default()
    };
    let queue = Queue {
        at: "2026-11-29T10:00:00Z".into(),
        resources: vec![row("cpu", 1), row("gpu", 4)],
        recent: vec![],
    };
    let html = render_resource_usage(&d.resources[0], Some(&queue), &d.denied, &page).unwrap();
    let lines = rows(&html, "queue-table");
    assert_eq!(lines.len(), 1, "{lines:?}");
    for part in [
        "<a href=\"/dashboard/resources/gpu\">gpu</a> <mark>full</mark>",
        "<td class=\"num\">3</td><td>12 min (since 2026-11-29T09:48:00Z)</td>",
        "<td class=\"num\">4</td><td class=\"num\">4</td>",
    ] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    assert!(html.contains("as the guard saw them at 2026-11-29T10:00:00Z"));

    let p = ProjectUsage {
        project: "alpha".into(),
        month: "2026-11".into(),
        resources: vec![ProjectResourceUsage {
            resource: "gpu".into(),
            weeks: d.resources[0].weeks.clone(),
            month_minutes: 600,
            project_minutes_per_month: Some(3000),
            month_cost: Some("4.80 USD".into()),
        }],
        now: ["admitted", "waiting", "over"]
            .iter()
            .zip(1..)
            .map(|(state, i)| HeldJob {
                resource: "gpu".into(),
                repository: "conda-forge/alpha-feedstock".into(),
                run_id: 60 + i,
                job_id: (i != 2).then_some(600 + i),
                state: state.to_string(),
                since: format!("2026-11-29T09:0{i}:00Z"),
            })
            .collect(),
        jobs: vec![
            RecentJob {
                decided_at: "2026-11-28T10:00:00Z".into(),
                repository: "conda-forge/alpha-feedstock".into(),
                project: Some("alpha".into()),
                resource: Some("gpu".into()),
                job_id: 71,
                run_id: 7,
                outcome: "deny".into(),
                rule: Some("concurrency-exhausted".into()),
                message: Some("4 jobs hold `gpu` <cap 4>".into()),
                origin: "webhook".into(),
            },
            RecentJob {
                decided_at: "2026-11-28T09:00:00Z".into(),
                repository: "conda-forge/alpha-feedstock".into(),
                project: Some("alpha".into()),
                resource: Some("gpu".into()),
                job_id: 61,
                run_id: 6,
                outcome: "allow".into(),
                rule: None,
                message: None,
                origin: "gate".into(),
            },
        ],
        run_approvals: vec![RunApprovalShown {
            repository: "conda-forge/alpha-feedstock".into(),
            pull_number: 12,
            head_sha: "6dcb09b5b57875f334f61aebed695e2e4193db5e".into(),
            head_repository: "drive-by/alpha-feedstock".into(),
            resources: vec![],
            approver_login: "a-maintainer".into(),
            approver_id: 7,
            approved_at: "2026-11-20T10:00:00Z".into(),
            expires_at: "2026-11-21T10:00:00Z".into(),
            jobs: vec![
                ApprovedJobShown {
                    job_id: 501,
                    run_id: 50,
                    run_attempt: 2,
                    minutes: Some(41),
                },
                ApprovedJobShown {
                    job_id: 502,
                    run_id: 50,
                    run_attempt: 2,
                    minutes: None,
                },
            ],
        }],
        spend: vec![
            Spend {
                month: "2026-11".into(),
                provider: "cirun".into(),
                resource: Some("gpu".into()),
                minutes: 600,
                cost: Some("4.80 USD".into()),
            },
            Spend {
                month: "2026-10".into(),
                provider: "cirun".into(),
                resource: None,
                minutes: 90,
                cost: Some("0.72 USD".into()),
            },
        ],
    };
    let html = render_project_usage(&p, &page).unwrap();
    assert!(html.contains("aria-label=\"alpha on gpu: minutes per week"));
    // Its months: each resource's minutes and cost, and each provider's total.
    let months = rows(&html, "spend-table");
    assert_eq!(months.len(), 2, "{months:?}");
    assert!(
        months[0].contains("<td>2026-11</td>")
            && months[0].contains("href=\"/dashboard/resources/gpu\">gpu</a>")
            && months[0].contains("<td class=\"num\">600</td><td class=\"num\">4.80 USD</td>"),
        "{}",
        months[0]
    );
    assert!(
        months[1].contains("provider cirun") && months[1].contains("0.72 USD"),
        "{}",
        months[1]
    );
    assert!(html.contains("<td class=\"num\">4.80 USD</td>"));
    // Its jobs on capped resources now: holding a machine, waiting for a slot (its gate was
    // told to wait: no job yet), over a cap.
    let now = rows(&html, "project-now-table");
    assert_eq!(now.len(), 3, "{now:?}");
    for (row, (run, job, state)) in now.iter().zip([
        ("61", "/job/601\">601</a>", "holds a machine"),
        (
            "62",
            "not started",
            "waiting for a slot: a cap of the resource is full",
        ),
        (
            "63",
            "/job/603\">603</a>",
            "over a cap: its run is cancelled",
        ),
    ]) {
        for part in [&format!("/actions/runs/{run}\">{run}</a>"), job, state] {
            assert!(row.contains(part), "{part} in {row}");
        }
    }
    // Its managed jobs, newest first, each with the decision, where it was made and why.
    let jobs = rows(&html, "recent-table");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(
        jobs[0].contains("/actions/runs/7\">7</a></td><td>deny</td><td>webhook</td><td><code>concurrency-exhausted</code></td><td>4 jobs hold `gpu` &lt;cap 4&gt;</td>"),
        "{}",
        jobs[0]
    );
    assert!(
        jobs[1].contains(
            "/actions/runs/6\">6</a></td><td>allow</td><td>gate</td><td>—</td><td>—</td>"
        ),
        "{}",
        jobs[1]
    );
    // Who approved which commit of which pull request, for what, and the jobs run under it.
    let approvals = rows(&html, "run-approvals-table");
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let row = &approvals[0];
    for part in [
        ">a-maintainer</a>",
        "href=\"https://github.com/conda-forge/alpha-feedstock/pull/12\">#12</a>",
        "<code>6dcb09b5b578</code>",
        "<td>drive-by/alpha-feedstock</td>",
        "<td>every granted resource</td>",
        "/actions/runs/50/job/501\">501</a> (41 min), ",
        "/actions/runs/50/job/502\">502</a></td>",
    ] {
        assert!(row.contains(part), "{part} in {row}");
    }
    let none = ProjectUsage {
        run_approvals: vec![],
        now: vec![],
        ..p.clone()
    };
    let html = render_project_usage(&none, &page).unwrap();
    assert!(
        !html.contains("project-now-table")
            && html.contains("No job of alpha holds or waits for a machine"),
        "{html}"
    );
    assert!(
        !html.contains("run-approvals-table")
            && html.contains("<h2 id=\"run-approvals\">Run approvals</h2>"),
        "{html}"
    );
}

#[test]
fn usage_given_to_the_static_site_adds_a_column_and_charts() {
    let ledger = Ledger::build(&small_repo(&[]), TODAY, &LedgerInputs::default());
    let site = render_site(
        &ledger,
        &SiteOptions {
            usage: Some(usage_fixture()),
            ..SiteOptions::default()
        },
    )
    .unwrap();
    let index = page(&site, "index.html");
    assert!(index.contains("<th scope=\"col\">Minutes this month</th>"));
    assert!(rows(index, "resource-table")[0].contains("<td class=\"num\">600</td>"));
    assert!(page(&site, "resources/gpu.html").contains("<svg class=\"chart\""));
    // A static page has no live queue to show or link to (`gatehouse serve`'s has).
    assert!(!page(&site, "resources/gpu.html").contains("queue"));
    // Without the guard's database there is nothing to say of pools: no page, no link.
    assert!(!site.files.keys().any(|f| f.contains("pools")));
    assert!(!index.contains(">Pools</a>"));
}

#[test]
fn pools_given_to_the_static_site_get_pages_linked_from_every_page() {
    use gatehouse_site::pools::{PoolFigures, PoolPage, burn_down_svg, view};
    let pool = "sponsor: Example Cloud\nminutes: 3000\nstart: 2026-11-01\nend: 2026-12-31\nresources: [gpu]\n";
    let repo = small_repo(&[("pools/cloud.yml", pool.to_string())]);
    let terms = gatehouse_core::pools::terms(&repo);
    assert_eq!(terms.len(), 1, "the pool reads");
    let figures = PoolFigures {
        by_day: (1..=20).map(|d| (date(2026, 11, d), 100)).collect(),
        by_project: vec![("alpha".into(), 1500), ("beta".into(), 500)],
        reserved: 300,
    };
    let (v, burn) = view(&terms[0], &figures, TODAY);
    let chart = burn_down_svg(&terms[0], &burn, TODAY);
    let ledger = Ledger::build(&repo, TODAY, &LedgerInputs::default());
    let site = render_site(
        &ledger,
        &SiteOptions {
            pools: Some(vec![PoolPage { view: v, chart }]),
            ..SiteOptions::default()
        },
    )
    .unwrap();
    // Every page links the list; the list links each pool's file.
    assert!(page(&site, "index.html").contains("<a href=\"pools.html\">Pools</a>"));
    assert!(page(&site, "resources/gpu.html").contains("<a href=\"../pools.html\">Pools</a>"));
    let list = page(&site, "pools.html");
    let row = &rows(list, "pools-table")[0];
    assert!(
        row.contains("<a href=\"pools/cloud.html\">cloud</a>"),
        "{row}"
    );
    assert!(
        row.contains("2000 minutes") && row.contains("300 minutes"),
        "{row}"
    );
    // No live dashboard to link to from a static page.
    assert!(!list.contains("href=\"dashboard\""), "{list}");
    let one = page(&site, "pools/cloud.html");
    assert!(one.contains("<svg class=\"chart burn-down\""), "{one}");
    assert!(
        one.contains("<a href=\"../pools.html\">All pools</a>"),
        "{one}"
    );
    let by_project = rows(one, "by-project-table");
    assert!(by_project[0].contains("alpha") && by_project[0].contains("1500 minutes"));
    assert!(!one.contains("dashboard/projects"), "{one}");
    let json: serde_json::Value = serde_json::from_slice(&site.files["v1/pools.json"]).unwrap();
    assert_eq!(json["pools"][0]["name"], "cloud");
    assert_eq!(json["pools"][0]["spent_units"], 2000);
    assert_eq!(json["date"], "2026-11-29");
}

#[test]
fn a_small_project_page() {
    let mut history = BTreeMap::new();
    history.insert(
        "alpha".to_string(),
        vec![HistoryEvent {
            date: "2026-03-01".into(),
            change: "granted".into(),
            resource: "gpu".into(),
            details: "granted 2026-03-01; until 2026-12-09; pull requests".into(),
            commit: "0123456789ab".into(),
            author: "Carol".into(),
            subject: "Grant gpu to alpha (#7)".into(),
        }],
    );
    let (_, site) = render(
        &small_repo(&[]),
        &LedgerInputs {
            history: Some(history),
            ..Default::default()
        },
    );
    insta::assert_snapshot!(page(&site, "projects/alpha.html"));
}

#[test]
fn the_worst_case_monthly_cost_is_published_per_resource_provider_and_currency() {
    // November: 30 days. `gpu`: 2 machines × 43,200 minutes × 0.008 = 691.20 USD. `mac`:
    // no cap: no ceiling, and so none for USD in total. `eu`: 1,000 minutes × 0.5 = 500 EUR.
    let repo = small_repo(&[
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [gpu]\ncost: { per_minute: 0.008, currency: USD }\nquota: { concurrency: 2 }\n".into(),
        ),
        (
            "resources/mac.yml",
            "name: mac\nprovider: cirun\nlabels: [mac]\ncost: { per_hour: 1.2, currency: USD }\n".into(),
        ),
        (
            "resources/eu.yml",
            "name: eu\nprovider: cirun\nlabels: [eu]\ncost: { per_minute: 0.5, currency: EUR }\nquota: { minutes_per_month: 1000 }\n".into(),
        ),
        (
            "resources/free.yml",
            "name: free\nprovider: cirun\nlabels: [free]\n".into(),
        ),
    ]);
    let (_, site) = render(&repo, &LedgerInputs::default());
    let index = page(&site, "index.html");
    let table = rows(index, "cost-table");
    let row = |start: &str| {
        *table
            .iter()
            .find(|r| r.contains(start))
            .unwrap_or_else(|| panic!("no row for {start}: {table:#?}"))
    };
    assert!(row(">gpu <").contains("691.20 USD"), "{}", row(">gpu <"));
    assert!(row(">mac <").contains("no ceiling"));
    assert!(row("All providers (USD)").contains("no ceiling"));
    assert!(row("All providers (EUR)").contains("500.00 EUR"));
    assert!(index.contains("Without a price (in no ceiling): free."));
    let gpu = page(&site, "resources/gpu.html");
    assert!(gpu.contains("0.008 USD a minute"), "{gpu}");

    let costs: serde_json::Value = serde_json::from_slice(&site.files["v1/costs.json"]).unwrap();
    assert_eq!(costs["version"], 1);
    assert_eq!(costs["month"], "2026-11");
    let totals = costs["totals"].as_array().unwrap();
    assert_eq!(
        totals,
        &[
            serde_json::json!({"currency": "EUR", "ceiling": "500.00"}),
            serde_json::json!({"currency": "USD", "ceiling": null}),
        ]
    );
    let resources: serde_json::Value =
        serde_json::from_slice(&site.files["v1/resources.json"]).unwrap();
    let mac = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "mac")
        .unwrap();
    assert_eq!(
        mac["cost"],
        serde_json::json!({"per_minute": "0.02", "currency": "USD"})
    );

    // Without prices there is no cost section at all.
    let (_, plain) = render(&small_repo(&[]), &LedgerInputs::default());
    assert!(!page(&plain, "index.html").contains("cost-table"));
}

#[test]
fn the_dashboard_shows_minutes_and_cost_by_month_and_the_worst_case() {
    // `gpu` at 0.008 USD a minute on cirun, `cpu` unpriced; `gone` is no longer a resource.
    let repo = small_repo(&[
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [gpu]\ncost: { per_minute: 0.008, currency: USD }\nquota: { concurrency: 2 }\n".into(),
        ),
        (
            "resources/cpu.yml",
            "name: cpu\nprovider: cirun\nlabels: [cpu]\n".into(),
        ),
    ]);
    let ledger = Ledger::build(&repo, TODAY, &LedgerInputs::default());
    let months = [
        ("gpu", "2026-10", 1000u64),
        ("gpu", "2026-11", 250),
        ("cpu", "2026-11", 40),
        ("gone", "2026-11", 5),
    ]
    .map(|(r, m, n)| (r.to_string(), m.to_string(), n));
    let spend = gatehouse_site::usage::spend(&months, &ledger.resources);
    let shown: Vec<(&str, Option<&str>, u64, Option<&str>)> = spend
        .iter()
        .map(|s| {
            (
                s.month.as_str(),
                s.resource.as_deref(),
                s.minutes,
                s.cost.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            // Newest month first: the provider's priced total, its unpriced minutes, then
            // each resource.
            ("2026-11", None, 40, None),
            ("2026-11", None, 250, Some("2.00 USD")),
            ("2026-11", Some("cpu"), 40, None),
            ("2026-11", Some("gpu"), 250, Some("2.00 USD")),
            ("2026-10", None, 1000, Some("8.00 USD")),
            ("2026-10", Some("gpu"), 1000, Some("8.00 USD")),
        ]
    );
    let mut d = usage_fixture();
    d.resources[0].month_cost = Some("2.00 USD".into());
    d.spend = spend;
    d.costs = ledger.costs.clone();
    let page = DashboardPage {
        org: Some("acme"),
        date: "2026-11-29",
        root: "/",
    };
    let html = render_dashboard(&d, &page).unwrap();
    assert!(rows(&html, "usage-table")[0].contains("<td class=\"num\">2.00 USD</td>"));
    let spend_rows = rows(&html, "spend-table");
    assert_eq!(spend_rows.len(), 6);
    assert!(spend_rows[4].contains("provider cirun") && spend_rows[4].contains("8.00 USD"));
    // 2 machines × 30 days × 1440 minutes × 0.008.
    let worst = rows(&html, "cost-table");
    assert!(
        worst
            .iter()
            .any(|r| r.contains("All providers (USD)") && r.contains("691.20 USD")),
        "{worst:#?}"
    );
}
