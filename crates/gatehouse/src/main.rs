//! `gatehouse`: the command-line edge of gatehouse. Argument parsing, file and network I/O,
//! and output formats live here; the rules live in `gatehouse-core`.

mod cli;
mod cmd;
mod example;
mod fsutil;
/// The one GitHub client, shared with the guard.
use gatehouse_github as github;
mod online;
mod providers;
mod report;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_target(false)
        // Colour codes only on a terminal: CI logs and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let today = cmd::today(cli.today.as_deref())?;
    match cli.command {
        Command::Check(args) => cmd::check::run(args, today),
        Command::Import(cli::ImportCommand::Cirun(args)) => cmd::import::run_cirun(args, today),
        Command::Init(args) => cmd::init::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Decide(args) => cmd::decide::run(args, today, false),
        Command::Explain(args) => cmd::decide::run(args, today, true),
        Command::Apply(args) => cmd::apply::run_apply(args, today),
        Command::Expire(args) => cmd::apply::run_expire(args, today),
        Command::Doctor(args) => cmd::apply::run_doctor(args),
        Command::History(args) => cmd::history::run(args),
        Command::Approvals(args) => cmd::approvals::run(args, today),
        Command::Plan(args) => cmd::plan::run(args, today),
        Command::Render(cli::RenderCommand::Cirun(args)) => cmd::render::run_cirun(args, today),
        Command::Render(cli::RenderCommand::Cedar(args)) => cmd::render::run_cedar(args, today),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Audit(args) => cmd::audit::run(args, today),
        Command::Ci(cli::CiCommand::Codeowners(args)) => cmd::ci::run_codeowners(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gatehouse",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::GenFixture(args) => cmd::gen_fixture::run(args, today),
        Command::Site(args) => cmd::site::run(args, today),
    }
}
