//! Prices and worst-case monthly costs as the pages and `v1/costs.json` show them: the core's
//! figures ([`gatehouse_core::cost`]) with their amounts written out.

use gatehouse_core::Repo;
use gatehouse_core::cost::{self, Bound, Money, Price};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// A resource's price.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PriceView {
    /// Per minute, in units of `currency`, as few decimals as it needs (`0.008`).
    pub per_minute: String,
    pub currency: String,
    #[serde(skip)]
    pub price: Price,
}

impl PriceView {
    pub fn new(price: Price) -> PriceView {
        PriceView {
            per_minute: decimal(u128::from(price.micros_per_minute)),
            currency: price.currency.clone(),
            price,
        }
    }

    /// What `minutes` cost, written out (`12.34 USD`).
    pub fn of_minutes(&self, minutes: u64) -> String {
        self.price.of_minutes(minutes).to_string()
    }
}

/// Millionths as a decimal without trailing zeros: 8000 → `0.008`, 2_500_000 → `2.5`.
fn decimal(micros: u128) -> String {
    let units = micros / cost::MICROS;
    let fraction = format!("{:06}", micros % cost::MICROS);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        units.to_string()
    } else {
        format!("{units}.{fraction}")
    }
}

/// One row of the worst-case table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CeilingRow {
    /// The resource, or the provider.
    pub name: String,
    pub provider: String,
    pub currency: String,
    /// The most a month can cost (`1234.56`); `None`: no ceiling.
    pub ceiling: Option<String>,
    /// What bounds it, in words.
    pub bound: String,
}

/// A currency's total.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TotalRow {
    pub currency: String,
    /// `None`: no ceiling (a provider in this currency has none).
    pub ceiling: Option<String>,
}

/// The worst-case monthly cost, per resource, provider and currency.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CostView {
    /// The month (`YYYY-MM`) the ceilings are for: its number of days counts.
    pub month: String,
    pub resources: Vec<CeilingRow>,
    pub providers: Vec<CeilingRow>,
    pub totals: Vec<TotalRow>,
    /// Resources without a price: in no ceiling.
    pub unpriced: Vec<String>,
}

impl CostView {
    pub fn build(repo: &Repo, today: Date) -> CostView {
        let c = cost::worst_case(repo, today);
        let amount = |m: &Option<Money>| m.as_ref().map(Money::amount);
        CostView {
            month: today.strftime("%Y-%m").to_string(),
            resources: c
                .resources
                .iter()
                .map(|r| CeilingRow {
                    name: r.resource.clone(),
                    provider: r.provider.clone(),
                    currency: r.price.currency.clone(),
                    ceiling: amount(&r.ceiling),
                    bound: match r.bound {
                        Bound::Concurrency => "its concurrency cap for the whole month",
                        Bound::MonthlyMinutes => "its monthly minutes quota",
                        Bound::Provider => "its provider's max_concurrency for the whole month",
                        Bound::None => "nothing: no cap",
                    }
                    .to_string(),
                })
                .collect(),
            providers: c
                .providers
                .iter()
                .map(|p| CeilingRow {
                    name: p.provider.clone(),
                    provider: p.provider.clone(),
                    currency: p.currency.clone(),
                    ceiling: amount(&p.ceiling),
                    bound: if p.ceiling.is_none() {
                        "nothing: a resource has no cap and the provider no max_concurrency"
                    } else if p.by_max_concurrency {
                        "max_concurrency machines at its dearest price"
                    } else {
                        "its resources' ceilings together"
                    }
                    .to_string(),
                })
                .collect(),
            totals: c
                .totals
                .iter()
                .map(|(currency, m)| TotalRow {
                    currency: currency.clone(),
                    ceiling: amount(m),
                })
                .collect(),
            unpriced: c.unpriced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_written_with_the_decimals_they_need() {
        assert_eq!(decimal(8_000), "0.008");
        assert_eq!(decimal(2_500_000), "2.5");
        assert_eq!(decimal(3_000_000), "3");
        assert_eq!(decimal(1), "0.000001");
    }
}
