//! What the scarce resources cost: a resource's price, the cost of the minutes counted on it,
//! and the **worst-case monthly cost**, the most the caps let a month cost. conda-forge adds a
//! paid runner provider only with "fixed costs or org-wide capped concurrency to estimate an
//! upper bound for the costs" (its blog post on large runners, 2026-06-17); this is that bound.
//!
//! Money is counted in millionths of a currency unit, never in floating point, and amounts in
//! different currencies are never added up.
//!
//! The ceiling of one month of `M` minutes (days × 1440):
//! - a resource: `min(quota.concurrency × M, quota.minutes_per_month)` minutes at its price
//!   (whichever of the two is set), and no more than its provider's `max_concurrency × M`
//!   minutes; none of these set: no ceiling.
//! - a provider, per currency: the sum of its resources' ceilings, and no more than
//!   `max_concurrency` machines for the whole month at the highest price among its resources in
//!   that currency; no ceiling when neither bounds it.
//! - the organisation, per currency: the sum of its providers' ceilings in that currency; no
//!   ceiling when one of them has none.
//!
//! A resource without a price is left out of every sum and listed in [`Ceilings::unpriced`].

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;
use serde::Serialize;

use crate::Repo;
use crate::model::Cost;

/// Millionths of a currency unit in one unit.
pub const MICROS: u128 = 1_000_000;

/// The highest price accepted per minute, in currency units: far above any machine's, so a
/// price above it is a typo (a price per hour written as per minute is still accepted).
pub const MAX_PER_MINUTE: f64 = 10_000.0;

/// A resource's price per minute, in millionths of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Price {
    pub micros_per_minute: u64,
    pub currency: String,
}

impl Price {
    /// The price `cost` states; `None` when it does not state one that reads (`check` says
    /// why: [`problem`]).
    pub fn of(cost: &Cost) -> Option<Price> {
        if problem(cost).is_some() {
            return None;
        }
        let per_minute = match (&cost.per_minute, &cost.per_hour) {
            (Some(m), None) => m.value,
            (None, Some(h)) => h.value / 60.0,
            _ => return None,
        };
        Some(Price {
            micros_per_minute: (per_minute * MICROS as f64).round() as u64,
            currency: cost.currency.value.clone(),
        })
    }

    /// What `minutes` cost.
    pub fn of_minutes(&self, minutes: u64) -> Money {
        Money {
            micros: u128::from(self.micros_per_minute) * u128::from(minutes),
            currency: self.currency.clone(),
        }
    }
}

/// What is wrong with a stated price, in words; `None` when it reads.
pub fn problem(cost: &Cost) -> Option<String> {
    let amount = match (&cost.per_minute, &cost.per_hour) {
        (Some(_), Some(_)) => return Some("states both `per_minute` and `per_hour`".into()),
        (None, None) => return Some("states neither `per_minute` nor `per_hour`".into()),
        (Some(m), None) => m.value,
        (None, Some(h)) => h.value / 60.0,
    };
    if !amount.is_finite() || amount < 0.0 {
        return Some("is not a positive amount".into());
    }
    if amount > MAX_PER_MINUTE {
        return Some(format!(
            "is more than {MAX_PER_MINUTE} per minute: is it a typo?"
        ));
    }
    let code = &cost.currency.value;
    if !is_currency_code(code) {
        return Some(format!(
            "names currency `{code}`, which is not an ISO 4217 code (three capital letters)"
        ));
    }
    None
}

/// Whether `code` is written as an ISO 4217 code: three capital letters (`USD`, `EUR`).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// An amount of one currency.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Money {
    /// Millionths of a unit.
    pub micros: u128,
    pub currency: String,
}

impl Money {
    /// The amount in units with two decimals, rounded half up: `1234.57`.
    pub fn amount(&self) -> String {
        let cents = (self.micros + MICROS / 200) / (MICROS / 100);
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

/// What bounds a resource's monthly cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `quota.concurrency` machines for the whole month.
    Concurrency,
    /// `quota.minutes_per_month`.
    MonthlyMinutes,
    /// Its provider's `max_concurrency` machines for the whole month.
    Provider,
    /// Nothing: no ceiling.
    None,
}

/// One resource's worst month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceCeiling {
    pub resource: String,
    pub provider: String,
    pub price: Price,
    /// The most a month can cost; `None`: no ceiling.
    pub ceiling: Option<Money>,
    pub bound: Bound,
}

/// One provider's worst month in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderCeiling {
    pub provider: String,
    pub currency: String,
    /// `None`: no ceiling.
    pub ceiling: Option<Money>,
    /// Whether its `max_concurrency` is what bounds it (rather than its resources' caps).
    pub by_max_concurrency: bool,
}

