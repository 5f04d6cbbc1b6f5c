//! `gatehouse serve`: the runtime guard (the server itself lives in `gatehouse-server`).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::{CatchUp, GuardMode, Secret, ServerConfig};

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
    if let Some(hook_id) = args.catch_up_hook {
        let mut catch_up = CatchUp::new(hook_id);
        catch_up.every = parse_duration("--catch-up-every", &args.catch_up_every)?;
        anyhow::ensure!(
            !catch_up.every.is_zero(),
            "--catch-up-every must be longer than zero"
        );
        config.catch_up = Some(catch_up);
    }
    config.facts_ttl = parse_duration("--facts-ttl", &args.facts_ttl)?;
    config.facts_deadline = parse_duration("--facts-deadline", &args.facts_deadline)?;
    anyhow::ensure!(
        !config.facts_ttl.is_zero() && !config.facts_deadline.is_zero(),
        "--facts-ttl and --facts-deadline must be longer than zero"
    );
    if config.github_token.is_none() {
        eprintln!(
            "gatehouse serve: no GITHUB_TOKEN: the guard calls GitHub not at all; it decides only \
             what needs no role (jobs that need one are denied facts-unavailable) and cancels nothing"
        );
    }
    eprintln!(
        "gatehouse serve: {} on http://{} (storage {})",
        args.dir.display(),
        args.listen,
        args.db
    );
    let exit_after = args
        .exit_after
        .as_deref()
        .map(|t| parse_duration("--exit-after", t))
        .transpose()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            match exit_after {
                None => gatehouse_server::serve(config).await,
                Some(after) => {
                    let listener = tokio::net::TcpListener::bind(config.listen)
                        .await
                        .with_context(|| format!("cannot listen on {}", config.listen))?;
                    gatehouse_server::serve_on(listener, config, async move {
                        tokio::time::sleep(after).await;
                        tracing::info!("--exit-after elapsed: stopping");
                    })
                    .await
                }
            }
        })?;
    Ok(ExitCode::SUCCESS)
}

/// `90`, `90s`, `500ms`, `5m`, `1h`.
/// `text` (`30s`, `5m`, `250ms`, `1h`) as a duration; errors name `flag`.
fn parse_duration(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("{flag} `{text}` is not a duration such as 30s or 5m"))?;
    let secs = match unit {
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("{flag} `{text}`: the unit must be ms, s, m or h"),
    };
    Ok(std::time::Duration::from_secs(secs))
}
