//! `gatehouse apply`, `expire` and `doctor`. (Being built: issue 4.)

use std::process::ExitCode;

use jiff::civil::Date;

use crate::cli::{ApplyArgs, DoctorArgs};

pub fn run_apply(_args: ApplyArgs, _today: Date) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`gatehouse apply` is not built yet; `gatehouse plan` shows what it would do")
}

pub fn run_expire(_args: ApplyArgs, _today: Date) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`gatehouse expire` is not built yet; `gatehouse plan` lists expired grants")
}

pub fn run_doctor(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`gatehouse doctor` is not built yet")
}
