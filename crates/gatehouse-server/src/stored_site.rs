//! What `gatehouse site --db URL` adds to the static site from the guard's database, read
//! once: the usage figures the live dashboard shows (a "minutes this month" column and a chart
//! per resource, minutes and cost by month for the organisation and for each project) and
//! every sponsor pool's page with its burn-down chart. The pages themselves
//! are `gatehouse-site`'s, the same the guard serves.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use gatehouse_core::Repo;
use gatehouse_site::pools::PoolPage;
use gatehouse_site::usage::{Spend, chart_start, spend, week_start};
use gatehouse_site::{Dashboard, Ledger};
use jiff::civil::Date;

use crate::store::Store;

/// The figures a static site shows from the guard's database.
#[derive(Debug)]
pub struct StoredFigures {
    pub usage: Dashboard,
    pub pools: Vec<PoolPage>,
    /// Each project's minutes and cost by month (projects with none are left out).
    pub project_spend: BTreeMap<String, Vec<Spend>>,
}

/// Reads the usage and pool figures of `repo` (whose ledger is `ledger`) on `today` from the
/// guard's database at `url`. A SQLite file that does not exist is an error (it would
/// otherwise be created empty, and the site would show no usage as if there were none).
pub async fn read(
    url: &str,
    repo: &Repo,
    ledger: &Ledger,
    today: Date,
) -> anyhow::Result<StoredFigures> {
    if let Some(path) = crate::store::sqlite_file(url)
        && !Path::new(path).is_file()
    {
        bail!(
            "there is no guard database at `{path}` (from --db {url}); give the database `gatehouse serve --db` writes"
        );
    }
    let store = Store::connect(url).await?;
    let settings = repo
        .settings
        .as_ref()
        .map(|s| s.value.guard.outliers.clone())
        .unwrap_or_default();
    let closed = store
        .weekly_usage(
            &chart_start(today).to_string(),
            &week_start(today).to_string(),
        )
        .await?;
    let outliers = crate::outliers::read_from(&store, &settings, today).await?;
    let usage = crate::site_routes::dashboard_of(&store, ledger, today, &closed, &outliers).await?;
    let pools =
        crate::pool_pages::pages(&store, &gatehouse_core::pools::terms(repo), today).await?;
    let first_month = crate::site_routes::first_spend_month(today);
    let months = store.months_by_project(&first_month).await?;
    let project_spend = ledger
        .projects
        .iter()
        // The store keeps project names lower-cased.
        .filter_map(|p| {
            let months = months.get(&p.name.to_lowercase())?;
            Some((p.name.clone(), spend(months, &ledger.resources)))
        })
        .collect();
    Ok(StoredFigures {
        usage,
        pools,
        project_spend,
    })
}
