//! `gatehouse doctor`: every configured credential against its API, saying which is missing or
//! rejected.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::repo::load_dir;
use gatehouse_github::{Client, Service};
use gatehouse_providers as providers;
use serde::de::IgnoredAny;

/// Checks every credential the configured providers need, one line each.
pub fn run(dir: &Path, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let repo = load_dir(dir)?;
    let settings = &repo
        .settings
        .as_ref()
        .with_context(|| format!("{} has no gatehouse.yml", dir.display()))?
        .value;
    let mut needed: Vec<(Service, Vec<&str>)> = Vec::new();
    for (name, p) in &settings.providers {
        if p.kind() == gatehouse_core::model::ProviderKind::GithubApp {
            continue; // checked below, with its own token
        }
        for service in providers::services_for(p) {
            match needed.iter_mut().find(|(s, _)| *s == service) {
                Some((_, names)) => names.push(name),
                None => needed.push((service, vec![name])),
            }
        }
    }
    // ... and so is Cirun's own installation, when a Cirun provider names it.
    let apps: Vec<&str> = settings
        .providers
        .iter()
        .filter(|(_, p)| {
            p.kind() == gatehouse_core::model::ProviderKind::GithubApp
                || (p.kind() == gatehouse_core::model::ProviderKind::Cirun
                    && p.installation_id().is_some())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if needed.is_empty() && apps.is_empty() {
        println!("no providers are configured in gatehouse.yml; there is no credential to check");
        return Ok(ExitCode::SUCCESS);
    }
    let mut all_ok = true;
    for (service, names) in needed {
        let var = service.token_var();
        let used_by = format!("used by {}", names.join(", "));
        let verdict = match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            None => format!("missing   {var} ({service}, {used_by}): set it in the environment"),
            Some(_) => match providers::client_from_env(service) {
                Err(e) => format!("error     {var} ({service}, {used_by}): {e:#}"),
                Ok(client) => probe(rt, &client, &settings.org.value, var, &used_by),
            },
        };
        all_ok &= verdict.starts_with("ok");
        println!("{verdict}");
    }
    // GitHub App installations are changed with an organisation owner's token.
    if !apps.is_empty() {
        let var = providers::ADMIN_TOKEN_VAR;
        let used_by = format!("used by {}", apps.join(", "));
        let verdict = match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
            None => format!(
                "missing   {var} (GitHub, {used_by}): set it to a user token of an organisation owner (an App token cannot change another App's installation); until then GITHUB_TOKEN is used"
            ),
            Some(_) => match providers::admin_client_from_env() {
                Err(e) => format!("error     {var} (GitHub, {used_by}): {e:#}"),
                Ok(client) => probe(rt, &client, &settings.org.value, var, &used_by),
            },
        };
        all_ok &= verdict.starts_with("ok");
        println!("{verdict}");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Asks the service one cheap question that needs the credential.
fn probe(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    org: &str,
    var: &str,
    used_by: &str,
) -> String {
    let service = client.service();
    let path: &[&str] = match service {
        Service::GitHub => &["rate_limit"],
        Service::Cirun => &["access-control"],
    };
    let answer = match service {
        Service::GitHub => runtime.block_on(client.get::<IgnoredAny>(path)),
        // As cirun-py's `get_access_control` asks: the organisation in a JSON body.
        Service::Cirun => runtime
            .block_on(client.get_with_body::<IgnoredAny>(path, &serde_json::json!({ "org": org }))),
    };
    match answer {
        Ok(Some(_)) => format!("ok        {var} ({service}, {used_by})"),
        // Cirun answers 404 while no policy was ever written; the key was accepted.
        Ok(None) if service == Service::Cirun => format!("ok        {var} ({service}, {used_by})"),
        Ok(None) => format!(
            "error     {var} ({service}, {used_by}): /{} was not found; check {}",
            path.join("/"),
            service.api_var()
        ),
        Err(e) if e.is_refusal() => format!("rejected  {var} ({service}, {used_by}): {e}"),
        Err(e) if e.is_unavailable() => format!("unreachable {var} ({service}, {used_by}): {e}"),
        Err(e) => format!("error     {var} ({service}, {used_by}): {e}"),
    }
}
