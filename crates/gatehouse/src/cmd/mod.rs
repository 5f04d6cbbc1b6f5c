//! One module per subcommand.

pub mod check;
pub mod gen_fixture;
pub mod import;
pub mod init;
pub mod schema;

use anyhow::Context;
use jiff::civil::Date;

/// Today's date (UTC), or the `--today` override.
pub fn today(over: Option<&str>) -> anyhow::Result<Date> {
    match over {
        Some(s) => s
            .parse::<gatehouse_core::duration::Day>()
            .map(|d| d.0)
            .map_err(anyhow::Error::msg)
            .context("--today"),
        None => Ok(jiff::Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date()),
    }
}
