//! `gatehouse import cirun`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::Diagnostic;
use gatehouse_core::import::cirun::{self, ImportOptions};
use gatehouse_core::import::users_json;
use gatehouse_core::model::TosList;
use gatehouse_core::parse::{MAX_FILE_BYTES, MAX_TOS_BYTES};
use jiff::civil::Date;

use crate::cli::ImportCirunArgs;
use crate::fsutil::write_tree;
use crate::report::{self, Format};

fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    read_at_most(path, MAX_FILE_BYTES)
}

fn read_at_most(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= limit as u64,
        "{} is {} bytes; the limit is {} MiB",
        path.display(),
        meta.len(),
        limit / (1024 * 1024)
    );
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// YAML text of a model value, as gatehouse writes it.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).context("rendering YAML")
}

pub fn run_cirun(
    args: ImportCirunArgs,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let granted = match &args.granted {
        Some(s) => super::today(Some(s)).context("--granted")?,
        None => today,
    };
    let access_bytes = read_limited(&args.access)?;
    let runner_bytes = read_limited(&args.runners)?;
    let access_name = args.access.display().to_string();
    let runners_name = args.runners.display().to_string();
    let (access, global) =
        match cirun::parse(&access_name, &access_bytes, &runners_name, &runner_bytes) {
            Ok(parsed) => parsed,
            Err(diags) => {
                report::print(Format::Human, Path::new("."), &diags)?;
                return Ok(ExitCode::from(1));
            }
        };
    let imported = cirun::import(
        &access,
        &access_name,
        &global,
        &runners_name,
        &ImportOptions {
            provider: &args.provider,
            repo_suffix: &args.repo_suffix,
            granted,
        },
    );

    // The people the policies' `users_from_json` lets in become people/tos.yml.
    let people = match (&imported.users_from_json, &args.users_json, args.online) {
        (_, Some(path), _) => Some((
            read_users(
                &path.display().to_string(),
                &read_at_most(path, MAX_TOS_BYTES)?,
            )?,
            path.display().to_string(),
        )),
        (Some(url), None, true) => Some((read_users(url, &fetch_users(url, rt)?)?, url.clone())),
        (None, None, true) => {
            anyhow::bail!(
                "--online reads the users list of `users_from_json`, but no policy has one"
            )
        }
        (Some(url), None, false) => anyhow::bail!(
            "the policies let in the people listed at {url} (users_from_json); pass --users-json FILE (a copy of that list) or --online to read it, so that people/tos.yml lists them (without it every person would be denied)"
        ),
        (None, None, false) => None,
    };

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if !args.out.join("gatehouse.yml").exists() {
        // The provider keeps reading the list it reads today; point it at the ledger's own
        // (`gatehouse site`'s v1/tos-users.json) once the site is published.
        let users_from_json = imported
            .users_from_json
            .as_ref()
            .map(|u| format!(", users_from_json: {}", serde_json::Value::from(u.as_str())))
            .unwrap_or_default();
        let settings = format!(
            "# Written by `gatehouse import cirun`; see `gatehouse schema settings`.\norg: {}\nrepo_suffix: \"{}\"\nreviewers: {{ teams: [core], min_approvals: 1 }}\nguard: {{ mode: enforce }}\nproviders:\n  {}: {{ kind: cirun, access_repo: .cirun{users_from_json} }}\n",
            args.org, args.repo_suffix, args.provider
        );
        files.push(("gatehouse.yml".into(), settings.into_bytes()));
    }
    if let Some((list, source)) = &people {
        files.push((
            gatehouse_core::repo::TOS_FILE.into(),
            users_json::to_tos_yaml(list, source).into_bytes(),
        ));
    }
    for r in &imported.resources {
        files.push((
            format!("resources/{}.yml", r.name.value),
            to_yaml(r)?.into_bytes(),
        ));
    }
    for g in &imported.grants {
        files.push((
            format!("grants/{}.yml", g.project.value),
            to_yaml(g)?.into_bytes(),
        ));
    }
    write_tree(&args.out, &files, args.force)?;

    let warnings: Vec<Diagnostic> = imported.warnings;
    if !warnings.is_empty() {
        report::print(Format::Human, Path::new("."), &warnings)?;
    }
    let grants: usize = imported.grants.iter().map(|g| g.grants.len()).sum();
    println!(
        "imported {} resources and {} grants for {} projects into {}",
        imported.resources.len(),
        grants,
        imported.grants.len(),
        args.out.display()
    );
    if let Some((list, source)) = &people {
        println!(
            "imported {} people who accepted the terms from {source} into {}",
            list.len(),
            gatehouse_core::repo::TOS_FILE
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A users list (`users_from_json`'s format); its problems are printed, then refused.
fn read_users(source: &str, bytes: &[u8]) -> anyhow::Result<TosList> {
    users_json::parse(source, bytes).or_else(|diags| {
        report::print(Format::Human, Path::new("."), &diags)?;
        anyhow::bail!("{source} is not a usable users list; nothing was written")
    })
}

/// The users list at `url`: https, or http to this machine (a test's stand-in); at most
/// [`MAX_TOS_BYTES`].
fn fetch_users(url: &str, rt: &tokio::runtime::Runtime) -> anyhow::Result<Vec<u8>> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    anyhow::ensure!(
        parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback),
        "refusing to read the users list over {}: {url} must be an https URL",
        parsed.scheme()
    );
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut resp = client
            .get(parsed)
            .send()
            .await
            .with_context(|| format!("reading {url}"))?;
        anyhow::ensure!(
            resp.status().is_success(),
            "reading {url}: the server answered {}",
            resp.status()
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("reading {url}"))?
        {
            body.extend_from_slice(&chunk);
            anyhow::ensure!(
                body.len() <= MAX_TOS_BYTES,
                "{url} is larger than {} MiB; refused",
                MAX_TOS_BYTES / (1024 * 1024)
            );
        }
        Ok(body)
    })
}
