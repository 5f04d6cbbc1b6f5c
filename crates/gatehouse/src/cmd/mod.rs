//! One module per subcommand.

pub mod apply;
pub mod approvals;
pub mod audit;
pub mod check;
pub mod ci;
pub mod decide;
pub mod gate;
pub mod gen_fixture;
pub mod history;
pub mod import;
pub mod import_github_app;
pub mod import_labels;
pub mod init;
pub mod plan;
pub mod render;
pub mod replay;
pub mod run_approval_rows;
pub mod schema;
pub mod serve;
pub mod site;
pub mod why;

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

pub use gatehouse_apply::load_repo_warn;

/// `text` (`30s`, `5m`, `250ms`, `1h`) as a duration; errors name `flag`.
pub(crate) fn parse_duration(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("{flag} `{text}` is not a duration such as 30s or 5m"))?;
    let secs = match unit {
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("{flag} `{text}`: the unit must be ms, s, m or h"),
    };
    Ok(std::time::Duration::from_secs(secs))
}
