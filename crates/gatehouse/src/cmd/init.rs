//! `gatehouse init`. (Being built: see issue 2, item 5.)

use std::process::ExitCode;

use crate::cli::InitArgs;

pub fn run(_args: InitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`gatehouse init` is not built yet")
}
