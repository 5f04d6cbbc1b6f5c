//! `gatehouse`: the command-line edge of gatehouse. Argument parsing, file and network I/O,
//! and output formats live here; the rules live in `gatehouse-core`.

mod cli;
mod cmd;
mod example;
use gatehouse_apply::fsutil;
/// The one GitHub client, shared with the guard.
use gatehouse_github as github;
mod report;

use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
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
    match run(cli, matches.value_source("today")) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli, today_from: Option<ValueSource>) -> anyhow::Result<ExitCode> {
    if matches!(cli.command, Command::Serve(_)) {
        refuse_today_for_serve(today_from)?;
    }
    let today = cmd::today(cli.today.as_deref())?;
    // The one async runtime of the process, for every command that talks to a network or a
    // database: many threads for the guard, which serves many requests at once; one for the
    // rest, which wait on one thing at a time.
    let runtime = match cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .context("starting the async runtime")?;
    let rt = &runtime;
    match cli.command {
        Command::Check(args) => cmd::check::run(args, today, rt),
        Command::Import(cli::ImportCommand::Cirun(args)) => cmd::import::run_cirun(args, today, rt),
        Command::Import(cli::ImportCommand::GithubApp(args)) => {
            cmd::import_github_app::run(args, today, rt)
        }
        Command::Import(cli::ImportCommand::Labels(args)) => cmd::import_labels::run(args, today),
        Command::Init(args) => cmd::init::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Decide(args) => cmd::decide::run(args, today, false),
        Command::Explain(args) => cmd::decide::run(args, today, true),
        Command::Apply(args) => cmd::apply::run(args, today, gatehouse_apply::Mode::Apply, rt),
        Command::Expire(args) => cmd::apply::run(args, today, gatehouse_apply::Mode::Expire, rt),
        Command::Doctor(args) => gatehouse_apply::doctor::run(&args.dir, rt),
        Command::History(args) => cmd::history::run(args, rt),
        Command::Approvals(args) => cmd::approvals::run(args, today, rt),
        Command::Plan(args) => cmd::plan::run(args, today, rt),
        Command::Render(cli::RenderCommand::Cirun(args)) => cmd::render::run_cirun(args, today),
        Command::Render(cli::RenderCommand::Cedar(args)) => cmd::render::run_cedar(args, today),
        Command::Serve(args) => cmd::serve::run(args, rt),
        Command::Replay(args) => cmd::replay::run(args, rt),
        Command::Why(args) => cmd::why::run(args, rt),
        Command::Gate(args) => cmd::gate::run(args, rt),
        Command::Snapshot(args) => cmd::gate::run_snapshot(args, today, rt),
        Command::Audit(args) => cmd::audit::run(args, today, rt),
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
        Command::Site(args) => cmd::site::run(args, today, rt),
    }
}

/// The guard decides live jobs by the clock: a day given to `serve` would be ignored, and whoever
/// gave it would believe the guard judges expiry as of that day. So it is refused, from the
/// environment too (`GATEHOUSE_TODAY` stands for `--today`, and a guard started in a shell left
/// with it exported would otherwise start as if it took it).
fn refuse_today_for_serve(today_from: Option<ValueSource>) -> anyhow::Result<()> {
    match today_from {
        Some(ValueSource::CommandLine) => anyhow::bail!(
            "serve does not take --today: the guard judges every job by the clock. --today is for \
             the offline commands (check, plan, apply, expire, decide, ...); remove it"
        ),
        Some(ValueSource::EnvVariable) => anyhow::bail!(
            "GATEHOUSE_TODAY is set, and serve does not take it: the guard judges every job by \
             the clock. GATEHOUSE_TODAY stands for --today, which is for the offline commands \
             (check, plan, apply, expire, decide, ...); unset it to start the guard"
        ),
        _ => Ok(()),
    }
}
