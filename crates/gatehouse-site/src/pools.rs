//! The public pages of sponsor credit pools (`/pools`, `/pools/<name>`): what each sponsor's
//! credit bought (spent, by which projects), what the running jobs hold reserved, a burn-down
//! chart with the forecast at the current rate and the day it runs out, and the end date.
//! Plain data in, HTML and SVG out: the guard fills it from its store, live or for the static
//! site (`gatehouse site --db URL`).

use std::fmt::Write as _;

use gatehouse_core::pools::{BurnDown, Terms, Unit, burn_down};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::usage::escape;

/// A pool as its page shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PoolView {
    pub name: String,
    pub sponsor: String,
    pub url: Option<String>,
    /// `USD`, `EUR`, ... or `minutes`.
    pub unit: String,
    pub credit: String,
    pub spent: String,
    /// Held by jobs running now (their expected cost).
    pub reserved: String,
    /// What is left after what was spent and what is reserved.
    pub left: String,
    /// Spent and reserved, in percent of the credit (rounded down).
    pub used_percent: u64,
    pub start: String,
    pub end: String,
    /// `active`, `not started`, `ended` or `used up`.
    pub status: String,
    /// Spent per day at the current rate.
    pub per_day: String,
    /// The day the credit runs out at that rate, when before the end.
    pub runs_out: Option<String>,
    pub resources: Vec<String>,
    /// Empty: every project with a grant of its resources.
    pub projects: Vec<String>,
    /// Spent per project, most first.
    pub by_project: Vec<ProjectSpend>,
    /// The highest alert threshold reached, in percent.
    pub alert: Option<u32>,
    /// Raw units, for the JSON API: millionths of the currency, or minutes.
    pub credit_units: u64,
    pub spent_units: u64,
    pub reserved_units: u64,
}

/// What one project's jobs spent of a pool.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectSpend {
    pub project: String,
    pub spent: String,
    pub units: u64,
}

/// One pool's page as the static site carries it (`gatehouse site --db URL`): its view and its
/// burn-down chart ([`burn_down_svg`]).
#[derive(Clone, Debug, Default)]
pub struct PoolPage {
    pub view: PoolView,
    pub chart: String,
}

/// What the guard's store says of one pool.
#[derive(Clone, Debug, Default)]
pub struct PoolFigures {
    /// Units settled per day.
    pub by_day: Vec<(Date, u64)>,
    /// Units settled per project.
    pub by_project: Vec<(String, u64)>,
    /// Units reserved by jobs running now.
    pub reserved: u64,
}

/// A pool's page view and its burn-down on `today`.
pub fn view(terms: &Terms, figures: &PoolFigures, today: Date) -> (PoolView, BurnDown) {
    let b = burn_down(terms.credit, terms.start, terms.end, today, &figures.by_day);
    let used = b.spent.saturating_add(figures.reserved);
    let left = terms.credit.saturating_sub(used);
    let used_percent = if terms.credit == 0 {
        100
    } else {
        (u128::from(used) * 100 / u128::from(terms.credit)) as u64
    };
    let status = if today < terms.start {
        "not started"
    } else if today > terms.end {
        "ended"
    } else if left == 0 {
        "used up"
    } else {
        "active"
    };
    let mut by_project: Vec<ProjectSpend> = figures
        .by_project
        .iter()
        .map(|(project, units)| ProjectSpend {
            project: project.clone(),
            spent: terms.show(*units),
            units: *units,
        })
        .collect();
    by_project.sort_by(|a, b| b.units.cmp(&a.units).then(a.project.cmp(&b.project)));
    let view = PoolView {
        name: terms.name.clone(),
        sponsor: terms.sponsor.clone(),
        url: terms.url.clone(),
        unit: match &terms.unit {
            Unit::Money(c) => c.clone(),
            Unit::Minutes => "minutes".into(),
        },
        credit: terms.show(terms.credit),
        spent: terms.show(b.spent),
        reserved: terms.show(figures.reserved),
        left: terms.show(left),
        used_percent,
        start: terms.start.to_string(),
        end: terms.end.to_string(),
        status: status.into(),
        per_day: terms.show(b.per_day),
        runs_out: b.runs_out.map(|d| d.to_string()),
        resources: terms.resources.iter().cloned().collect(),
        projects: terms.projects.iter().cloned().collect(),
        by_project,
        alert: gatehouse_core::pools::alert_reached(&terms.alerts, terms.credit, b.spent),
        credit_units: terms.credit,
        spent_units: b.spent,
        reserved_units: figures.reserved,
    };
    (view, b)
}

