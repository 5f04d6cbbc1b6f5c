//! `gatehouse apply` and `expire`: the flags, handed to `gatehouse_apply::pipeline`.

use std::process::ExitCode;

use gatehouse_apply::{ApplyOptions, Mode};
use jiff::civil::Date;

use crate::cli::ApplyArgs;

pub fn run(
    args: ApplyArgs,
    today: Date,
    mode: Mode,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let options = ApplyOptions {
        dir: args.dir,
        confirm: args.confirm,
        allow_mass_revoke: args.allow_mass_revoke,
        max_revoke_share: args.max_revoke_share,
        deactivate_ungranted: args.deactivate_ungranted,
    };
    gatehouse_apply::pipeline::run(&options, today, mode, rt)
}
