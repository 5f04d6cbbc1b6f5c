//! Usage as the dashboard shows it: plain data in, HTML and inline SVG out.
//!
//! The guard (`gatehouse serve`) reads minutes and denied jobs from its store and fills these
//! structs; nothing here knows about databases. Weeks start on Monday; a chart always covers
//! [`WEEKS`] weeks ending with the week of `today`, oldest first, with zero for a week without
//! jobs, so charts of different resources line up.

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// How many weeks a usage chart covers.
pub const WEEKS: usize = 12;

/// Minutes used in one week.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WeekMinutes {
    /// The Monday that starts the week, `YYYY-MM-DD`.
    pub week: String,
    pub minutes: u64,
}

/// Minutes of one project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectMinutes {
    pub project: String,
    pub minutes: u64,
}

/// One resource's usage: the chart, this month against its quota, and who uses it most.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceUsage {
    pub resource: String,
    /// [`WEEKS`] weeks, oldest first.
    pub weeks: Vec<WeekMinutes>,
    /// The calendar month quotas count (`YYYY-MM`).
    pub month: String,
    pub month_minutes: u64,
    /// The resource's `quota.minutes_per_month`, if any.
    pub minutes_per_month: Option<u64>,
    /// The resource's `quota.project_minutes_per_month`, if any.
    pub project_minutes_per_month: Option<u64>,
    /// This month's heaviest users, most minutes first.
    pub top_projects: Vec<ProjectMinutes>,
    /// What this month's minutes cost (`12.34 USD`), when the resource has a price.
    #[serde(default)]
    pub month_cost: Option<String>,
}

/// A job the guard denied, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeniedJob {
    pub decided_at: String,
    pub repository: String,
    pub resource: Option<String>,
    pub job_id: i64,
    pub run_id: i64,
    /// The stable rule code (`no-grant`, `event-not-allowed`, ...).
    pub rule: Option<String>,
    pub message: Option<String>,
    /// Who decided: `webhook` (the guard, when the job was queued) or `gate` (the runner's
    /// gate, before the job's first step).
    #[serde(default = "webhook")]
    pub origin: String,
}

fn webhook() -> String {
    "webhook".into()
}

/// One project's use of one resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectResourceUsage {
    pub resource: String,
    pub weeks: Vec<WeekMinutes>,
    pub month_minutes: u64,
    pub project_minutes_per_month: Option<u64>,
    /// What this month's minutes cost, when the resource has a price.
    #[serde(default)]
    pub month_cost: Option<String>,
}

/// One project's usage and its recent managed jobs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProjectUsage {
    pub project: String,
    pub month: String,
    pub resources: Vec<ProjectResourceUsage>,
    /// The guard's latest decisions about the project's managed jobs (allowed, denied, a run
    /// cancelled for a cap or a time limit), newest first.
    #[serde(default)]
    pub jobs: Vec<crate::queue::RecentJob>,
    /// The project's jobs holding a machine or waiting for one against a cap now, oldest
    /// first.
    #[serde(default)]
    pub now: Vec<crate::queue::HeldJob>,
    /// The project's recent run approvals (`/gatehouse run <sha>`), newest first.
    #[serde(default)]
    pub run_approvals: Vec<RunApprovalShown>,
    /// The project's minutes and their cost by month, newest first, per provider and
    /// resource ([`spend`] of its own months).
    #[serde(default)]
    pub spend: Vec<Spend>,
}

/// A run approval as a project's page shows it: who approved which commit of which pull
/// request for which resources, when, until when, and the jobs that ran under it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunApprovalShown {
    /// `owner/name` of the project's repository.
    pub repository: String,
    pub pull_number: i64,
    pub head_sha: String,
    /// `owner/name` the commit comes from (a fork's, for an outside contributor).
    pub head_repository: String,
    /// Empty: every resource the project holds.
    pub resources: Vec<String>,
    pub approver_login: String,
    pub approver_id: i64,
    pub approved_at: String,
    pub expires_at: String,
    pub jobs: Vec<ApprovedJobShown>,
}

/// A job allowed under a run approval.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApprovedJobShown {
    pub job_id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    /// Its minutes, once it completed.
    pub minutes: Option<i64>,
}

/// Minutes and their cost in one month, on one resource or (`resource: None`) on every
/// resource of a provider in one currency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Spend {
    /// `YYYY-MM`.
    pub month: String,
    pub provider: String,
    pub resource: Option<String>,
    pub minutes: u64,
    /// `12.34 USD`; `None` without a price.
    pub cost: Option<String>,
}

