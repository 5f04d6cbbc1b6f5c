//! The public ledger, served live: the same pages and JSON as `gatehouse site`, plus the usage
//! dashboard drawn from the store.
//!
//! The static part is rendered once per loaded policy and day (a reload or midnight renders it
//! again) from the access repository the guard enforces, and kept in memory; the dashboard
//! reads the store on every request through its public queries, so it is always current.
//!
//! Routes: `/` and every page of the static site (`/index.html`, `/resources/...`,
//! `/projects/...`, `/requests.html`, `/assets/...`, `/v1/*.json`), `/dashboard`,
//! `/dashboard.json`, `/dashboard/resources/{name}` and `/dashboard/projects/{name}`; and the
//! queue's routes ([`crate::queue`]), which share the rendered ledger.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_core::outliers::Outlier;
use gatehouse_core::repo::load_dir;
use gatehouse_site::queue::HeldJob;
use gatehouse_site::usage::{OutlierRow, ProjectMinutes, chart_start, week_start, weekly};
use gatehouse_site::{
    Dashboard, DashboardPage, DeniedJob, Ledger, LedgerInputs, ProjectResourceUsage, ProjectUsage,
    ResourceUsage, SiteOptions, render_dashboard, render_project_usage, render_resource_usage,
    render_site,
};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::clock::today;
use crate::site_cache::{Figures, Rendered};
use crate::state::AppState;
use crate::store::{DecisionFilter, DecisionRecord, Store, WeekUsage, time_text};

/// How many denied jobs a dashboard page lists.
const DENIED_ROWS: i64 = 25;
/// How many of its latest managed jobs a project's page lists.
const PROJECT_JOBS: i64 = 50;
/// How many months (this one included) the dashboard's minutes-and-cost table covers.
const SPEND_MONTHS: i32 = 12;
/// How many projects a resource's usage page lists.
const TOP_PROJECTS: usize = 10;

/// How long the dashboard's figures are reused. Reading this week's minutes scans its jobs
/// (the eleven weeks before are read once a day); a dashboard a few seconds old is as good,
/// and many readers at once then cost one read.
const DASHBOARD_TTL: Duration = Duration::from_secs(10);

/// The live ledger's routes; merged into the guard's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(static_page))
        .route("/index.html", get(static_page))
        .route("/requests.html", get(static_page))
        .route("/resources/{file}", get(static_page))
        .route("/projects/{file}", get(static_page))
        .route("/assets/{file}", get(static_page))
        .route("/v1/{file}", get(static_page))
        .route("/v1/projects/{file}", get(static_page))
        .route("/dashboard", get(dashboard))
        .route("/dashboard.json", get(dashboard_json))
        .route("/dashboard/resources/{name}", get(resource_usage))
        .route("/dashboard/projects/{name}", get(project_usage))
        .route("/queue", get(crate::queue::queue_page))
        .route("/queue.json", get(crate::queue::queue_json))
        .route("/api/v1/runs/{run_id}", get(crate::queue::run))
        .route("/pools", get(crate::pool_pages::pools_page))
        .route("/pools/{name}", get(crate::pool_pages::pool_page))
        .route("/api/v1/pools", get(crate::pool_pages::pools_json))
}

/// Any path no route knows.
pub(crate) async fn no_such_page() -> Response {
    not_found("page")
}

/// A 404 that names `what` only in words of our own: the request's path is never echoed
/// (text a browser could be talked into reading as a page), and sniffing is off.
pub(crate) fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("no such {what} in the ledger\n"),
    )
        .into_response()
}

pub(crate) fn unavailable(context: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "{context}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{context}; try again shortly\n"),
    )
        .into_response()
}

