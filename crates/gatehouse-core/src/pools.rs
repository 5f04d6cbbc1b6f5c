//! Sponsor credit pools (`pools/<name>.yml`, [`crate::model::Pool`]): which pool pays for a
//! job, what a job reserves when it starts, and how a pool burns down.
//!
//! Credit is counted in whole **units**: millionths of the pool's currency for a pool of money
//! (as [`crate::cost`] counts), minutes for a pool of minutes. A job of a funded resource
//! reserves its expected cost when it starts (its resource's `max_job_minutes`, else the
//! resource's median job length, else [`FALLBACK_JOB_MINUTES`]) and settles its real cost when
//! it completes, so the jobs already running can never spend more than is left. The guard keeps
//! the balances ([`gatehouse-server`'s `pools.rs`]); this module only computes.
//!
//! A job draws from the first pool (by `order`, then name) that funds its resource, its
//! project and the day, and has credit left. When pools fund it but every one of them is used
//! up, the job is refused (`budget-exhausted`); a job no pool funds is not affected.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::Serialize;

use crate::Repo;
use crate::cost::{MICROS, Money, Price};
use crate::names::project_key;

/// What a job is expected to run when its resource states no `max_job_minutes` and no job of it
/// has completed yet: an hour.
pub const FALLBACK_JOB_MINUTES: u64 = 60;

/// What a pool counts in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "currency")]
pub enum Unit {
    /// Millionths of this currency.
    Money(String),
    Minutes,
}

/// A pool as the guard uses it: read from its file, with its credit in units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Terms {
    /// The file's stem: `pools/<name>.yml`.
    pub name: String,
    pub sponsor: String,
    pub url: Option<String>,
    pub unit: Unit,
    /// The credit, in units.
    pub credit: u64,
    pub start: Date,
    pub end: Date,
    pub resources: BTreeSet<String>,
    /// Project keys ([`project_key`]); empty: every project.
    pub projects: BTreeSet<String>,
    /// Alert thresholds in percent, ascending, without repeats.
    pub alerts: Vec<u32>,
    /// `order`, or `u32::MAX` when the file gives none.
    pub order: u32,
    /// Units per minute of each funded resource that can be counted in the pool's unit (a
    /// resource without a price in the pool's currency cannot draw from a pool of money).
    pub per_minute: BTreeMap<String, u64>,
}

impl Terms {
    /// Whether the pool pays for a job of `resource` of `project` on `day`.
    pub fn funds(&self, resource: &str, project: Option<&str>, day: Date) -> bool {
        self.start <= day
            && day <= self.end
            && self.per_minute.contains_key(resource)
            && (self.projects.is_empty()
                || project.is_some_and(|p| self.projects.contains(&project_key(p))))
    }

    /// What `units` are in words: `1234.57 USD` or `5000 minutes`.
    pub fn show(&self, units: u64) -> String {
        match &self.unit {
            Unit::Money(currency) => Money {
                micros: u128::from(units),
                currency: currency.clone(),
            }
            .to_string(),
            Unit::Minutes => format!("{units} minutes"),
        }
    }
}