/// Every resource's usage, for the dashboard's front page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dashboard {
    pub month: String,
    pub resources: Vec<ResourceUsage>,
    /// Newest first, every project.
    pub denied: Vec<DeniedJob>,
    /// The months before this one and this one, newest first: per provider (and currency),
    /// then per resource.
    #[serde(default)]
    pub spend: Vec<Spend>,
    /// The worst-case monthly cost the caps allow.
    #[serde(default)]
    pub costs: crate::cost::CostView,
    /// Projects using far more than their own recent median this week, largest first.
    #[serde(default)]
    pub outliers: Vec<OutlierRow>,
}

/// A project using far more than usual this week.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutlierRow {
    pub project: String,
    /// Its minutes this week.
    pub minutes: u64,
    /// The median of its previous weeks.
    pub median: u64,
}

pub use gatehouse_core::outliers::week_start;

/// The Mondays of the [`WEEKS`] weeks ending with the week of `today`, oldest first.
pub fn chart_weeks(today: Date) -> Vec<Date> {
    let last = week_start(today);
    (0..WEEKS as i64)
        .rev()
        .filter_map(|i| last.checked_sub(jiff::Span::new().weeks(i)).ok())
        .collect()
}

/// The first day of the oldest charted week: read minutes from this day on.
pub fn chart_start(today: Date) -> Date {
    chart_weeks(today)
        .first()
        .copied()
        .unwrap_or_else(|| week_start(today))
}

/// Sums minutes per day into the [`WEEKS`] weeks ending with `today`'s; days outside them are
/// ignored.
pub fn weekly(today: Date, days: impl IntoIterator<Item = (Date, u64)>) -> Vec<WeekMinutes> {
    let weeks = chart_weeks(today);
    let mut sums: BTreeMap<Date, u64> = weeks.iter().map(|w| (*w, 0)).collect();
    for (day, minutes) in days {
        if let Some(m) = sums.get_mut(&week_start(day)) {
            *m = m.saturating_add(minutes);
        }
    }
    sums.into_iter()
        .map(|(w, minutes)| WeekMinutes {
            week: w.to_string(),
            minutes,
        })
        .collect()
}

