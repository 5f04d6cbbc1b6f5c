//! `gatehouse approvals`: the flags, handed to `gatehouse_apply::approvals`.

use std::process::ExitCode;

use gatehouse_apply::approvals::ApprovalsOptions;
use jiff::civil::Date;

use crate::cli::ApprovalsArgs;

pub fn run(
    args: ApprovalsArgs,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let options = ApprovalsOptions {
        pr: args.pr,
        for_head: args.for_head,
        dir: args.dir,
        base: args.base,
        repo: args.repo,
        head_sha: args.head_sha,
        files_from_api: args.files_from_api,
    };
    gatehouse_apply::approvals::run(options, today, rt)
}
