//! HTML and JSON from the [`Ledger`]: every page from a template (autoescaped), every JSON
//! file from the same records.
//!
//! Output is a sorted map of relative paths to bytes and depends only on the inputs: no clock,
//! no environment, no hash-map order. The same repository and day give byte-identical files.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

use crate::ledger::{GrantView, Ledger, ProjectView, RequestView, SCHEMA_VERSION, SOON_DAYS};
use crate::usage::{self, Dashboard, ProjectUsage, ResourceUsage, chart_svg};

/// A resource page lists at most this many grants; more are split over numbered pages so that
/// no page grows past a phone's patience (about 400 bytes a row).
pub const PAGE_ROWS: usize = 1000;

/// How the site is rendered.
#[derive(Clone, Debug, Default)]
pub struct SiteOptions {
    /// Link the live usage dashboard (`dashboard`) from every page: only `gatehouse serve`
    /// has one.
    pub dashboard_link: bool,
    /// This month's usage, when known: a "minutes this month" column on the index and a chart
    /// on each resource's page.
    pub usage: Option<Dashboard>,
    /// The sponsor credit pools' pages, when known (read from the guard's database):
    /// `pools.html`, `pools/<name>.html` and `v1/pools.json`.
    pub pools: Option<Vec<crate::pools::PoolPage>>,
    /// Each project's minutes and cost by month (read from the guard's database), shown on
    /// its page; the organisation's are `usage`'s `spend`, shown on the index.
    pub project_spend: BTreeMap<String, Vec<crate::usage::Spend>>,
}

/// The rendered site: relative path → contents, and what had to be left out.
#[derive(Clone, Debug, Default)]
pub struct Site {
    pub files: BTreeMap<String, Vec<u8>>,
    /// Resources or projects whose names cannot be file names (they fail `gatehouse check`).
    pub skipped: Vec<String>,
}

/// A template failed to render: a bug in gatehouse, never in the repository's data.
#[derive(Debug)]
pub struct RenderError(pub String);

impl std::error::Error for RenderError {}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rendering the site failed: {}", self.0)
    }
}

impl From<minijinja::Error> for RenderError {
    fn from(e: minijinja::Error) -> Self {
        RenderError(format!("{e:#}"))
    }
}

impl From<serde_json::Error> for RenderError {
    fn from(e: serde_json::Error) -> Self {
        RenderError(e.to_string())
    }
}

/// The order specs are shown in (the JSON map is sorted by key, as every JSON map here).
const SPEC_ORDER: &[&str] = &[
    "os",
    "arch",
    "cpu",
    "memory_gb",
    "disk_gb",
    "gpu",
    "instance_type",
];

pub const SITE_CSS: &str = include_str!("../assets/site.css");
pub const SEARCH_JS: &str = include_str!("../assets/search.js");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` templates are escaped for HTML by minijinja's default; every value coming from
        // the repository goes through it unless a template says `|safe` (only our own SVG).
        for (name, src) in [
            ("base.html", include_str!("../templates/base.html")),
            ("macros.html", include_str!("../templates/macros.html")),
            (
                "usage_macros.html",
                include_str!("../templates/usage_macros.html"),
            ),
            ("index.html", include_str!("../templates/index.html")),
            ("resource.html", include_str!("../templates/resource.html")),
            ("project.html", include_str!("../templates/project.html")),
            ("requests.html", include_str!("../templates/requests.html")),
            (
                "dashboard.html",
                include_str!("../templates/dashboard.html"),
            ),
            (
                "resource_usage.html",
                include_str!("../templates/resource_usage.html"),
            ),
            (
                "project_usage.html",
                include_str!("../templates/project_usage.html"),
            ),
            ("queue.html", include_str!("../templates/queue.html")),
            ("pools.html", include_str!("../templates/pools.html")),
            ("pool.html", include_str!("../templates/pool.html")),
        ] {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e:#}"));
        }
        // minijinja's HTML escaping also escapes `/`, which is safe in text and attributes
        // alike; leaving it keeps URLs and pages readable (and smaller).
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if !value.is_safe() && state.auto_escape() == AutoEscape::Html => out
                .write_str(&crate::usage::escape(s))
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure)),
            _ => minijinja::escape_formatter(out, state, value),
        });
        env.add_filter("href", href);
        env.add_filter("shorturl", shorturl);
        env.add_filter("specname", specname);
        env.add_filter("quota", quota);
        env
    })
}

/// The URL itself when it is safe to put in `href` (http or https), else empty: a
/// `javascript:` link written into the ledger must not become a clickable script.
fn href(url: Option<String>) -> String {
    match url {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => u,
        _ => String::new(),
    }
}

/// `https://github.com/conda-forge/admin-requests/pull/1203` → `admin-requests#1203`.
fn shorturl(url: Option<String>) -> String {
    let Some(url) = url else {
        return String::new();
    };
    if let Some(rest) = url.strip_prefix("https://github.com/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() == 4 && matches!(parts[2], "pull" | "issues") {
            return format!("{}#{}", parts[1], parts[3]);
        }
    }
    url
}

