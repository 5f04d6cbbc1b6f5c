//! Grant durations such as `365d`, `6m`, `1y`, written in resource files.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A calendar duration: a number of days, weeks, months or years.
///
/// Months and years are calendar units, so `1y` from 2028-02-29 ends on 2029-02-28 and a year
/// with a leap day is still one year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrantDuration {
    pub amount: u32,
    pub unit: DurationUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Days,
    Weeks,
    Months,
    Years,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration: write a whole number and a unit, like `90d`, `12w`, `6m` or `1y`"
)]
pub struct DurationError(String);

impl GrantDuration {
    /// The last day a grant that starts on `start` may run.
    pub fn end_from(&self, start: Date) -> Option<Date> {
        let n = i64::from(self.amount);
        let span = match self.unit {
            DurationUnit::Days => jiff::Span::new().try_days(n).ok()?,
            DurationUnit::Weeks => jiff::Span::new().try_weeks(n).ok()?,
            DurationUnit::Months => jiff::Span::new().try_months(n).ok()?,
            DurationUnit::Years => jiff::Span::new().try_years(n).ok()?,
        };
        start.checked_add(span).ok()
    }
}

impl FromStr for GrantDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(s.to_string());
        let s = s.trim();
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(unit_at);
        let amount: u32 = digits.parse().map_err(|_| err())?;
        let unit = match unit {
            "d" => DurationUnit::Days,
            "w" => DurationUnit::Weeks,
            "m" => DurationUnit::Months,
            "y" => DurationUnit::Years,
            _ => return Err(err()),
        };
        if amount == 0 {
            return Err(err());
        }
        Ok(GrantDuration { amount, unit })
    }
}

impl fmt::Display for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
            DurationUnit::Months => "m",
            DurationUnit::Years => "y",
        };
        write!(f, "{}{}", self.amount, unit)
    }
}

impl<'de> Deserialize<'de> for GrantDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for GrantDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for GrantDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GrantDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[1-9][0-9]*[dwmy]$",
            "description": "A whole number and a unit: d (days), w (weeks), m (months), y (years)."
        })
    }
}

/// A calendar day written `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub Date);

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Day {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        // jiff also accepts forms such as `20260301`; the ledger uses one spelling only.
        let well_formed = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !well_formed {
            return Err(format!("`{s}` is not a date: write it as YYYY-MM-DD"));
        }
        s.parse::<Date>()
            .map(Day)
            .map_err(|e| format!("`{s}` is not a valid date: {e}"))
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Day {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Day".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn durations_parse_and_add_calendar_units() {
        let d: GrantDuration = "365d".parse().unwrap();
        assert_eq!(d.end_from(date(2026, 3, 1)), Some(date(2027, 3, 1)));
        let y: GrantDuration = "1y".parse().unwrap();
        assert_eq!(y.end_from(date(2027, 3, 1)), Some(date(2028, 3, 1)));
        assert_eq!(y.end_from(date(2028, 2, 29)), Some(date(2029, 2, 28)));
        let m: GrantDuration = "6m".parse().unwrap();
        assert_eq!(m.end_from(date(2026, 8, 31)), Some(date(2027, 2, 28)));
        for bad in [
            "",
            "d",
            "0d",
            "10",
            "10 days",
            "-3d",
            "1.5y",
            "99999999999d",
        ] {
            assert!(bad.parse::<GrantDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn days_have_one_spelling() {
        assert_eq!("2026-03-01".parse::<Day>().unwrap().0, date(2026, 3, 1));
        for bad in ["20260301", "2026-3-1", "2026-02-30", "yesterday", ""] {
            assert!(bad.parse::<Day>().is_err(), "{bad}");
        }
    }
}
