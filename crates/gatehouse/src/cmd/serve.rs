//! `gatehouse serve`: the runtime guard (the server itself lives in `gatehouse-server`).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::{GuardMode, Secret, ServerConfig};

use crate::cli::ServeArgs;

/// A secret from a file (trailing newline dropped) or the environment; never printed.
fn secret(file: Option<&std::path::Path>, var: &str) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the secret file {}", path.display()))?;
        anyhow::ensure!(!text.trim().is_empty(), "{} is empty", path.display());
        return Ok(Some(Secret::new(text)));
    }
    Ok(std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new))
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let webhook_secret = match secret(
        args.webhook_secret_file.as_deref(),
        "GATEHOUSE_WEBHOOK_SECRET",
    )? {
        Some(s) => s,
        None => {
            // Start anyway (the ledger, the API and the health endpoints work), but with a
            // secret nobody knows: every delivery is refused until one is configured.
            tracing::warn!(
                "GATEHOUSE_WEBHOOK_SECRET is not set (nor --webhook-secret-file): webhooks will be refused with 401 until it is"
            );
            let random: String = (0..48).map(|_| fastrand::alphanumeric()).collect();
            Secret::new(random)
        }
    };
    let mut config = ServerConfig::new(args.dir.clone(), args.db.clone(), webhook_secret);
    config.listen = args.listen;
    config.github_token = secret(None, "GITHUB_TOKEN")?;
    if let Ok(api) = std::env::var("GATEHOUSE_GITHUB_API") {
        config.github_api = api;
    }
    config.mode = args.dry_run.then_some(GuardMode::DryRun);
    config.admin_token = secret(None, "GATEHOUSE_ADMIN_TOKEN")?;
    eprintln!(
        "gatehouse serve: {} on http://{} (storage {})",
        args.dir.display(),
        args.listen,
        args.db
    );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(gatehouse_server::serve(config))?;
    Ok(ExitCode::SUCCESS)
}