fn specname(key: String) -> String {
    match key.as_str() {
        "memory_gb" => "memory (GB)".into(),
        "disk_gb" => "disk (GB)".into(),
        "cpu" => "vCPU".into(),
        "gpu" => "GPU".into(),
        "os" => "OS".into(),
        "instance_type" => "type".into(),
        _ => key,
    }
}

fn quota(q: Value) -> String {
    let get = |k: &str| {
        q.get_attr(k)
            .ok()
            .filter(|v| !v.is_none() && !v.is_undefined())
    };
    let mut parts = Vec::new();
    if let Some(v) = get("minutes_per_month") {
        parts.push(format!("{v} min/month in all"));
    }
    if let Some(v) = get("project_minutes_per_month") {
        parts.push(format!("{v} min/month per project"));
    }
    if let Some(v) = get("concurrency") {
        parts.push(format!("{v} jobs at once"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}

/// The JSON envelope every `v1/` file shares.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    version: u32,
    date: &'a str,
    #[serde(flatten)]
    body: T,
}

fn json<T: Serialize>(ledger: &Ledger, body: T) -> Result<Vec<u8>, RenderError> {
    let mut out = serde_json::to_vec_pretty(&Envelope {
        version: SCHEMA_VERSION,
        date: &ledger.date,
        body,
    })?;
    out.push(b'\n');
    Ok(out)
}

/// A list file: the envelope, then one compact line per item. Small enough for a 2,000-grant
/// ledger to stay well under a megabyte, and a change to one grant is a one-line diff.
fn json_list<T: Serialize>(
    ledger: &Ledger,
    key: &str,
    items: &[T],
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::with_capacity(64 + items.len() * 256);
    out.extend_from_slice(b"{\n  \"version\": ");
    out.extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
    out.extend_from_slice(b",\n  \"date\": ");
    serde_json::to_writer(&mut out, &ledger.date)?;
    out.extend_from_slice(b",\n  ");
    serde_json::to_writer(&mut out, key)?;
    out.extend_from_slice(b": [");
    for (i, item) in items.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
        serde_json::to_writer(&mut out, item)?;
    }
    out.extend_from_slice(if items.is_empty() {
        b"]\n}\n"
    } else {
        b"\n  ]\n}\n"
    });
    Ok(out)
}

/// A project page's summary of its soonest expiry, as HTML for the index.
fn soonest(p: &ProjectView) -> String {
    let g = p
        .grants
        .iter()
        .filter(|g| g.expires.is_some())
        .min_by(|a, b| a.expires.cmp(&b.expires));
    match g {
        None if p.grants.is_empty() => "—".into(),
        None => "never".into(),
        Some(g) => {
            let date = g.expires.as_deref().unwrap_or_default();
            match g.status {
                "expiring" => format!(
                    "<mark class=\"expiring\">{date} <span class=\"note\">(expires soon)</span></mark>"
                ),
                "expired" => {
                    format!(
                        "<span class=\"expired\">{date} <span class=\"note\">(expired)</span></span>"
                    )
                }
                _ => date.to_string(),
            }
        }
    }
}

/// Renders every page and JSON file of the site.
pub fn render_site(ledger: &Ledger, options: &SiteOptions) -> Result<Site, RenderError> {
    let env = env();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let base = |root: &str| {
        context! {
            org => ledger.org.clone(),
            date => ledger.date.clone(),
            root => root,
            dashboard => options.dashboard_link,
            // Live (`gatehouse serve`), the pools are pages of the guard; on the static site,
            // files, when the guard's database was read.
            pools => options.dashboard_link || options.pools.is_some(),
            ext => if options.dashboard_link { "" } else { ".html" },
            soon_days => SOON_DAYS,
            spec_order => SPEC_ORDER,
        }
    };
    let usage_by_resource: Option<BTreeMap<&str, u64>> = options.usage.as_ref().map(|d| {
        d.resources
            .iter()
            .map(|u| (u.resource.as_str(), u.month_minutes))
            .collect()
    });

    // The index.
    #[derive(Serialize)]
    struct IndexProject<'a> {
        name: &'a str,
        page: &'a str,
        grants: &'a [GrantView],
        pending_requests: &'a [RequestView],
        soonest: String,
    }
    let projects: Vec<IndexProject> = ledger
        .projects
        .iter()
        .map(|p| IndexProject {
            name: &p.name,
            page: &p.page,
            grants: &p.grants,
            pending_requests: &p.pending_requests,
            soonest: soonest(p),
        })
        .collect();
    let index = env.get_template("index.html")?.render(context! {
        resources => &ledger.resources,
        grants => &ledger.grants,
        projects => projects,
        projects_with_grants => ledger.projects.iter().filter(|p| !p.grants.is_empty()).count(),
        requests => &ledger.requests,
        usage => usage_by_resource,
        spend => options.usage.as_ref().map(|d| &d.spend),
        costs => &ledger.costs,
        ..base("")
    })?;
    files.insert("index.html".into(), index.into_bytes());

    // A page (or several) per resource.
    let resource_tmpl = env.get_template("resource.html")?;
    for r in &ledger.resources {
        let grants: Vec<&GrantView> = ledger.grants_of(&r.name).collect();
        let pending: Vec<&RequestView> = ledger
            .requests
            .iter()
            .filter(|q| q.resources.contains(&r.name))
            .collect();
        let chart = options.usage.as_ref().and_then(|d| {
            d.resources
                .iter()
                .find(|u| u.resource == r.name)
                .map(|u| chart_svg(&r.name, &u.weeks))
        });
        let chunks: Vec<&[&GrantView]> = if grants.is_empty() {
            vec![&[][..]]
        } else {
            grants.chunks(PAGE_ROWS).collect()
        };
        let pages = chunks.len();
        let page_path = |n: usize| {
            if n == 1 {
                format!("{}.html", r.name)
            } else {
                // `~` cannot occur in a name, so a page never collides with another resource.
                format!("{}~{n}.html", r.name)
            }
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let n = i + 1;
            let page_links: Vec<Value> = (1..=pages)
                .map(|k| context! { n => k, href => page_path(k), current => k == n })
                .collect();
            let html = resource_tmpl.render(context! {
                r => r,
                grants => chunk,
                pending => &pending,
                chart => chart,
                page => n,
                pages => pages,
                page_links => page_links,
                ..base("../")
            })?;
            files.insert(format!("resources/{}", page_path(n)), html.into_bytes());
        }
    }

    // A page and a JSON file per project.
    let project_tmpl = env.get_template("project.html")?;
    for p in &ledger.projects {
        let html = project_tmpl.render(context! {
            p => p,
            spend => options.project_spend.get(&p.name),
            ..base("../")
        })?;
        files.insert(format!("projects/{}.html", p.name), html.into_bytes());
        files.insert(format!("v1/projects/{}.json", p.name), json(ledger, p)?);
    }

    // Pending requests.
    let known_projects: BTreeMap<&str, bool> = ledger
        .projects
        .iter()
        .map(|p| (p.name.as_str(), true))
        .collect();
    let known_resources: BTreeMap<&str, bool> = ledger
        .resources
        .iter()
        .map(|r| (r.name.as_str(), true))
        .collect();
    let requests = env.get_template("requests.html")?.render(context! {
        requests => &ledger.requests,
        known_projects => known_projects,
        known_resources => known_resources,
        ..base("")
    })?;
    files.insert("requests.html".into(), requests.into_bytes());

    // The JSON API.
    #[derive(Serialize)]
    struct ProjectRef<'a> {
        name: &'a str,
        grants: usize,
        pending_requests: usize,
        json: String,
    }
    files.insert(
        "v1/resources.json".into(),
        json_list(ledger, "resources", &ledger.resources)?,
    );
    files.insert(
        "v1/grants.json".into(),
        json_list(ledger, "grants", &ledger.grants)?,
    );
    files.insert(
        "v1/requests.json".into(),
        json_list(ledger, "requests", &ledger.requests)?,
    );
    let refs: Vec<ProjectRef> = ledger
        .projects
        .iter()
        .map(|p| ProjectRef {
            name: &p.name,
            grants: p.grants.len(),
            pending_requests: p.pending_requests.len(),
            json: format!("v1/projects/{}.json", p.name),
        })
        .collect();
    files.insert(
        "v1/projects.json".into(),
        json_list(ledger, "projects", &refs)?,
    );
    files.insert("v1/costs.json".into(), json(ledger, &ledger.costs)?);
    // The sponsor pools, as the guard's `/pools` pages and `/api/v1/pools` show them.
    if let Some(pools) = &options.pools {
        let views: Vec<&crate::pools::PoolView> = pools.iter().map(|p| &p.view).collect();
        let list = env
            .get_template("pools.html")?
            .render(context! { pools => &views, ..base("") })?;
        files.insert("pools.html".into(), list.into_bytes());
        for p in pools {
            // Pools are named by their files' names; one that is no safe file name is left out.
            if gatehouse_core::names::validate_project_name(&p.view.name).is_err() {
                continue;
            }
            let page = env
                .get_template("pool.html")?
                .render(context! { p => &p.view, chart => &p.chart, ..base("../") })?;
            files.insert(format!("pools/{}.html", p.view.name), page.into_bytes());
        }
        files.insert(
            "v1/pools.json".into(),
            json(ledger, serde_json::json!({ "pools": views }))?,
        );
    }
    // The terms-of-service list without the envelope: the format Cirun's `users_from_json`
    // reads, so the provider can point at the ledger.
    if let Some(users) = &ledger.tos_users {
        files.insert("v1/tos-users.json".into(), users.clone().into_bytes());
    }

    files.insert("assets/site.css".into(), SITE_CSS.as_bytes().to_vec());
    files.insert("assets/search.js".into(), SEARCH_JS.as_bytes().to_vec());
    // GitHub Pages would otherwise run the files through Jekyll.
    files.insert(".nojekyll".into(), Vec::new());

    Ok(Site {
        files,
        skipped: ledger.skipped.clone(),
    })
}