/// The headers every page of the ledger carries: its type, no sniffing, and a policy that
/// allows nothing but the site's own files (the charts are inline SVG, not script).
pub(crate) fn page(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Renders the ledger and reads the dashboard's figures ahead of the first reader: at start and
/// after each reload of the access repository.
pub(crate) async fn warm(state: &Arc<AppState>) {
    let read = async {
        let site = site(state).await?;
        dashboard_figures(state, &site).await?;
        anyhow::Ok(())
    };
    if let Err(e) = read.await {
        tracing::warn!(
            error = format!("{e:#}"),
            "cannot read the dashboard ahead; its first reader will"
        );
    }
}

/// The static site of the policy in force, rendered when missing or stale.
pub(crate) async fn site(state: &AppState) -> anyhow::Result<Arc<Rendered>> {
    let loaded_at = state.status().loaded_at;
    let day = today();
    let mut slot = state.site_cache.site.lock().await;
    if let Some(r) = slot.as_ref()
        && r.loaded_at == loaded_at
        && r.day == day
    {
        return Ok(r.clone());
    }
    let dir = state.config.repo_dir.clone();
    let rendered = tokio::task::spawn_blocking(move || -> anyhow::Result<Rendered> {
        let repo = load_dir(&dir)?;
        // The grant history and the pull requests behind requests, as `gatehouse site` shows
        // them, when the access repository is a git checkout.
        let inputs = if gatehouse_history::is_git_checkout(&dir) {
            gatehouse_history::ledger_history(&dir, &repo, None).map_or_else(
                |e| {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "the ledger's pages show no git history"
                    );
                    LedgerInputs::default()
                },
                LedgerInputs::from,
            )
        } else {
            LedgerInputs::default()
        };
        let ledger = Ledger::build(&repo, day, &inputs);
        let site = render_site(
            &ledger,
            &SiteOptions {
                dashboard_link: true,
                ..SiteOptions::default()
            },
        )?;
        Ok(Rendered {
            loaded_at,
            day,
            ledger,
            files: site.files,
        })
    })
    .await??;
    let rendered = Arc::new(rendered);
    *slot = Some(rendered.clone());
    Ok(rendered)
}

/// Any page or JSON file of the static site, by its path.
async fn static_page(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let mut path = uri.path().trim_start_matches('/').to_string();
    if path.is_empty() {
        path = "index.html".into();
    }
    // `/resources/gpu` as well as `/resources/gpu.html`.
    if !site.files.contains_key(&path) && !path.contains('.') {
        path.push_str(".html");
    }
    match site.files.get(&path) {
        Some(bytes) => page(content_type(&path), bytes.clone()),
        None => not_found("page"),
    }
}

pub(crate) fn dashboard_page<'a>(site: &'a Rendered, date: &'a str) -> DashboardPage<'a> {
    DashboardPage {
        org: site.ledger.org.as_deref(),
        date,
        root: "/",
    }
}

fn denied_job(d: DecisionRecord) -> DeniedJob {
    DeniedJob {
        decided_at: d.decided_at,
        repository: d.repository,
        resource: d.resource,
        job_id: d.job_id,
        run_id: d.run_id,
        rule: d.rule,
        message: d.message,
        origin: d.origin,
    }
}

/// Minutes per resource in the charted weeks before this one: read once a day, since jobs
/// are counted on the day they finish and those days are over. (A delivery that arrives days
/// late shows in an older week from the next day on.)
async fn closed_weeks(state: &AppState, day: Date) -> anyhow::Result<Arc<Vec<WeekUsage>>> {
    let mut slot = state.site_cache.closed_weeks.lock().await;
    if let Some((d, weeks)) = slot.as_ref()
        && *d == day
    {
        return Ok(weeks.clone());
    }
    let weeks = Arc::new(
        state
            .store()
            .weekly_usage(&chart_start(day).to_string(), &week_start(day).to_string())
            .await?,
    );
    *slot = Some((day, weeks.clone()));
    Ok(weeks)
}

/// The first month (`YYYY-MM`) of the [`SPEND_MONTHS`] months ending with `day`'s.
pub(crate) fn first_spend_month(day: Date) -> String {
    day.first_of_month()
        .checked_sub(jiff::Span::new().months(SPEND_MONTHS - 1))
        .unwrap_or(day)
        .strftime("%Y-%m")
        .to_string()
}

/// Every resource's usage: weekly minutes for the chart, this month's against its quota and
/// its heaviest users, and the most recent denials.
async fn build_dashboard(state: &AppState, site: &Rendered) -> anyhow::Result<Dashboard> {
    let (closed, outliers) = tokio::try_join!(
        closed_weeks(state, site.day),
        crate::outliers::cached(state, site.day),
    )?;
    dashboard_of(state.store(), &site.ledger, site.day, &closed, &outliers).await
}