/// The worst-case monthly cost of every priced resource, provider and currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ceilings {
    /// The minutes in the month.
    pub month_minutes: u64,
    pub resources: Vec<ResourceCeiling>,
    pub providers: Vec<ProviderCeiling>,
    /// Per currency, every provider together; `None`: no ceiling.
    pub totals: Vec<(String, Option<Money>)>,
    /// Resources without a price, which no ceiling counts.
    pub unpriced: Vec<String>,
}

/// The minutes in the month `day` falls in.
pub fn minutes_in_month(day: Date) -> u64 {
    u64::try_from(day.days_in_month()).unwrap_or(31) * 24 * 60
}

/// The worst-case cost of the month `day` falls in, as the access repository's caps allow.
pub fn worst_case(repo: &Repo, day: Date) -> Ceilings {
    let month = minutes_in_month(day);
    let max_concurrency = |provider: &str| -> Option<u32> {
        let settings = repo.settings.as_ref()?;
        let p = settings.value.providers.get(provider)?;
        p.max_concurrency().map(|c| c.value)
    };
    let mut out = Ceilings {
        month_minutes: month,
        ..Ceilings::default()
    };
    for r in &repo.resources {
        let r = &r.value;
        let Some(price) = r.cost.as_ref().and_then(|c| Price::of(&c.value)) else {
            out.unpriced.push(r.name.value.clone());
            continue;
        };
        let quota = r.quota.clone().unwrap_or_default();
        let candidates = [
            (
                Bound::Concurrency,
                quota
                    .concurrency
                    .map(|c| u64::from(c.value).saturating_mul(month)),
            ),
            (Bound::MonthlyMinutes, quota.minutes_per_month),
            (
                Bound::Provider,
                max_concurrency(&r.provider.value).map(|c| u64::from(c).saturating_mul(month)),
            ),
        ];
        let tightest = candidates
            .iter()
            .filter_map(|(bound, minutes)| Some((*bound, (*minutes)?)))
            .min_by_key(|(_, minutes)| *minutes);
        let (bound, ceiling) = match tightest {
            Some((bound, minutes)) => (bound, Some(price.of_minutes(minutes))),
            None => (Bound::None, None),
        };
        out.resources.push(ResourceCeiling {
            resource: r.name.value.clone(),
            provider: r.provider.value.clone(),
            price,
            ceiling,
            bound,
        });
    }
    // Per provider and currency.
    let mut groups: BTreeMap<(String, String), Vec<&ResourceCeiling>> = BTreeMap::new();
    for r in &out.resources {
        groups
            .entry((r.provider.clone(), r.price.currency.clone()))
            .or_default()
            .push(r);
    }
    for ((provider, currency), resources) in groups {
        let sum: Option<u128> = resources
            .iter()
            .map(|r| r.ceiling.as_ref().map(|m| m.micros))
            .sum();
        let by_cap = max_concurrency(&provider).map(|c| {
            let highest = resources
                .iter()
                .map(|r| r.price.micros_per_minute)
                .max()
                .unwrap_or(0);
            u128::from(c) * u128::from(month) * u128::from(highest)
        });
        let (micros, by_max_concurrency) = match (sum, by_cap) {
            (Some(s), Some(c)) if c < s => (Some(c), true),
            (Some(s), _) => (Some(s), false),
            (None, Some(c)) => (Some(c), true),
            (None, None) => (None, false),
        };
        out.providers.push(ProviderCeiling {
            provider,
            currency: currency.clone(),
            ceiling: micros.map(|micros| Money { micros, currency }),
            by_max_concurrency,
        });
    }
    // Per currency.
    let mut totals: BTreeMap<String, Option<u128>> = BTreeMap::new();
    for p in &out.providers {
        let total = totals.entry(p.currency.clone()).or_insert(Some(0));
        *total = match (*total, &p.ceiling) {
            (Some(t), Some(m)) => Some(t + m.micros),
            _ => None,
        };
    }
    out.totals = totals
        .into_iter()
        .map(|(currency, micros)| {
            let money = micros.map(|micros| Money {
                micros,
                currency: currency.clone(),
            });
            (currency, money)
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(settings: &str, resources: &[(&str, &str)]) -> Repo {
        Repo::of_resources(settings, resources)
    }

    const SETTINGS: &str = "org: o\nreviewers: { teams: [core] }\nproviders:\n  paid: { kind: cirun, access_repo: .cirun, max_concurrency: 10 }\n  open: { kind: cirun, access_repo: .cirun }\n";

    fn usd(amount: &str) -> Option<Money> {
        let (units, cents) = amount.split_once('.').unwrap();
        Some(Money {
            micros: (units.parse::<u128>().unwrap() * 100 + cents.parse::<u128>().unwrap())
                * 10_000,
            currency: "USD".into(),
        })
    }

    #[test]
    fn a_month_costs_what_the_tightest_cap_allows() {
        // November: 30 days, 43,200 minutes.
        let day = jiff::civil::date(2026, 11, 6);
        let repo = repo(
            SETTINGS,
            &[
                // 2 machines for a month at 0.008 a minute: 691.20.
                (
                    "gpu",
                    "provider: open\ncost: { per_minute: 0.008, currency: USD }\nquota: { concurrency: 2 }\n",
                ),
                // 4 machines, but 10,000 minutes a month: 10,000 × 0.48 / 60 = 80.00.
                (
                    "big",
                    "provider: open\ncost: { per_hour: 0.48, currency: USD }\nquota: { concurrency: 4, minutes_per_month: 10000 }\n",
                ),
                // No cap of its own; its provider's 10 machines: 10 × 43,200 × 0.002 = 864.00.
                (
                    "mac",
                    "provider: paid\ncost: { per_minute: 0.002, currency: USD }\n",
                ),
                // No cap anywhere: no ceiling.
                (
                    "wild",
                    "provider: open\ncost: { per_minute: 0.001, currency: EUR }\n",
                ),
                ("free", "provider: open\n"),
            ],
        );
        let c = worst_case(&repo, day);
        assert_eq!(c.month_minutes, 43_200);
        let of = |name: &str| c.resources.iter().find(|r| r.resource == name).unwrap();
        assert_eq!(
            (of("gpu").bound, &of("gpu").ceiling),
            (Bound::Concurrency, &usd("691.20"))
        );
        assert_eq!(
            (of("big").bound, &of("big").ceiling),
            (Bound::MonthlyMinutes, &usd("80.00"))
        );
        assert_eq!(
            (of("mac").bound, &of("mac").ceiling),
            (Bound::Provider, &usd("864.00"))
        );
        assert_eq!(
            (of("wild").bound, &of("wild").ceiling),
            (Bound::None, &None)
        );
        assert_eq!(c.unpriced, ["free"]);
        // `open` in USD: 691.20 + 80.00; in EUR: none. `paid`: 864.00.
        let provider = |name: &str, cur: &str| {
            c.providers
                .iter()
                .find(|p| p.provider == name && p.currency == cur)
                .unwrap()
                .ceiling
                .clone()
        };
        assert_eq!(provider("open", "USD"), usd("771.20"));
        assert_eq!(provider("open", "EUR"), None);
        assert_eq!(provider("paid", "USD"), usd("864.00"));
        // Never summed across currencies: USD has a ceiling, EUR has none.
        assert_eq!(
            c.totals,
            [
                ("EUR".to_string(), None),
                ("USD".to_string(), usd("1635.20"))
            ]
        );
    }

    #[test]
    fn a_providers_cap_bounds_its_resources_together() {
        // February 2026: 28 days, 40,320 minutes. Two resources of 8 machines each, a provider
        // cap of 10 machines: at most 10 machines at the dearer price.
        let day = jiff::civil::date(2026, 2, 1);
        let repo = repo(
            SETTINGS,
            &[
                (
                    "a",
                    "provider: paid\ncost: { per_minute: 0.01, currency: USD }\nquota: { concurrency: 8 }\n",
                ),
                (
                    "b",
                    "provider: paid\ncost: { per_minute: 0.02, currency: USD }\nquota: { concurrency: 8 }\n",
                ),
            ],
        );
        let c = worst_case(&repo, day);
        // Each alone: 8 × 40,320 × price (3,225.60 and 6,451.20); together at most
        // 10 × 40,320 × 0.02 = 8,064.00 rather than 9,676.80.
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].ceiling, usd("8064.00"));
        assert!(c.providers[0].by_max_concurrency);
        assert_eq!(c.totals, [("USD".to_string(), usd("8064.00"))]);
    }

    #[test]
    fn prices_read_exactly_and_bad_ones_are_named() {
        let cost = |text: &str| -> Cost { serde_saphyr::from_str(text).unwrap() };
        let p = Price::of(&cost("{ per_minute: 0.008, currency: USD }")).unwrap();
        assert_eq!(p.micros_per_minute, 8_000);
        assert_eq!(p.of_minutes(1_000).to_string(), "8.00 USD");
        let p = Price::of(&cost("{ per_hour: 0.5, currency: EUR }")).unwrap();
        assert_eq!(p.micros_per_minute, 8_333);
        assert_eq!(p.of_minutes(60).amount(), "0.50");
        for (text, said) in [
            ("{ per_minute: 1, per_hour: 60, currency: USD }", "both"),
            ("{ currency: USD }", "neither"),
            ("{ per_minute: -1, currency: USD }", "not a positive amount"),
            (
                "{ per_minute: .nan, currency: USD }",
                "not a positive amount",
            ),
            ("{ per_minute: 20000, currency: USD }", "typo"),
            ("{ per_minute: 1, currency: dollars }", "ISO 4217"),
        ] {
            let c = cost(text);
            assert!(Price::of(&c).is_none(), "{text}");
            assert!(
                problem(&c).unwrap().contains(said),
                "{text}: {:?}",
                problem(&c)
            );
        }
    }
}
