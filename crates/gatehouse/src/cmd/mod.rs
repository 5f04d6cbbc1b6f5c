//! One module per subcommand.

pub mod apply;
pub mod approvals;
pub mod audit;
pub mod check;
pub mod ci;
pub mod decide;
pub mod gen_fixture;
pub mod history;
pub mod import;
pub mod init;
pub mod plan;
pub mod render;
pub mod replay;
pub mod schema;
pub mod serve;
pub mod site;

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

/// Loads the repository and warns (on stderr) when `check` would find errors in it: commands
/// that act on a broken repository act on the files that loaded, which grant less, never more.
pub fn load_repo_warn(dir: &std::path::Path, today: Date) -> anyhow::Result<gatehouse_core::Repo> {
    let repo = gatehouse_core::repo::load_dir(dir)?;
    let errors = gatehouse_core::check::run_all(&repo, today).errors();
    if errors > 0 {
        eprintln!(
            "warning: {} has {errors} error(s); files that failed to load grant nothing. Run `gatehouse check {}` to see them",
            dir.display(),
            dir.display()
        );
    }
    Ok(repo)
}
