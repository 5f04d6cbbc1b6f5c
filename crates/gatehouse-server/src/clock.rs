//! The guard's two readings of time: a time plus a duration that cannot overflow, and today's
//! date in UTC.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// `t` plus `d`, or the end of time.
pub(crate) fn later(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Today in UTC: the day decisions (expiry) and minutes are judged on.
pub(crate) fn today() -> Date {
    TimeZone::UTC.to_datetime(Timestamp::now()).date()
}
