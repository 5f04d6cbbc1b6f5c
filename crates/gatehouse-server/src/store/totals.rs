//! The usage totals: a counted job's minutes added to its project's month, its resource's day
//! and its project's week ([`super::schema::SCHEMA`]'s `usage_by_month`, `usage_by_day` and
//! `usage_by_week`), so the dashboard and the API read sums instead of summing jobs.
//!
//! [`Totals`] collects what some counted jobs add, keyed as the tables are, and turns it into
//! one upsert per key. PostgreSQL's writer adds a job's totals as it counts the job; SQLite's
//! writer adds a whole batch's at once before its commit, so a batch of jobs of one day and
//! resource costs one update of that day's row instead of one per job (nothing in a write
//! reads the totals, and readers see only committed transactions).

use std::collections::HashMap;

use jiff::civil::Date;

use super::{Param, Statement};

const ADD_MONTH_MINUTES: &str = "INSERT INTO usage_by_month (project, resource, month, minutes)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (project, resource, month)
    DO UPDATE SET minutes = usage_by_month.minutes + excluded.minutes";
const ADD_DAY_MINUTES: &str = "INSERT INTO usage_by_day (day, resource, minutes)
    VALUES ($1, $2, $3)
    ON CONFLICT (day, resource) DO UPDATE SET minutes = usage_by_day.minutes + excluded.minutes";
const ADD_WEEK_MINUTES: &str = "INSERT INTO usage_by_week (project, resource, week, minutes)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (project, resource, week)
    DO UPDATE SET minutes = usage_by_week.minutes + excluded.minutes";

/// Minutes to add to the totals, by month, day and week.
#[derive(Debug, Default)]
pub(super) struct Totals {
    /// (project, resource, `YYYY-MM`)
    month: HashMap<(String, String, String), i64>,
    /// (`YYYY-MM-DD`, resource)
    day: HashMap<(String, String), i64>,
    /// (project, resource, the week's Monday)
    week: HashMap<(String, String, Date), i64>,
}

impl Totals {
    /// Counts `minutes` of `project` on `resource` on `day` (`YYYY-MM-DD`, as the guard writes
    /// days; a day that is not one has no week).
    pub(super) fn add(&mut self, project: &str, resource: &str, day: &str, minutes: i64) {
        let month = day.get(..7).unwrap_or(day);
        *self
            .month
            .entry((project.to_owned(), resource.to_owned(), month.to_owned()))
            .or_default() += minutes;
        *self
            .day
            .entry((day.to_owned(), resource.to_owned()))
            .or_default() += minutes;
        if let Ok(date) = day.parse::<Date>() {
            let week = gatehouse_core::outliers::week_start(date);
            *self
                .week
                .entry((project.to_owned(), resource.to_owned(), week))
                .or_default() += minutes;
        }
    }

    /// Adds everything `other` counted.
    pub(super) fn merge(&mut self, other: Totals) {
        for (key, minutes) in other.month {
            *self.month.entry(key).or_default() += minutes;
        }
        for (key, minutes) in other.day {
            *self.day.entry(key).or_default() += minutes;
        }
        for (key, minutes) in other.week {
            *self.week.entry(key).or_default() += minutes;
        }
    }

    /// One upsert per key, adding its minutes to the stored total.
    pub(super) fn statements(&self) -> Vec<Statement<'_>> {
        use Param::{Int, Text};
        let month = self.month.iter().map(|((project, resource, month), m)| {
            (
                ADD_MONTH_MINUTES,
                vec![
                    Text(Some(project)),
                    Text(Some(resource)),
                    Text(Some(month)),
                    Int(Some(*m)),
                ],
            )
        });
        let day = self.day.iter().map(|((day, resource), m)| {
            (
                ADD_DAY_MINUTES,
                vec![Text(Some(day)), Text(Some(resource)), Int(Some(*m))],
            )
        });
        let week = self.week.iter().map(|((project, resource, week), m)| {
            (
                ADD_WEEK_MINUTES,
                vec![
                    Text(Some(project)),
                    Text(Some(resource)),
                    Param::Date(*week),
                    Int(Some(*m)),
                ],
            )
        });
        month.chain(day).chain(week).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(t: &Totals) -> (usize, usize, usize) {
        (t.month.len(), t.day.len(), t.week.len())
    }

    #[test]
    fn jobs_of_one_day_and_week_make_one_row_each() {
        let mut t = Totals::default();
        t.add("numpy", "gpu", "2026-12-07", 10);
        t.add("numpy", "gpu", "2026-12-07", 5);
        t.add("scipy", "gpu", "2026-12-08", 7);
        assert_eq!(keys(&t), (2, 2, 2));
        assert_eq!(t.day[&("2026-12-07".into(), "gpu".into())], 15);
        let monday = Date::constant(2026, 12, 7);
        assert_eq!(t.week[&("scipy".into(), "gpu".into(), monday)], 7);
        assert_eq!(t.statements().len(), 6);
    }

    #[test]
    fn a_merge_adds_and_a_day_that_is_not_one_has_no_week() {
        let mut a = Totals::default();
        a.add("numpy", "gpu", "2026-12-07", 10);
        let mut b = Totals::default();
        b.add("numpy", "gpu", "2026-12-13", 1);
        b.add("numpy", "gpu", "someday", 2);
        a.merge(b);
        assert_eq!(
            a.week[&("numpy".into(), "gpu".into(), Date::constant(2026, 12, 7))],
            11
        );
        assert_eq!(
            a.month[&("numpy".into(), "gpu".into(), "2026-12".into())],
            11
        );
        assert_eq!(
            a.month[&("numpy".into(), "gpu".into(), "someday".into())],
            2
        );
        assert_eq!(keys(&a), (2, 3, 1));
    }
}
