//! The sponsor credit pools, live: `/pools` (every pool), `/pools/{name}` (one pool's figures,
//! burn-down chart and spending by project) and `GET /api/v1/pools` (the same figures as
//! JSON, amounts also in raw units). Read from the store at each request; the pages are
//! rendered by `gatehouse-site` from plain data.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::pools::Terms;
use gatehouse_site::pools::{PoolFigures, PoolPage, PoolView, burn_down_svg, view};
use gatehouse_site::{render_pool, render_pools};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::site_routes::{dashboard_page, not_found, page, site, unavailable};
use crate::state::AppState;
use crate::store::{Balance, Store, time_text};

/// One pool's figures from the store's books.
async fn figures(store: &Store, terms: &Terms, balance: Balance) -> anyhow::Result<PoolFigures> {
    let (by_day, by_project) = store.pool_spending(&terms.name).await?;
    let units = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(PoolFigures {
        by_day: by_day
            .into_iter()
            .filter_map(|(day, n)| Some((day.parse::<Date>().ok()?, units(n))))
            .collect(),
        by_project: by_project
            .into_iter()
            .map(|(p, n)| {
                (
                    if p.is_empty() {
                        "(no project)".into()
                    } else {
                        p
                    },
                    units(n),
                )
            })
            .collect(),
        reserved: balance.reserved,
    })
}

/// Every pool's view on `today`, in paying order.
async fn all_views(state: &AppState, today: Date) -> anyhow::Result<Vec<PoolView>> {
    let source = state.source.load_full();
    let mut views = Vec::new();
    for (terms, f) in all_figures(state.store(), source.credit.all()).await? {
        views.push(view(terms, &f, today).0);
    }
    Ok(views)
}

/// Each pool's figures from the store's books, in paying order.
async fn all_figures<'a>(
    store: &Store,
    pools: &'a [Terms],
) -> anyhow::Result<Vec<(&'a Terms, PoolFigures)>> {
    let balances = store.pool_balances(&time_text(Timestamp::now())).await?;
    let mut all = Vec::with_capacity(pools.len());
    for terms in pools {
        let balance = balances.get(&terms.name).copied().unwrap_or_default();
        all.push((terms, figures(store, terms, balance).await?));
    }
    Ok(all)
}

/// Every pool's page on `today` as the static site carries it (`gatehouse site --db`).
pub(crate) async fn pages(
    store: &Store,
    pools: &[Terms],
    today: Date,
) -> anyhow::Result<Vec<PoolPage>> {
    Ok(all_figures(store, pools)
        .await?
        .into_iter()
        .map(|(terms, f)| {
            let (view, burn) = view(terms, &f, today);
            PoolPage {
                chart: burn_down_svg(terms, &burn, today),
                view,
            }
        })
        .collect())
}

fn today() -> Date {
    jiff::tz::TimeZone::UTC.to_datetime(Timestamp::now()).date()
}

/// `/pools`.
pub(crate) async fn pools_page(State(state): State<Arc<AppState>>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let views = match all_views(&state, today()).await {
        Ok(v) => v,
        Err(e) => return unavailable("cannot read the pools' books", e),
    };
    let date = site.day.to_string();
    match render_pools(&views, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the pools", e.into()),
    }
}

/// `/pools/{name}`.
pub(crate) async fn pool_page(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let source = state.source.load_full();
    let Some(terms) = source.credit.get(&name) else {
        return not_found("pool");
    };
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let today = today();
    let read = async {
        let balances = state
            .store()
            .pool_balances(&time_text(Timestamp::now()))
            .await?;
        let balance = balances.get(&terms.name).copied().unwrap_or_default();
        figures(state.store(), terms, balance).await
    };
    let f = match read.await {
        Ok(f) => f,
        Err(e) => return unavailable("cannot read the pool's books", e),
    };
    let (v, burn) = view(terms, &f, today);
    let chart = burn_down_svg(terms, &burn, today);
    let date = site.day.to_string();
    match render_pool(&v, &chart, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the pool", e.into()),
    }
}

/// `GET /api/v1/pools`.
pub(crate) async fn pools_json(State(state): State<Arc<AppState>>) -> Response {
    match all_views(&state, today()).await {
        Ok(v) => Json(serde_json::json!({ "pools": v })).into_response(),
        Err(e) => unavailable("cannot read the pools' books", e),
    }
}