/// The dashboard's figures on `day` from `store`, given the weeks before this one
/// (`closed`) and this week's outliers: live from [`build_dashboard`]'s caches, for the static
/// site (`gatehouse site --db`) read once.
pub(crate) async fn dashboard_of(
    store: &Store,
    ledger: &Ledger,
    day: Date,
    closed: &[WeekUsage],
    outliers: &[Outlier],
) -> anyhow::Result<Dashboard> {
    let month = day.strftime("%Y-%m").to_string();
    let this_week = week_start(day).to_string();
    let until = day.tomorrow().unwrap_or(day).to_string();
    let first_month = first_spend_month(day);
    let tops = async {
        let mut tops = BTreeMap::new();
        for r in &ledger.resources {
            let top = store
                .top_projects_of_month(&month, &r.name, TOP_PROJECTS as i64)
                .await?;
            tops.insert(r.name.as_str(), top);
        }
        anyhow::Ok(tops)
    };
    let (current, month_totals, mut tops, denied, months) = tokio::try_join!(
        store.weekly_usage(&this_week, &until),
        store.month_minutes_by_resource(&month),
        tops,
        store.recent_denials(DENIED_ROWS),
        store.monthly_usage(&first_month),
    )?;
    let weeks = closed.iter().chain(current.iter());
    let mut by_week: BTreeMap<&str, Vec<(Date, u64)>> = BTreeMap::new();
    for w in weeks {
        if let Ok(d) = w.week.parse::<Date>() {
            by_week
                .entry(w.resource.as_str())
                .or_default()
                .push((d, w.minutes.max(0) as u64));
        }
    }
    let month_totals: BTreeMap<String, i64> = month_totals.into_iter().collect();
    let resources = ledger
        .resources
        .iter()
        .map(|r| {
            let top = tops
                .remove(r.name.as_str())
                .unwrap_or_default()
                .into_iter()
                .map(|row| ProjectMinutes {
                    project: row.project,
                    minutes: row.minutes.max(0) as u64,
                })
                .collect();
            let month_minutes = month_totals.get(&r.name).copied().unwrap_or(0).max(0) as u64;
            ResourceUsage {
                resource: r.name.clone(),
                weeks: weekly(
                    day,
                    by_week.get(r.name.as_str()).cloned().unwrap_or_default(),
                ),
                month: month.clone(),
                month_minutes,
                minutes_per_month: r.quota.minutes_per_month,
                project_minutes_per_month: r.quota.project_minutes_per_month,
                top_projects: top,
                month_cost: r.cost.as_ref().map(|c| c.of_minutes(month_minutes)),
            }
        })
        .collect();
    Ok(Dashboard {
        month,
        resources,
        denied: denied.into_iter().map(denied_job).collect(),
        spend: gatehouse_site::usage::spend(&months, &ledger.resources),
        costs: ledger.costs.clone(),
        outliers: outliers
            .iter()
            .map(|o| OutlierRow {
                project: o.project.clone(),
                minutes: o.minutes,
                median: o.median,
            })
            .collect(),
    })
}

/// [`build_dashboard`], reused: figures older than [`DASHBOARD_TTL`] are still answered while
/// one task reads the store again in the background, so a reader waits on the store only when
/// there are no figures yet for this policy and day (one reader reads, the others wait for it).
async fn dashboard_figures(
    state: &Arc<AppState>,
    site: &Arc<Rendered>,
) -> anyhow::Result<Arc<Dashboard>> {
    let cache = &state.site_cache;
    let mut slot = cache.figures.lock().await;
    if let Some(f) = slot.as_ref()
        && f.day == site.day
        && f.loaded_at == site.loaded_at
    {
        if f.read_at.elapsed() >= DASHBOARD_TTL && !cache.refreshing.swap(true, Ordering::AcqRel) {
            let (state, site) = (state.clone(), site.clone());
            tokio::spawn(async move {
                let cache = &state.site_cache;
                match build_dashboard(&state, &site).await {
                    Ok(d) => {
                        *cache.figures.lock().await = Some(Figures {
                            read_at: Instant::now(),
                            day: site.day,
                            loaded_at: site.loaded_at,
                            dashboard: Arc::new(d),
                        });
                    }
                    Err(e) => tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot read the dashboard's figures again; the last ones are shown"
                    ),
                }
                cache.refreshing.store(false, Ordering::Release);
            });
        }
        return Ok(f.dashboard.clone());
    }
    let dashboard = Arc::new(build_dashboard(state, site).await?);
    *slot = Some(Figures {
        read_at: Instant::now(),
        day: site.day,
        loaded_at: site.loaded_at,
        dashboard: dashboard.clone(),
    });
    Ok(dashboard)
}

