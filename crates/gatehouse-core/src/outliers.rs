//! Projects using far more than usual: conda-forge's core asked to be warned when a repository
//! ships a lot of jobs (conda-forge-webservices#444). A project is flagged when its minutes this
//! week are at least `min_minutes` and more than `factor` times the median of its own previous
//! `weeks` weeks ([`OutlierSettings`]; by default 4 times the median of 8 weeks). A week without
//! jobs counts as 0, so a project new to a resource is flagged once it uses `min_minutes`.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::model::OutlierSettings;

/// A flagged project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outlier {
    pub project: String,
    /// Its minutes this week.
    pub minutes: u64,
    /// The median of its minutes in the previous weeks.
    pub median: u64,
}

/// The projects whose minutes this week (`this_week`: project → minutes) exceed their own
/// median over `previous` (one map per earlier week, in any order) as `settings` say; the
/// largest users first.
pub fn outliers(
    this_week: &BTreeMap<String, u64>,
    previous: &[BTreeMap<String, u64>],
    settings: &OutlierSettings,
) -> Vec<Outlier> {
    let mut found: Vec<Outlier> = this_week
        .iter()
        .filter(|(_, minutes)| **minutes >= settings.min_minutes)
        .filter_map(|(project, &minutes)| {
            let mut weeks: Vec<u64> = previous
                .iter()
                .map(|w| w.get(project).copied().unwrap_or(0))
                .collect();
            let median = median(&mut weeks);
            (u128::from(minutes) > u128::from(settings.factor) * u128::from(median)).then(|| {
                Outlier {
                    project: project.clone(),
                    minutes,
                    median,
                }
            })
        })
        .collect();
    found.sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.project.cmp(&b.project)));
    found
}

/// The days to read for [`from_days`] on `today`: from the Monday `settings.weeks` weeks before
/// this week's, up to and without tomorrow.
pub fn window(today: Date, settings: &OutlierSettings) -> (Date, Date) {
    let monday = week_start(today);
    let from = monday
        .checked_sub(jiff::Span::new().weeks(i64::from(weeks_of(settings))))
        .unwrap_or(monday);
    (from, today.tomorrow().unwrap_or(today))
}

/// The outliers of `today`'s week from minutes per project and day (`rows`, days in
/// [`window`]; a project's name is compared as given).
pub fn from_days(
    rows: impl IntoIterator<Item = (String, Date, u64)>,
    today: Date,
    settings: &OutlierSettings,
) -> Vec<Outlier> {
    let monday = week_start(today);
    let weeks = weeks_of(settings) as usize;
    let mut this_week: BTreeMap<String, u64> = BTreeMap::new();
    let mut previous: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); weeks];
    for (project, day, minutes) in rows {
        if day >= monday {
            *this_week.entry(project).or_default() += minutes;
            continue;
        }
        let back = (monday - day).get_days().max(1) as usize;
        let week = (back - 1) / 7;
        if let Some(w) = previous.get_mut(week) {
            *w.entry(project).or_default() += minutes;
        }
    }
    outliers(&this_week, &previous, settings)
}

/// The most weeks a median spans: `check` refuses more, and a file it would refuse is read
/// as if it said this many (a year of weeks, not the billions of a hostile number).
pub const MAX_WEEKS: u32 = 52;

fn weeks_of(settings: &OutlierSettings) -> u32 {
    settings.weeks.min(MAX_WEEKS)
}

/// The Monday of the week `day` falls in: weeks start on Monday everywhere gatehouse counts
/// by week (charts, outliers, the store's weekly totals).
pub fn week_start(day: Date) -> Date {
    let back = i64::from(day.weekday().to_monday_zero_offset());
    day.checked_sub(jiff::Span::new().days(back)).unwrap_or(day)
}

/// The median (the lower middle of an even count; 0 of none).
fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(p, m)| (p.to_string(), *m)).collect()
    }

    #[test]
    fn a_hostile_number_of_weeks_reads_a_year() {
        let s = OutlierSettings {
            weeks: u32::MAX,
            ..OutlierSettings::default()
        };
        let today = jiff::civil::date(2026, 12, 2);
        let (from, _) = window(today, &s);
        assert_eq!(
            from,
            jiff::civil::date(2025, 12, 1),
            "52 weeks before this Monday"
        );
        // One year of a steady 100 a week: 500 this week is more than 4 times its median.
        let rows = (1..=364).map(|back| {
            let day = today.checked_sub(jiff::Span::new().days(back)).unwrap();
            (
                "steady".to_string(),
                day,
                if back % 7 == 0 { 100 } else { 0 },
            )
        });
        let rows = rows.chain([("steady".to_string(), today, 500)]);
        let found = from_days(rows, today, &s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].median, 100);
    }

    #[test]
    fn a_project_far_above_its_own_median_is_flagged() {
        let s = OutlierSettings::default();
        // Eight previous weeks: `steady` ran 100 a week, `spiky` 100 but once 2,000 (its
        // median stays 100), `new` nothing.
        let mut previous: Vec<BTreeMap<String, u64>> = (0..8)
            .map(|_| week(&[("steady", 100), ("spiky", 100)]))
            .collect();
        previous[3] = week(&[("steady", 100), ("spiky", 2000)]);
        let this = week(&[
            ("steady", 400), // exactly 4 times: not more
            ("spiky", 401),  // more than 4 times 100
            ("new", 60),     // from nothing, at the floor
            ("tiny", 59),    // from nothing, below the floor
        ]);
        let found = outliers(&this, &previous, &s);
        assert_eq!(
            found,
            [
                Outlier {
                    project: "spiky".into(),
                    minutes: 401,
                    median: 100
                },
                Outlier {
                    project: "new".into(),
                    minutes: 60,
                    median: 0
                },
            ]
        );
        // A factor of 5 keeps `spiky` in line.
        let s = OutlierSettings {
            factor: 5,
            ..OutlierSettings::default()
        };
        let found = outliers(&this, &previous, &s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].project, "new");
    }

    #[test]
    fn days_fall_into_their_weeks() {
        // Thursday 2026-12-03: this week began Monday 2026-11-30; eight weeks before it began
        // on 2026-10-05.
        let today = jiff::civil::date(2026, 12, 3);
        let s = OutlierSettings::default();
        assert_eq!(
            window(today, &s),
            (
                jiff::civil::date(2026, 10, 5),
                jiff::civil::date(2026, 12, 4)
            )
        );
        let mut rows = vec![("numpy".to_string(), jiff::civil::date(2026, 12, 1), 500)];
        // 100 minutes in each previous week, on its Sunday and its Monday alternately.
        for k in 0..8i64 {
            let monday = jiff::civil::date(2026, 11, 23) - jiff::Span::new().weeks(k);
            let day = if k % 2 == 0 {
                monday
            } else {
                monday + jiff::Span::new().days(6)
            };
            rows.push(("numpy".into(), day, 100));
        }
        let found = from_days(rows.clone(), today, &s);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].minutes, found[0].median), (500, 100));
        // 400 this week is not more than 4 times 100.
        rows[0].2 = 400;
        assert!(from_days(rows, today, &s).is_empty());
    }
}
