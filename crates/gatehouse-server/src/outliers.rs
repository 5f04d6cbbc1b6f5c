//! Projects using far more than usual this week ([`gatehouse_core::outliers`]), read from the
//! minutes the guard counted: on the dashboard and in `/metrics`.

use gatehouse_core::outliers::{Outlier, from_days, window};
use jiff::civil::Date;

use crate::state::AppState;

/// This week's outliers on `today`, by the access repository's `guard.outliers`.
pub(crate) async fn read(state: &AppState, today: Date) -> anyhow::Result<Vec<Outlier>> {
    let settings = state.source.load().outliers.clone();
    let (from, until) = window(today, &settings);
    let rows = state
        .store
        .project_day_minutes(&from.to_string(), &until.to_string())
        .await?;
    let rows = rows.into_iter().filter_map(|(project, day, minutes)| {
        Some((
            project,
            day.parse::<Date>().ok()?,
            u64::try_from(minutes).ok()?,
        ))
    });
    Ok(from_days(rows, today, &settings))
}