/// The burn-down chart as inline SVG: the credit left at the end of each day from the start to
/// today (a line), the forecast at the current rate from today on (a dashed line), and the end
/// date (a vertical line). Every part has a `<title>`, and the `aria-label` says it in words.
pub fn burn_down_svg(terms: &Terms, b: &BurnDown, today: Date) -> String {
    const W: f64 = 600.0;
    const H: f64 = 200.0;
    const TOP: f64 = 20.0;
    const BOTTOM: f64 = 30.0;
    const LEFT: f64 = 90.0;
    const RIGHT: f64 = 10.0;
    let days = (terms.end - terms.start).get_days().max(1) as f64;
    let x = |d: Date| {
        let i = ((d - terms.start).get_days() as f64).clamp(0.0, days);
        LEFT + i / days * (W - LEFT - RIGHT)
    };
    let credit = terms.credit.max(1) as f64;
    let y = |units: u64| TOP + (1.0 - units as f64 / credit) * (H - TOP - BOTTOM);
    let forecast = match b.runs_out {
        Some(d) => format!(
            "at this rate it runs out on {d}, before its end on {}",
            terms.end
        ),
        None if b.left == 0 => "it is used up".to_string(),
        None => format!("at this rate it lasts until its end on {}", terms.end),
    };
    let label = format!(
        "{}: {} of {} left on {today}, spending {} a day; {forecast}",
        terms.name,
        terms.show(b.left),
        terms.show(terms.credit),
        terms.show(b.per_day),
    );
    let mut s = String::with_capacity(1200 + b.history.len() * 16);
    let _ = write!(
        s,
        r#"<svg class="chart burn-down" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{l}"><title>{l}</title>"#,
        l = escape(&label)
    );
    let base = H - BOTTOM;
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" class="axis"/><text x="{}" y="{}" class="tick" text-anchor="end">{}</text><text x="{}" y="{base}" class="tick" text-anchor="end">0</text><text x="{LEFT}" y="{}" class="tick" text-anchor="start">{}</text><text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"#,
        W - RIGHT,
        LEFT - 4.0,
        TOP + 4.0,
        escape(&terms.show(terms.credit)),
        LEFT - 4.0,
        base + 16.0,
        terms.start,
        W - RIGHT,
        base + 16.0,
        terms.end,
    );
    if !b.history.is_empty() {
        let mut points = format!("{:.1},{:.1}", x(terms.start), y(terms.credit));
        for (day, left) in &b.history {
            let _ = write!(points, " {:.1},{:.1}", x(*day), y(*left));
        }
        let _ = write!(
            s,
            r#"<polyline class="spent" fill="none" stroke="currentColor" stroke-width="2" points="{points}"><title>left at the end of each day from {} to {}</title></polyline>"#,
            terms.start,
            b.history.last().map_or(today, |(d, _)| *d)
        );
    }
    if b.per_day > 0 && b.left > 0 && today < terms.end {
        let until = b.runs_out.unwrap_or(terms.end);
        let days_on = (until - today).get_days().max(0) as u64;
        let at_end = b.left.saturating_sub(b.per_day.saturating_mul(days_on));
        let _ = write!(
            s,
            r#"<line class="forecast" stroke="currentColor" stroke-dasharray="6 4" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"><title>forecast: {forecast}</title></line>"#,
            x(today),
            y(b.left),
            x(until),
            y(at_end),
        );
    }
    let _ = write!(
        s,
        r#"<line class="end" stroke="currentColor" x1="{e:.1}" y1="{TOP}" x2="{e:.1}" y2="{base}"><title>the pool ends on {}</title></line></svg>"#,
        terms.end,
        e = x(terms.end),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use std::collections::{BTreeMap, BTreeSet};

    fn terms(credit: u64) -> Terms {
        Terms {
            name: "cloud".into(),
            sponsor: "Cloud <Inc>".into(),
            url: None,
            unit: Unit::Minutes,
            credit,
            start: date(2026, 11, 1),
            end: date(2026, 12, 31),
            resources: BTreeSet::from(["gpu".to_string()]),
            projects: BTreeSet::new(),
            alerts: vec![80, 100],
            order: 1,
            per_minute: BTreeMap::from([("gpu".to_string(), 1)]),
        }
    }

    fn figures() -> PoolFigures {
        PoolFigures {
            by_day: (1..=20).map(|d| (date(2026, 11, d), 100)).collect(),
            by_project: vec![("numpy".into(), 500), ("pytorch".into(), 1500)],
            reserved: 300,
        }
    }

    #[test]
    fn the_view_counts_what_is_spent_and_held() {
        let today = date(2026, 11, 20);
        let (v, b) = view(&terms(3000), &figures(), today);
        assert_eq!(
            (v.spent.as_str(), v.reserved.as_str()),
            ("2000 minutes", "300 minutes")
        );
        assert_eq!(v.left, "700 minutes");
        assert_eq!(v.used_percent, 76);
        assert_eq!(v.status, "active");
        assert_eq!(v.by_project[0].project, "pytorch");
        assert_eq!(v.alert, None);
        // 1000 left of what was spent, at 100 a day: runs out on 2026-11-30.
        assert_eq!(v.runs_out.as_deref(), Some("2026-11-30"));
        assert_eq!(b.left, 1000);
        // Spent and reserved reach the whole credit: used up; 2000 of 2000 spent: alert 100.
        let (v, _) = view(&terms(2000), &figures(), today);
        assert_eq!(
            (v.status.as_str(), v.alert, v.left.as_str()),
            ("used up", Some(100), "0 minutes")
        );
        let (v, _) = view(&terms(3000), &figures(), date(2027, 1, 1));
        assert_eq!(v.status, "ended");
    }

    #[test]
    fn the_burn_down_draws_history_forecast_and_end_and_says_it_in_words() {
        let today = date(2026, 11, 20);
        let t = terms(3000);
        let (_, b) = view(&t, &figures(), today);
        let svg = burn_down_svg(&t, &b, today);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline class=\"spent\"").count(), 1);
        // The start point and one per day.
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 21);
        assert!(svg.contains("class=\"forecast\""));
        assert!(
            svg.contains("it runs out on 2026-11-30, before its end on 2026-12-31"),
            "{svg}"
        );
        assert!(svg.contains("<title>the pool ends on 2026-12-31</title>"));
        // Used up: no forecast line, and the words say so.
        let t = terms(2000);
        let (_, b) = view(&t, &figures(), today);
        let svg = burn_down_svg(&t, &b, today);
        assert!(!svg.contains("class=\"forecast\""));
        assert!(svg.contains("it is used up"));
    }
}