async fn dashboard(State(state): State<Arc<AppState>>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let d = match dashboard_figures(&state, &site).await {
        Ok(d) => d,
        Err(e) => return unavailable("cannot read usage", e),
    };
    let date = site.day.to_string();
    match render_dashboard(&d, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the dashboard", e.into()),
    }
}

/// The dashboard's data as JSON (what `gatehouse site --usage` reads).
async fn dashboard_json(State(state): State<Arc<AppState>>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    match dashboard_figures(&state, &site).await {
        Ok(d) => Json(&*d).into_response(),
        Err(e) => unavailable("cannot read usage", e),
    }
}

async fn resource_usage(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    if site.ledger.resource(&name).is_none() {
        return not_found("resource");
    }
    let d = match dashboard_figures(&state, &site).await {
        Ok(d) => d,
        Err(e) => return unavailable("cannot read usage", e),
    };
    let Some(u) = d.resources.iter().find(|u| u.resource == name) else {
        return not_found("resource");
    };
    let filter = DecisionFilter {
        resource: Some(name.clone()),
        outcome: Some("deny".into()),
        limit: DENIED_ROWS,
        ..DecisionFilter::default()
    };
    // Its line of the queue now, read as `/queue` reads every resource's.
    let (denied, queue) = match tokio::try_join!(
        state.store().decisions(&filter),
        crate::queue::queue_now(&state, &site)
    ) {
        Ok((rows, queue)) => (rows.into_iter().map(denied_job).collect::<Vec<_>>(), queue),
        Err(e) => return unavailable("cannot read decisions and the queue", e),
    };
    let date = site.day.to_string();
    match render_resource_usage(u, Some(&queue), &denied, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the page", e.into()),
    }
}

