//! Projects using far more than usual this week ([`gatehouse_core::outliers`]), read from the
//! minutes the guard counted: on the dashboard and in `/metrics`. Reading them reads nine weeks
//! of each project's weekly totals, so the answer is reused for [`FRESH_FOR`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::model::OutlierSettings;
use gatehouse_core::outliers::{Outlier, from_days, window};
use jiff::civil::Date;

use crate::state::AppState;
use crate::store::Store;

/// How long the outliers read once are reused (they are about a week).
pub const FRESH_FOR: Duration = Duration::from_secs(300);

/// The outliers of `today`, read at most every [`FRESH_FOR`] (one reader at a time).
pub(crate) async fn cached(state: &AppState, today: Date) -> anyhow::Result<Arc<Vec<Outlier>>> {
    let mut slot = state.outliers.lock().await;
    if let Some((at, day, found)) = slot.as_ref()
        && *day == today
        && at.elapsed() < FRESH_FOR
    {
        return Ok(found.clone());
    }
    let found = Arc::new(read(state, today).await?);
    *slot = Some((Instant::now(), today, found.clone()));
    Ok(found)
}

/// This week's outliers on `today`, by the access repository's `guard.outliers`.
pub(crate) async fn read(state: &AppState, today: Date) -> anyhow::Result<Vec<Outlier>> {
    let settings = state.source.load().outliers.clone();
    read_from(&state.store, &settings, today).await
}

/// This week's outliers on `today` by `settings`, read from `store`.
pub(crate) async fn read_from(
    store: &Store,
    settings: &OutlierSettings,
    today: Date,
) -> anyhow::Result<Vec<Outlier>> {
    let (from, until) = window(today, settings);
    let rows = store
        .project_week_minutes(&from.to_string(), &until.to_string())
        .await?;
    let rows = rows.into_iter().filter_map(|(project, day, minutes)| {
        Some((
            project,
            day.parse::<Date>().ok()?,
            u64::try_from(minutes).ok()?,
        ))
    });
    Ok(from_days(rows, today, settings))
}
