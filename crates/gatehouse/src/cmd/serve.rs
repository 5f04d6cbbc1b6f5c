//! `gatehouse serve`: the runtime guard (the server itself lives in `gatehouse-server`).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::{CatchUp, GuardMode, Secret, ServerConfig};

use super::parse_duration;
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

/// One token per runner pool: each file of `dir` is named like its pool.
fn pool_tokens(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Secret)>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--gate-tokens: reading the folder {}", dir.display()))?;
    let mut tokens = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(pool) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if pool.starts_with('.') || !path.is_file() {
            continue;
        }
        let token = secret(Some(&path), "")?.expect("a file's secret is always some");
        anyhow::ensure!(
            token.expose().trim().len() >= 32,
            "{}: a pool token must be at least 32 characters (e.g. `openssl rand -hex 32`)",
            path.display()
        );
        tokens.push((pool.to_string(), token));
    }
    anyhow::ensure!(
        !tokens.is_empty(),
        "--gate-tokens: {} holds no token file (one per runner pool, named like the pool)",
        dir.display()
    );
    tokens.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tokens)
}

fn signing_key(path: &std::path::Path) -> anyhow::Result<gatehouse_gate::snapshot::SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--gate-key: reading {}", path.display()))?;
    gatehouse_gate::snapshot::SigningKey::from_text(&text)
        .map_err(|e| anyhow::anyhow!("--gate-key {}: {e}", path.display()))
}

pub fn run(args: ServeArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
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
    if let Some(dir) = &args.gate_tokens {
        let mut gate = gatehouse_server::gate::GateConfig::new(
            pool_tokens(dir)?,
            args.gate_key.as_deref().map(signing_key).transpose()?,
        );
        gate.snapshot_max_age = parse_duration("--snapshot-max-age", &args.snapshot_max_age)?;
        anyhow::ensure!(
            !gate.snapshot_max_age.is_zero(),
            "--snapshot-max-age must be longer than zero"
        );
        config.gate = Some(gate);
    }
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
    rt.block_on(async {
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