async fn project_usage(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    // The store keeps project names lower-cased.
    let key = name.to_lowercase();
    let Some(project) = site
        .ledger
        .projects
        .iter()
        .find(|p| p.name.to_lowercase() == key)
    else {
        return not_found("project");
    };
    let day = site.day;
    let month = day.strftime("%Y-%m").to_string();
    let store = state.store();
    let (first_month, first_week) = (first_spend_month(day), chart_start(day).to_string());
    let until = day.tomorrow().unwrap_or(day).to_string();
    let now = time_text(Timestamp::now());
    let (months, weeks, jobs, held) = match tokio::try_join!(
        store.project_months(&key, &first_month),
        store.weekly_usage_of_project(&key, &first_week, &until),
        store.decisions_of_project(&key, PROJECT_JOBS),
        store.holds_of_project(&key, &now)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable("cannot read usage", e),
    };
    // Every resource it used this month or in the charted weeks, with this month's minutes.
    /// This month's minutes and the minutes of each charted week.
    type MonthAndWeeks = (u64, Vec<(Date, u64)>);
    let mut by_resource: BTreeMap<&str, MonthAndWeeks> = BTreeMap::new();
    for (resource, m, minutes) in &months {
        if *m == month {
            by_resource.entry(resource).or_default().0 += minutes;
        }
    }
    for w in &weeks {
        if let Ok(d) = w.week.parse::<Date>() {
            let e = by_resource.entry(&w.resource).or_default();
            e.1.push((d, w.minutes.max(0) as u64));
        }
    }
    let resources: Vec<ProjectResourceUsage> = by_resource
        .into_iter()
        .map(|(resource, (month_minutes, days))| {
            let r = site.ledger.resource(resource);
            ProjectResourceUsage {
                project_minutes_per_month: r.and_then(|x| x.quota.project_minutes_per_month),
                month_cost: r
                    .and_then(|x| x.cost.as_ref())
                    .map(|c| c.of_minutes(month_minutes)),
                resource: resource.to_string(),
                weeks: weekly(day, days),
                month_minutes,
            }
        })
        .collect();
    let spend = gatehouse_site::usage::spend(&months, &site.ledger.resources);
    let run_approvals = match &project.repository {
        Some(repository) => match crate::run_approvals::shown(&state, repository).await {
            Ok(a) => a,
            Err(e) => return unavailable("cannot read run approvals", e),
        },
        None => Vec::new(),
    };
    let u = ProjectUsage {
        project: project.name.clone(),
        month,
        resources,
        jobs: jobs.into_iter().map(crate::queue::recent_job).collect(),
        now: held
            .into_iter()
            .map(
                |(resource, repository, run_id, job_id, state, since)| HeldJob {
                    resource,
                    repository,
                    run_id,
                    job_id,
                    state,
                    since,
                },
            )
            .collect(),
        run_approvals,
        spend,
    };
    let date = day.to_string();
    match render_project_usage(&u, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the page", e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::store::Write;
    use crate::{AppState, Secret, ServerConfig, router};

    use super::*;

    use crate::test_db::{Backend, Db};

    struct Live {
        base: String,
        http: reqwest::Client,
        state: Arc<AppState>,
        _db: Db,
    }

    fn example() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge")
    }

    /// The guard on the bundled example, on a real socket, with a SQLite file.
    async fn live() -> Live {
        live_on(example(), Backend::Sqlite).await
    }

    async fn live_on(repo: PathBuf, backend: Backend) -> Live {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = Db::new(backend).await;
        let mut config = ServerConfig::new(repo, db.url.clone(), Secret::new("s"));
        config.watch_interval = None;
        let state = AppState::new(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Live {
            base,
            http: reqwest::Client::new(),
            state,
            _db: db,
        }
    }

    impl Live {
        async fn get(&self, path: &str) -> (StatusCode, String, String) {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let ct = r
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, ct, r.text().await.unwrap())
        }
    }

    #[tokio::test]
    async fn the_static_pages_are_served_live_with_a_link_to_the_dashboard() {
        let g = live().await;
        let (s, ct, index) = g.get("/").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ct, "text/html; charset=utf-8");
        assert!(index.contains("<a href=\"resources/cirun-openstack-gpu-large.html\">"));
        assert!(index.contains("<a href=\"dashboard\">Usage</a>"));
        let (s, _, page) = g.get("/resources/cirun-openstack-gpu-large.html").await;
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("<a href=\"../projects/pytorch-cpu.html\">pytorch-cpu</a>"));
        // Live, the ledger's page of a resource links its queue now.
        assert!(page.contains(
            "<a href=\"../dashboard/resources/cirun-openstack-gpu-large#queue\">Its queue now</a>"
        ));
        // Without the extension too.
        let (s, _, same) = g.get("/resources/cirun-openstack-gpu-large").await;
        assert_eq!((s, same), (StatusCode::OK, page));
        let (s, ct, json) = g.get("/v1/grants.json").await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["version"], 1);
        let (s, _, json) = g.get("/v1/projects/pytorch-cpu.json").await;
        assert_eq!(s, StatusCode::OK);
        assert!(json.contains("\"name\": \"pytorch-cpu\""));
        let (s, ct, _) = g.get("/assets/search.js").await;
        assert_eq!(
            (s, ct.as_str()),
            (StatusCode::OK, "text/javascript; charset=utf-8")
        );
        for missing in [
            "/resources/nope.html",
            "/projects/..%2F..%2Fetc%2Fpasswd",
            "/v1/projects/nope.json",
            "/dashboard/resources/nope",
            "/dashboard/projects/nope",
        ] {
            let (s, _, _) = g.get(missing).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
        }
        // The guard's own routes still answer.
        let (s, _, _) = g.get("/healthz").await;
        assert_eq!(s, StatusCode::OK);
    }

    /// Served from a git checkout, the live project pages carry the grant history and the
    /// pending requests their pull requests, as the static site does.
    #[tokio::test]
    async fn live_pages_show_the_git_history_of_a_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("access");
        let run = |args: &[&str], at: &std::path::Path| {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .current_dir(at)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
        };
        run(
            &[
                "cp",
                "-r",
                example().to_str().unwrap(),
                repo.to_str().unwrap(),
            ],
            dir.path(),
        );
        run(&["git", "init", "-q", "-b", "main"], &repo);
        run(
            &[
                "git",
                "remote",
                "add",
                "origin",
                "https://github.com/octo-org/access.git",
            ],
            &repo,
        );
        run(&["git", "add", "-A"], &repo);
        run(
            &[
                "git",
                "-c",
                "user.name=Jaime",
                "-c",
                "user.email=j@example.org",
                "commit",
                "-q",
                "-m",
                "Grant GPUs to pytorch-cpu (#1203)",
            ],
            &repo,
        );
        let g = live_on(repo, Backend::Sqlite).await;
        let (s, _, json) = g.get("/v1/projects/pytorch-cpu.json").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let history = v["history"].as_array().expect("history read from git");
        assert!(!history.is_empty(), "{v}");
        assert!(
            history
                .iter()
                .all(|e| e["subject"] == "Grant GPUs to pytorch-cpu (#1203)"
                    && e["author"] == "Jaime"
                    && e["change"] == "granted"),
            "{v}"
        );
        let (_, _, requests) = g.get("/v1/requests.json").await;
        assert!(
            requests.contains("https://github.com/octo-org/access/pull/1203"),
            "{requests}"
        );
        let (_, _, page) = g.get("/projects/pytorch-cpu.html").await;
        assert!(page.contains("Grant GPUs to pytorch-cpu (#1203)"), "{page}");
    }

    /// A test on SQLite and on PostgreSQL.
    macro_rules! on_both {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )*};
    }

    on_both!(
        the_dashboard_charts_counted_minutes_and_lists_denials,
        the_dashboard_and_metrics_flag_a_project_far_above_its_usual_week,
        the_dashboard_shows_cost_by_month_and_the_worst_case,
    );

    async fn the_dashboard_charts_counted_minutes_and_lists_denials(backend: Backend) {
        let g = live_on(example(), backend).await;
        let day = today();
        let yesterday = day.yesterday().unwrap();
        g.state
            .store()
            .commit(vec![
                Write::Minutes {
                    job_id: 1,
                    project: "pytorch-cpu".into(),
                    resource: "cirun-openstack-gpu-large".into(),
                    day: day.to_string(),
                    minutes: 120,
                },
                Write::Minutes {
                    job_id: 2,
                    project: "xformers".into(),
                    resource: "cirun-openstack-gpu-large".into(),
                    day: yesterday.to_string(),
                    minutes: 30,
                },
                Write::Decision {
                    decision: DecisionRecord {
                        delivery_id: "d1".into(),
                        job_id: 3,
                        run_id: 4,
                        repository: "conda-forge/tinygrad-feedstock".into(),
                        project: Some("tinygrad".into()),
                        resource: Some("cirun-openstack-gpu-large".into()),
                        outcome: "deny".into(),
                        rule: Some("no-grant".into()),
                        message: Some("tinygrad holds no <grant>".into()),
                        decided_at: "2026-11-28T10:00:00Z".into(),
                        origin: "webhook".into(),
                    },
                    context: None,
                },
            ])
            .await
            .unwrap();
        let (s, _, html) = g.get("/dashboard").await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("<svg class=\"chart\""));
        assert!(html.contains("aria-label=\"cirun-openstack-gpu-large: minutes per week"));
        assert!(html.contains("<code>no-grant</code>"));
        assert!(html.contains("tinygrad holds no &lt;grant&gt;"));
        let (_, _, json) = g.get("/dashboard.json").await;
        let d: Dashboard = serde_json::from_str(&json).unwrap();
        let gpu = d
            .resources
            .iter()
            .find(|u| u.resource == "cirun-openstack-gpu-large")
            .unwrap();
        let week_total: u64 = gpu.weeks.iter().map(|w| w.minutes).sum();
        assert_eq!(week_total, 150);
        if yesterday.strftime("%Y-%m").to_string() == gpu.month {
            assert_eq!(gpu.month_minutes, 150);
            assert_eq!(gpu.top_projects[0].project, "pytorch-cpu");
        }
        let (s, _, html) = g
            .get("/dashboard/resources/cirun-openstack-gpu-large")
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("<a href=\"/dashboard/projects/pytorch-cpu\">pytorch-cpu</a>"));
        assert!(html.contains("<code>no-grant</code>"));
        let (s, _, html) = g.get("/dashboard/projects/tinygrad").await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("<code>no-grant</code>"));
        let (s, _, html) = g.get("/dashboard/projects/pytorch-cpu").await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains("<td class=\"num\">120</td>"), "{html}");
    }

    /// A project with 500 minutes today against 100 in each of its 8 previous weeks is far
    /// above its usual week: flagged on the dashboard and in `/metrics`; a steady one is not.
    async fn the_dashboard_and_metrics_flag_a_project_far_above_its_usual_week(backend: Backend) {
        let g = live_on(example(), backend).await;
        let day = today();
        let monday = week_start(day);
        let mut writes = Vec::new();
        let mut job = 0;
        let mut minutes = |project: &str, day: Date, minutes: i64| {
            job += 1;
            Write::Minutes {
                job_id: job,
                project: project.into(),
                resource: "cirun-openstack-gpu-large".into(),
                day: day.to_string(),
                minutes,
            }
        };
        writes.push(minutes("pytorch-cpu", day, 500));
        writes.push(minutes("xformers", day, 100));
        for k in 1..=8 {
            let earlier = monday - jiff::Span::new().weeks(k);
            writes.push(minutes("pytorch-cpu", earlier, 100));
            writes.push(minutes("xformers", earlier, 100));
        }
        g.state.store().commit(writes).await.unwrap();
        let (_, _, json) = g.get("/dashboard.json").await;
        let d: Dashboard = serde_json::from_str(&json).unwrap();
        assert_eq!(
            d.outliers,
            [OutlierRow {
                project: "pytorch-cpu".into(),
                minutes: 500,
                median: 100
            }]
        );
        let (_, _, html) = g.get("/dashboard").await;
        assert!(html.contains("Far above usual this week"), "{html}");
        let (_, _, metrics) = g.get("/metrics").await;
        assert!(
            metrics.contains("gatehouse_usage_outlier_minutes{project=\"pytorch-cpu\"} 500"),
            "{metrics}"
        );
        assert!(!metrics.contains("project=\"xformers\""), "{metrics}");
    }

    /// A resource with a price: its minutes cost money this month and last, and the worst
    /// month its cap allows is published (`/v1/costs.json`, and on the dashboard).
    async fn the_dashboard_shows_cost_by_month_and_the_worst_case(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("access");
        let out = std::process::Command::new("cp")
            .args(["-r", example().to_str().unwrap(), repo.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let file = repo.join("resources/cirun-openstack-gpu-large.yml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            format!("{text}cost: {{ per_hour: 0.6, currency: USD }}\n"),
        )
        .unwrap();
        let g = live_on(repo, backend).await;
        let day = today();
        let last_month = day.first_of_month().yesterday().unwrap();
        let minutes = |job_id: i64, day: Date, minutes: i64| Write::Minutes {
            job_id,
            project: "pytorch-cpu".into(),
            resource: "cirun-openstack-gpu-large".into(),
            day: day.to_string(),
            minutes,
        };
        g.state
            .store()
            .commit(vec![minutes(1, day, 100), minutes(2, last_month, 50)])
            .await
            .unwrap();
        let (_, _, json) = g.get("/dashboard.json").await;
        let d: Dashboard = serde_json::from_str(&json).unwrap();
        let gpu = d
            .resources
            .iter()
            .find(|u| u.resource == "cirun-openstack-gpu-large")
            .unwrap();
        // 0.6 an hour is 0.01 a minute.
        assert_eq!(gpu.month_cost.as_deref(), Some("1.00 USD"));
        let of = |month: Date| {
            let month = month.strftime("%Y-%m").to_string();
            d.spend
                .iter()
                .find(|s| {
                    s.month == month && s.resource.as_deref() == Some("cirun-openstack-gpu-large")
                })
                .map(|s| (s.minutes, s.cost.clone()))
        };
        assert_eq!(of(day), Some((100, Some("1.00 USD".into()))));
        assert_eq!(of(last_month), Some((50, Some("0.50 USD".into()))));
        // `quota: { concurrency: 4 }`: 4 machines for the whole month at 0.01 a minute.
        let worst = u64::try_from(day.days_in_month()).unwrap() * 1440 * 4;
        let expected = format!("{}.{:02}", worst / 100, worst % 100);
        let (s, _, json) = g.get("/v1/costs.json").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let row = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "cirun-openstack-gpu-large")
            .unwrap()
            .clone();
        assert_eq!(row["ceiling"], expected.as_str(), "{v}");
        let (_, _, html) = g.get("/dashboard").await;
        assert!(html.contains(&format!("{expected} USD")), "{html}");
        let (_, _, html) = g.get("/dashboard/projects/pytorch-cpu").await;
        assert!(html.contains("1.00 USD"), "{html}");
        // The project's own months (last month's 50 minutes cost 0.50) and its weekly chart.
        assert!(html.contains("<table id=\"spend-table\""), "{html}");
        assert!(
            html.contains("<td class=\"num\">50</td><td class=\"num\">0.50 USD</td>"),
            "{html}"
        );
        assert!(
            html.contains(
                "aria-label=\"pytorch-cpu on cirun-openstack-gpu-large: minutes per week"
            ),
            "{html}"
        );
    }
}