/// Every pool of the repository that reads (those `check` finds broken are left out, so a
/// broken pool never pays for anything), by name.
pub fn terms(repo: &Repo) -> Vec<Terms> {
    let mut all: Vec<Terms> = repo
        .pools
        .iter()
        .filter_map(|p| {
            let v = &p.value;
            let unit = match (&v.amount, &v.currency, &v.minutes) {
                (Some(_), Some(c), None) => Unit::Money(c.value.clone()),
                (None, None, Some(_)) => Unit::Minutes,
                _ => return None,
            };
            let credit = match (&unit, &v.amount, &v.minutes) {
                (Unit::Minutes, _, Some(m)) => m.value,
                (Unit::Money(_), Some(a), _) if a.value.is_finite() && a.value > 0.0 => {
                    let micros = (a.value * MICROS as f64).round();
                    if micros >= u64::MAX as f64 {
                        return None;
                    }
                    micros as u64
                }
                _ => return None,
            };
            if v.end.value.0 < v.start.value.0 {
                return None;
            }
            let per_minute = v
                .resources
                .iter()
                .filter_map(|name| {
                    let resource = repo.resource(name.as_str())?;
                    let rate = match &unit {
                        Unit::Minutes => 1,
                        Unit::Money(currency) => {
                            let price = resource.cost.as_ref().and_then(|c| Price::of(&c.value))?;
                            if &price.currency != currency {
                                return None;
                            }
                            price.micros_per_minute
                        }
                    };
                    Some((name.value.clone(), rate))
                })
                .collect();
            let mut alerts: Vec<u32> = v
                .alerts
                .iter()
                .map(|a| a.value)
                .filter(|a| (1..=100).contains(a))
                .collect();
            alerts.sort_unstable();
            alerts.dedup();
            Some(Terms {
                name: p.stem().to_string(),
                sponsor: v.sponsor.value.clone(),
                url: v.url.clone(),
                unit,
                credit,
                start: v.start.value.0,
                end: v.end.value.0,
                resources: v.resources.iter().map(|r| r.value.clone()).collect(),
                projects: v.projects.iter().map(|p| project_key(p)).collect(),
                alerts,
                order: v.order.as_ref().map_or(u32::MAX, |o| o.value),
                per_minute,
            })
        })
        .collect();
    all.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    all
}

/// The pools that pay for a job of `resource` of `project` on `day`, first payer first.
pub fn funding<'a>(
    pools: &'a [Terms],
    resource: &str,
    project: Option<&str>,
    day: Date,
) -> Vec<&'a Terms> {
    pools
        .iter()
        .filter(|p| p.funds(resource, project, day))
        .collect()
}

/// How many minutes a job of a resource is expected to run: its `max_job_minutes`, else the
/// median of its completed jobs, else [`FALLBACK_JOB_MINUTES`]; at least one.
pub fn expected_minutes(max_job_minutes: Option<u32>, median: Option<u64>) -> u64 {
    max_job_minutes
        .map(u64::from)
        .or(median)
        .unwrap_or(FALLBACK_JOB_MINUTES)
        .max(1)
}

/// The highest alert threshold `spent` of `credit` has reached, if any.
pub fn alert_reached(alerts: &[u32], credit: u64, spent: u64) -> Option<u32> {
    alerts
        .iter()
        .copied()
        .filter(|a| u128::from(spent) * 100 >= u128::from(credit) * u128::from(*a))
        .max()
}

/// Where a pool stands and where it is going.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BurnDown {
    /// Units settled by completed jobs, up to and including today.
    pub spent: u64,
    /// What is left of the credit after what was spent (never below zero).
    pub left: u64,
    /// Units spent per day at the current rate (the last [`RATE_DAYS`] days, or since the
    /// start when it is younger).
    pub per_day: u64,
    /// The day the credit runs out at that rate, when that is before the pool's end.
    pub runs_out: Option<Date>,
    /// The credit left at the end of each day from the start to today.
    pub history: Vec<(Date, u64)>,
}

/// How many recent days the burn rate is taken over.
pub const RATE_DAYS: i64 = 14;