/// Where the dashboard pages are and what they link to.
#[derive(Clone, Debug)]
pub struct DashboardPage<'a> {
    pub org: Option<&'a str>,
    pub date: &'a str,
    /// The site's root as seen from the page (`/` when served by `gatehouse serve`).
    pub root: &'a str,
}

fn dashboard_base(page: &DashboardPage) -> Value {
    context! {
        org => page.org,
        date => page.date,
        root => page.root,
        dashboard => true,
        pools => true,
        ext => "",
    }
}

/// The dashboard's front page: every resource's month against its quota and its chart, and the
/// recently denied jobs.
pub fn render_dashboard(d: &Dashboard, page: &DashboardPage) -> Result<String, RenderError> {
    #[derive(Serialize)]
    struct WithChart<'a> {
        #[serde(flatten)]
        u: &'a ResourceUsage,
        chart: String,
    }
    let resources: Vec<WithChart> = d
        .resources
        .iter()
        .map(|u| WithChart {
            u,
            // A resource nobody used in the charted weeks gets a line, not an empty chart.
            chart: if u.weeks.iter().any(|w| w.minutes > 0) {
                chart_svg(&u.resource, &u.weeks)
            } else {
                String::new()
            },
        })
        .collect();
    let idle: Vec<&str> = resources
        .iter()
        .filter(|r| r.chart.is_empty())
        .map(|r| r.u.resource.as_str())
        .collect();
    let view = context! {
        month => &d.month,
        resources => resources,
        idle => idle,
        weeks => crate::usage::WEEKS,
        denied => &d.denied,
        spend => &d.spend,
        costs => &d.costs,
        outliers => &d.outliers,
    };
    Ok(env()
        .get_template("dashboard.html")?
        .render(context! { d => view, ..dashboard_base(page) })?)
}

