//! `gatehouse gen-fixture` (hidden): a conda-forge-scale repository for scale tests.

use std::process::ExitCode;

use anyhow::bail;
use gatehouse_core::fixture::{FixtureSpec, generate};
use jiff::civil::Date;

use crate::cli::GenFixtureArgs;
use crate::fsutil::write_tree;

pub fn run(args: GenFixtureArgs, today: Date) -> anyhow::Result<ExitCode> {
    if args
        .out
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!("{} is not empty; pick a new folder", args.out.display());
    }
    let files: Vec<(String, Vec<u8>)> = generate(FixtureSpec {
        seed: args.seed,
        scale: args.scale,
        today,
    })
    .into_iter()
    .map(|(p, c)| (p, c.into_bytes()))
    .collect();
    write_tree(&args.out, &files, false)?;
    eprintln!("wrote {} files to {}", files.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}
