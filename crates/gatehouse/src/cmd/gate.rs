//! `gatehouse gate` (run by a self-hosted runner's job-started hook) and `gatehouse snapshot`:
//! the flags, handed to `gatehouse_gate::hook`.

use std::process::ExitCode;
use std::time::Duration;

use gatehouse_gate::hook::{self, GateOptions};
use gatehouse_gate::serves::Serves;
use jiff::civil::Date;

use super::parse_duration;
use crate::cli::{GateArgs, GateCommand, SnapshotArgs};

pub fn run(args: GateArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(GateCommand::Keygen { out }) => hook::keygen(&out),
        Some(GateCommand::Fetch {
            guard,
            token_file,
            out,
            public_keys,
        }) => hook::fetch(&guard, &token_file, &out, &public_keys, rt),
        None => {
            let options = GateOptions {
                // A timeout that does not read is the default: the gate must still decide.
                timeout: parse_duration("--timeout", &args.timeout)
                    .unwrap_or(Duration::from_secs(2)),
                // The same for the wait on an unreachable guard: a job is never let through by
                // it, only refused sooner or later.
                unreachable_wait: parse_duration("--unreachable-wait", &args.unreachable_wait)
                    .unwrap_or(hook::UNREACHABLE_WHILE_WAITING),
                serves: match (args.pool, args.resource, args.labels) {
                    (Some(pool), _, _) => Some(Serves::Pool(pool)),
                    (_, Some(resource), _) => Some(Serves::Resource(resource)),
                    (_, _, Some(labels)) => Some(Serves::Labels(
                        labels
                            .into_iter()
                            .map(|l| l.trim().to_string())
                            .filter(|l| !l.is_empty())
                            .collect(),
                    )),
                    _ => None,
                },
                guard: args.guard,
                token_file: args.token_file,
                snapshot: args.snapshot,
                public_keys: args.public_keys,
                state: args.state,
                verbose: args.verbose,
            };
            Ok(hook::decide(&options, rt))
        }
    }
}

/// `gatehouse snapshot`.
pub fn run_snapshot(
    args: SnapshotArgs,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let max_age = parse_duration("--max-age", &args.max_age)?;
    let roles = match &args.db {
        None => Vec::new(),
        Some(db) => rt.block_on(gatehouse_server::gate::stored_roles(db))?,
    };
    hook::write_snapshot(&repo, roles, &args.key, max_age, &args.max_age, &args.out)
}