/// The burn-down of a pool of `credit` from `start` to `end`, seen on `today`, from what each
/// day cost (`spent_by_day`, any order; days outside the pool's dates are left out).
pub fn burn_down(
    credit: u64,
    start: Date,
    end: Date,
    today: Date,
    spent_by_day: &[(Date, u64)],
) -> BurnDown {
    let last = today.min(end);
    let mut by_day: BTreeMap<Date, u64> = BTreeMap::new();
    for (day, units) in spent_by_day {
        if start <= *day && *day <= last {
            *by_day.entry(*day).or_default() += units;
        }
    }
    let mut history = Vec::new();
    let mut spent: u64 = 0;
    let mut day = start;
    while day <= last {
        spent = spent.saturating_add(by_day.get(&day).copied().unwrap_or(0));
        history.push((day, credit.saturating_sub(spent)));
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    let left = credit.saturating_sub(spent);
    // The rate over the last RATE_DAYS days that have begun (today included).
    let days_in = history.len() as i64;
    let window = days_in.clamp(1, RATE_DAYS);
    let recent: u64 = by_day
        .range(last.saturating_sub(jiff::Span::new().days(window - 1))..=last)
        .map(|(_, u)| *u)
        .sum();
    let per_day = if days_in == 0 {
        0
    } else {
        recent.div_ceil(window as u64)
    };
    let runs_out = (per_day > 0 && left > 0 && today < end)
        .then(|| {
            let days = left.div_ceil(per_day);
            let days = i64::try_from(days).ok()?;
            today
                .checked_add(jiff::Span::new().days(days.min(100_000)))
                .ok()
        })
        .flatten()
        .filter(|d| *d <= end);
    BurnDown {
        spent,
        left,
        per_day,
        runs_out,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn repo(files: &[(&str, &str)]) -> Repo {
        Repo::from_sources(files.iter().map(|(p, b)| (p.to_string(), b.as_bytes())))
    }

    const GPU: &str = "name: gpu\nprovider: cirun\nlabels: [gpu]\n\
                       cost: { per_hour: 1.2, currency: USD }\n";
    const CPU: &str = "name: cpu\nprovider: cirun\nlabels: [cpu]\n";

    #[test]
    fn a_job_draws_from_the_first_pool_that_funds_it() {
        let r = repo(&[
            ("resources/gpu.yml", GPU),
            ("resources/cpu.yml", CPU),
            (
                "pools/cloud.yml",
                "sponsor: Cloud\namount: 100\ncurrency: USD\nstart: 2026-01-01\n\
                 end: 2026-06-30\nresources: [gpu, cpu]\norder: 2\n",
            ),
            (
                "pools/lab.yml",
                "sponsor: Lab\nminutes: 600\nstart: 2026-03-01\nend: 2026-12-31\n\
                 resources: [gpu]\nprojects: [PyTorch]\norder: 1\nalerts: [100, 50, 50]\n",
            ),
        ]);
        let pools = terms(&r);
        assert_eq!(pools.len(), 2);
        let lab = &pools[0];
        assert_eq!(lab.name, "lab");
        assert_eq!((lab.unit.clone(), lab.credit), (Unit::Minutes, 600));
        assert_eq!(lab.alerts, [50, 100]);
        let cloud = &pools[1];
        assert_eq!(cloud.credit, 100_000_000);
        // 1.20 USD an hour is 20,000 millionths a minute; `cpu` has no price: a pool of money
        // cannot pay for it.
        assert_eq!(cloud.per_minute.get("gpu"), Some(&20_000));
        assert!(!cloud.per_minute.contains_key("cpu"));

        let names = |resource, project, day| {
            funding(&pools, resource, project, day)
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
        };
        // Project names compare ignoring case; the lab pays first where it funds.
        assert_eq!(
            names("gpu", Some("pytorch"), date(2026, 3, 1)),
            ["lab", "cloud"]
        );
        assert_eq!(names("gpu", Some("numpy"), date(2026, 3, 1)), ["cloud"]);
        assert_eq!(names("gpu", None, date(2026, 3, 1)), ["cloud"]);
        // Before its start and after its end a pool pays for nothing.
        assert_eq!(names("gpu", Some("pytorch"), date(2026, 2, 28)), ["cloud"]);
        assert_eq!(names("gpu", Some("pytorch"), date(2026, 7, 1)), ["lab"]);
        assert!(names("cpu", Some("pytorch"), date(2026, 3, 1)).is_empty());
        assert_eq!(cloud.show(1_234_567), "1.23 USD");
        assert_eq!(lab.show(42), "42 minutes");
    }

    #[test]
    fn a_broken_pool_pays_for_nothing() {
        for body in [
            // Both kinds of credit, or neither.
            "sponsor: S\namount: 5\ncurrency: USD\nminutes: 5\nstart: 2026-01-01\nend: 2026-02-01\nresources: [gpu]\n",
            "sponsor: S\nstart: 2026-01-01\nend: 2026-02-01\nresources: [gpu]\n",
            // Money without its currency, a negative amount, an end before the start.
            "sponsor: S\namount: 5\nstart: 2026-01-01\nend: 2026-02-01\nresources: [gpu]\n",
            "sponsor: S\namount: -5\ncurrency: USD\nstart: 2026-01-01\nend: 2026-02-01\nresources: [gpu]\n",
            "sponsor: S\nminutes: 5\nstart: 2026-03-01\nend: 2026-02-01\nresources: [gpu]\n",
        ] {
            let r = repo(&[("resources/gpu.yml", GPU), ("pools/p.yml", body)]);
            assert!(r.load_errors.is_empty(), "{body}: {:?}", r.load_errors);
            assert!(terms(&r).is_empty(), "{body}");
        }
    }

    #[test]
    fn a_job_is_expected_to_run_its_limit_or_the_usual_time() {
        assert_eq!(expected_minutes(Some(90), Some(12)), 90);
        assert_eq!(expected_minutes(None, Some(12)), 12);
        assert_eq!(expected_minutes(None, None), FALLBACK_JOB_MINUTES);
        assert_eq!(expected_minutes(None, Some(0)), 1);
    }

    #[test]
    fn alerts_are_reached_at_their_share_of_the_credit() {
        assert_eq!(alert_reached(&[80, 100], 1000, 799), None);
        assert_eq!(alert_reached(&[80, 100], 1000, 800), Some(80));
        assert_eq!(alert_reached(&[80, 100], 1000, 1200), Some(100));
        assert_eq!(alert_reached(&[80, 100], u64::MAX, u64::MAX), Some(100));
    }

    #[test]
    fn the_burn_down_forecasts_the_day_the_credit_runs_out() {
        let start = date(2026, 11, 1);
        let end = date(2026, 12, 31);
        let today = date(2026, 11, 20);
        // 100 units a day over the last 14 days, more before; a day outside is left out.
        let mut spent: Vec<(Date, u64)> = (1..=20)
            .map(|d| (date(2026, 11, d), if d <= 6 { 300 } else { 100 }))
            .collect();
        spent.push((date(2026, 10, 31), 99_999));
        let b = burn_down(10_000, start, end, today, &spent);
        assert_eq!(b.spent, 6 * 300 + 14 * 100);
        assert_eq!(b.left, 10_000 - 3_200);
        assert_eq!(b.per_day, 100);
        // 6,800 left at 100 a day: 68 days after today is past the end: no run-out day.
        assert_eq!(b.runs_out, None);
        assert_eq!(b.history.len(), 20);
        assert_eq!(b.history[0], (start, 10_000 - 300));
        assert_eq!(b.history[19], (today, 6_800));
        // Twice the credit's pace: it runs out before the end.
        let b = burn_down(5_000, start, end, today, &spent);
        assert_eq!(b.left, 1_800);
        assert_eq!(b.runs_out, Some(date(2026, 12, 8)));
        // Overspent: nothing left, and it has run out already (no forecast).
        let b = burn_down(1_000, start, end, today, &spent);
        assert_eq!((b.left, b.runs_out), (0, None));
        // Before the start: no history, no rate.
        let b = burn_down(1_000, start, end, date(2026, 10, 1), &spent);
        assert_eq!((b.history.len(), b.per_day, b.runs_out), (0, 0, None));
    }
}