/// One resource's usage page: its chart, month, quota and top projects, its queue now (its row
/// of `queue`, as `/queue` shows it; `None` leaves the section out), and recent denials.
pub fn render_resource_usage(
    u: &ResourceUsage,
    queue: Option<&crate::queue::Queue>,
    denied: &[usage::DeniedJob],
    page: &DashboardPage,
) -> Result<String, RenderError> {
    let rows = queue.map(|q| queue_rows(q.resources.iter().filter(|r| r.resource == u.resource)));
    Ok(env()
        .get_template("resource_usage.html")?
        .render(context! {
            u => u,
            chart => chart_svg(&u.resource, &u.weeks),
            queue => rows,
            queue_at => queue.map(|q| &q.at),
            denied_rows => denied,
            ..dashboard_base(page)
        })?)
}

/// One project's usage page: per resource its month, quota and chart, its recent managed jobs
/// with the guard's decision about each, and its run approvals with the jobs that ran under
/// each.
pub fn render_project_usage(u: &ProjectUsage, page: &DashboardPage) -> Result<String, RenderError> {
    #[derive(Serialize)]
    struct WithChart<'a> {
        #[serde(flatten)]
        r: &'a usage::ProjectResourceUsage,
        chart: String,
    }
    let resources: Vec<WithChart> = u
        .resources
        .iter()
        .map(|r| WithChart {
            r,
            // No weeks given: the page shows the month's figures without a chart.
            chart: if r.weeks.is_empty() {
                String::new()
            } else {
                chart_svg(&format!("{} on {}", u.project, r.resource), &r.weeks)
            },
        })
        .collect();
    /// Every field of the page's data, so a new one reaches the template without being named
    /// here, and the resources with their charts.
    #[derive(Serialize)]
    struct View<'a> {
        #[serde(flatten)]
        u: &'a ProjectUsage,
        charted: Vec<WithChart<'a>>,
    }
    let view = View {
        u,
        charted: resources,
    };
    Ok(env()
        .get_template("project_usage.html")?
        .render(context! { u => view, ..dashboard_base(page) })?)
}