/// Escapes text for SVG/HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar chart of minutes per week as inline SVG: one `<rect>` per week, each with a `<title>`
/// (a tooltip, read by screen readers), and an `aria-label` that says it all in one sentence.
/// Drawn by hand: no script, no library, so it shows in any browser and in the static files.
pub fn chart_svg(what: &str, weeks: &[WeekMinutes]) -> String {
    const W: u32 = 600;
    const H: u32 = 180;
    const TOP: u32 = 20;
    const BOTTOM: u32 = 30;
    const LEFT: u32 = 50;
    let plot_h = H - TOP - BOTTOM;
    let max = weeks.iter().map(|w| w.minutes).max().unwrap_or(0);
    let scale_max = nice_ceiling(max);
    let n = weeks.len().max(1) as u32;
    let slot = (W - LEFT - 10) / n;
    let bar = slot.saturating_sub(6).max(2);
    let total: u64 = weeks.iter().map(|w| w.minutes).sum();
    let label = format!(
        "{what}: minutes per week for the {} weeks from {} ({total} minutes in all, at most {max} in one week)",
        weeks.len(),
        weeks.first().map_or("-", |w| w.week.as_str()),
    );
    let mut s = String::with_capacity(600 + weeks.len() * 220);
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(&label),
        escape(&label)
    );
    // Axis and the scale's top value.
    let base = TOP + plot_h;
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" class="axis"/><text x="{}" y="{}" class="tick" text-anchor="end">{scale_max}</text><text x="{}" y="{base}" class="tick" text-anchor="end">0</text>"#,
        W - 10,
        LEFT - 4,
        TOP + 4,
        LEFT - 4
    );
    for (i, w) in weeks.iter().enumerate() {
        let x = LEFT + 3 + i as u32 * slot;
        let h = if scale_max == 0 {
            0
        } else {
            ((w.minutes as f64 / scale_max as f64) * f64::from(plot_h)).round() as u32
        };
        let y = base - h;
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x}" y="{y}" width="{bar}" height="{h}"><title>week of {}: {} minutes</title></rect>"#,
            escape(&w.week),
            w.minutes
        );
        // Every other week is labelled (month-day) so the labels do not overlap on a phone.
        if i % 2 == 0 || i + 1 == weeks.len() {
            let short = w.week.get(5..).unwrap_or(&w.week);
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
                x + bar / 2,
                base + 16,
                escape(short)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A round number at least `v`, for the top of a chart's scale (1, 2, 5 × 10^n).
fn nice_ceiling(v: u64) -> u64 {
    if v == 0 {
        return 0;
    }
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= v {
        magnitude = magnitude.saturating_mul(10);
    }
    for step in [1u64, 2, 5, 10] {
        let c = magnitude.saturating_mul(step);
        if c >= v {
            return c;
        }
    }
    v
}

/// Minutes and cost per month: `rows` are `(resource, month, minutes)`; each resource's
/// provider and price come from `resources`. Newest month first; within a month, each
/// provider's total per currency (priced resources) and of its unpriced resources, then each
/// resource. Resources no longer in the ledger are left out.
pub fn spend(
    rows: &[(String, String, u64)],
    resources: &[crate::ledger::ResourceView],
) -> Vec<Spend> {
    // (month, provider, currency or "" when unpriced) -> (minutes, micros)
    let mut providers: BTreeMap<(&str, &str, &str), (u64, u128)> = BTreeMap::new();
    let mut each: BTreeMap<(&str, &str, &str), Spend> = BTreeMap::new();
    for (resource, month, minutes) in rows {
        let Some(r) = resources.iter().find(|r| r.name == *resource) else {
            continue;
        };
        let price = r.cost.as_ref().map(|c| &c.price);
        let currency = price.map_or("", |p| p.currency.as_str());
        let micros = price.map_or(0, |p| p.of_minutes(*minutes).micros);
        let total = providers
            .entry((month.as_str(), r.provider.as_str(), currency))
            .or_default();
        total.0 += minutes;
        total.1 += micros;
        let row = each
            .entry((month.as_str(), r.provider.as_str(), resource.as_str()))
            .or_insert_with(|| Spend {
                month: month.clone(),
                provider: r.provider.clone(),
                resource: Some(resource.clone()),
                minutes: 0,
                cost: None,
            });
        row.minutes += minutes;
        row.cost = price.map(|p| p.of_minutes(row.minutes).to_string());
    }
    let mut months: Vec<&str> = providers.keys().map(|(m, _, _)| *m).collect();
    months.dedup();
    let mut out = Vec::new();
    for month in months.into_iter().rev() {
        for ((_, provider, currency), (minutes, micros)) in providers
            .range((month, "", "")..)
            .take_while(|((m, _, _), _)| *m == month)
        {
            out.push(Spend {
                month: month.to_string(),
                provider: provider.to_string(),
                resource: None,
                minutes: *minutes,
                cost: (!currency.is_empty()).then(|| {
                    gatehouse_core::cost::Money {
                        micros: *micros,
                        currency: currency.to_string(),
                    }
                    .to_string()
                }),
            });
        }
        out.extend(
            each.range((month, "", "")..)
                .take_while(|((m, _, _), _)| *m == month)
                .map(|(_, s)| s.clone()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Weekday, date};

    #[test]
    fn weeks_start_on_monday_and_end_with_this_week() {
        // 2026-11-29 is a Sunday.
        assert_eq!(week_start(date(2026, 11, 29)), date(2026, 11, 23));
        assert_eq!(week_start(date(2026, 11, 23)), date(2026, 11, 23));
        let w = chart_weeks(date(2026, 11, 29));
        assert_eq!(w.len(), WEEKS);
        assert_eq!(w[WEEKS - 1], date(2026, 11, 23));
        assert_eq!(w[0], date(2026, 9, 7));
        assert_eq!(w[0].weekday(), Weekday::Monday);
    }

    #[test]
    fn minutes_fall_into_their_week_and_old_days_are_dropped() {
        let today = date(2026, 11, 29);
        let weeks = weekly(
            today,
            [
                (date(2026, 11, 23), 10),
                (date(2026, 11, 29), 5),
                (date(2026, 11, 22), 7),
                (date(2025, 1, 1), 1000),
            ],
        );
        assert_eq!(weeks.len(), WEEKS);
        assert_eq!(weeks[WEEKS - 1].minutes, 15);
        assert_eq!(weeks[WEEKS - 2].minutes, 7);
        assert_eq!(weeks.iter().map(|w| w.minutes).sum::<u64>(), 22);
    }

    #[test]
    fn the_chart_has_a_bar_with_a_title_per_week_and_escapes_its_label() {
        let weeks = weekly(date(2026, 11, 29), [(date(2026, 11, 24), 90)]);
        let svg = chart_svg("gpu <&> \"x\"", &weeks);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), WEEKS);
        assert!(svg.contains("<title>week of 2026-11-23: 90 minutes</title>"));
        assert!(svg.contains("aria-label=\"gpu &lt;&amp;&gt; &quot;x&quot;: minutes per week"));
        assert!(!svg.contains("<&>"));
        // The tallest bar fills the plot up to the scale's top (100 for 90).
        assert!(svg.contains(">100</text>"), "{svg}");
    }

    #[test]
    fn scale_tops_are_round() {
        assert_eq!(nice_ceiling(0), 0);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(90), 100);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(4999), 5000);
    }
}