/// A line of the queue as the `queue_table` macro shows it: the row, and whether a cap is
/// reached.
#[derive(Serialize)]
struct QueueLine<'a> {
    #[serde(flatten)]
    r: &'a crate::queue::QueueRow,
    full: bool,
}

fn queue_rows<'a>(rows: impl Iterator<Item = &'a crate::queue::QueueRow>) -> Vec<QueueLine<'a>> {
    rows.map(|r| QueueLine { r, full: r.full() }).collect()
}

/// The queue page: every resource's jobs against its caps, and the recent decisions.
pub fn render_queue(q: &crate::queue::Queue, page: &DashboardPage) -> Result<String, RenderError> {
    let view = context! {
        at => &q.at,
        resources => queue_rows(q.resources.iter()),
        recent => &q.recent,
    };
    Ok(env()
        .get_template("queue.html")?
        .render(context! { q => view, ..dashboard_base(page) })?)
}

/// The list of sponsor credit pools.
pub fn render_pools(
    pools: &[crate::pools::PoolView],
    page: &DashboardPage,
) -> Result<String, RenderError> {
    Ok(env()
        .get_template("pools.html")?
        .render(context! { pools => pools, ..dashboard_base(page) })?)
}

/// One pool's page: its figures, burn-down chart (`chart`, from
/// [`crate::pools::burn_down_svg`]) and spending by project.
pub fn render_pool(
    pool: &crate::pools::PoolView,
    chart: &str,
    page: &DashboardPage,
) -> Result<String, RenderError> {
    Ok(env()
        .get_template("pool.html")?
        .render(context! { p => pool, chart => chart, ..dashboard_base(page) })?)
}
