//! `gatehouse import github-app --provider NAME`: the repositories a GitHub App installation
//! holds today (Namespace, Blacksmith, Depot, Cirrus Runners) become grants of the provider's
//! resource, so the ledger starts from what the organisation already gave.
//!
//! Listing another App's installation needs a user token of an organisation owner (an App's
//! own token cannot): it is read from `GATEHOUSE_ADMIN_TOKEN`, never from `GITHUB_TOKEN`.
//! The call is GitHub's "List repositories accessible to the user access token" of the
//! installation, `GET /user/installations/{installation_id}/repositories` (operation
//! `apps/list-installation-repos-for-authenticated-user` in @octokit/openapi).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::duration::Day;
use gatehouse_core::ledger::{LedgerChange, apply_changes};
use gatehouse_core::model::{Grant, ProviderSettings};
use gatehouse_core::{Diagnostic, Span, Spanned};
use jiff::civil::Date;

use crate::cli::ImportGithubAppArgs;
use crate::fsutil::{safe_join, write_atomic};
use crate::github::{Client, Secret, Service, Settings};
use crate::report::{self, Format};

/// The variable that holds an organisation owner's user token.
pub const ADMIN_TOKEN_VAR: &str = "GATEHOUSE_ADMIN_TOKEN";

#[derive(serde::Deserialize)]
struct Listed {
    full_name: String,
}

pub fn run(
    args: ImportGithubAppArgs,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let granted = match &args.granted {
        Some(s) => super::today(Some(s)).context("--granted")?,
        None => today,
    };
    let repo = super::load_repo_warn(&args.dir, today)?;
    let settings = &repo
        .settings
        .as_ref()
        .with_context(|| format!("{} has no gatehouse.yml", args.dir.display()))?
        .value;
    let provider = settings.providers.get(&args.provider).with_context(|| {
        format!(
            "gatehouse.yml defines no provider `{}`; add it under `providers:` with `kind: github-app` and its `installation_id`",
            args.provider
        )
    })?;
    let ProviderSettings::GithubApp(app) = provider else {
        bail!(
            "provider `{}` is of kind `{}`, not `github-app`",
            args.provider,
            provider.kind().as_str()
        );
    };
    let installation = app.installation_id.value;
    let resources: Vec<&str> = repo
        .resources
        .iter()
        .filter(|r| r.value.provider.as_str() == args.provider)
        .map(|r| r.value.name.as_str())
        .collect();
    let resource = match (&args.resource, resources.as_slice()) {
        (Some(r), _) if resources.contains(&r.as_str()) => r.clone(),
        (Some(r), _) => bail!(
            "`{r}` is not a resource of provider `{}` (its resources: {})",
            args.provider,
            resources.join(", ")
        ),
        (None, [one]) => one.to_string(),
        (None, []) => bail!(
            "no resource names provider `{}`; add resources/<name>.yml with `provider: {}` first",
            args.provider,
            args.provider
        ),
        (None, many) => bail!(
            "provider `{}` serves several resources ({}); pick the one to grant with --resource",
            args.provider,
            many.join(", ")
        ),
    };

    let token = std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .with_context(|| {
            format!(
                "{ADMIN_TOKEN_VAR} is not set: listing an App installation's repositories needs a user token of an organisation owner (an App token cannot)"
            )
        })?;
    let client = Client::new(Secret::new(token), Settings::for_service(Service::GitHub)?)?;
    let id = installation.to_string();
    let listed: Vec<Listed> = rt
        .block_on(client.get_all(
            &["user", "installations", &id, "repositories"],
            Some("repositories"),
        ))?
        .with_context(|| {
            format!("the app installation {id} does not exist or {ADMIN_TOKEN_VAR} cannot see it")
        })?;

    let org = settings.org.value.as_str();
    let mut warnings = Vec::new();
    let mut changes = Vec::new();
    let mut held = 0;
    for r in &listed {
        let project = r
            .full_name
            .split_once('/')
            .filter(|(owner, _)| owner.eq_ignore_ascii_case(org))
            .and_then(|(_, name)| name.strip_suffix(settings.repo_suffix.as_str()))
            .filter(|p| !p.is_empty());
        let Some(project) = project else {
            warnings.push(Diagnostic::warning(
                "not-a-project",
                "",
                Span::UNKNOWN,
                format!(
                    "installation {id} holds {}, which is not a project of {org} (`{org}/<project>{}`); not imported",
                    r.full_name, settings.repo_suffix
                ),
            ));
            continue;
        };
        let holds = repo.grant_file(project).is_some_and(|f| {
            f.value
                .grants
                .iter()
                .any(|g| g.resource.as_str() == resource)
        });
        if holds {
            held += 1;
            continue;
        }
        warnings.push(
            Diagnostic::warning(
                "no-expiry",
                "",
                Span::UNKNOWN,
                format!(
                    "`{project}` holds `{resource}` through installation {id} without an end: the grant has no `expires`"
                ),
            )
            .with_help(format!(
                "add `expires: YYYY-MM-DD` to `{resource}` in the project's grant file, or renew through requests"
            )),
        );
        changes.push(LedgerChange::Grant {
            project: project.to_string(),
            resource: resource.clone(),
            pull_request: false,
            expires: None,
            request: format!("imported from app installation {id}"),
            grant: Box::new(Grant {
                resource: Spanned::unplaced(resource.clone()),
                pull_request: false,
                forks: None,
                granted: Spanned::unplaced(Day(granted)),
                expires: None,
                request: None,
                approved_by: Vec::new(),
                users: None,
                send_pr: false,
            }),
        });
    }
    for (path, file) in apply_changes(&repo, &changes) {
        if let Some(file) = file {
            let yaml = serde_saphyr::to_string(&file).context("writing a grant file as YAML")?;
            write_atomic(&safe_join(&args.dir, &path)?, yaml.as_bytes())?;
        }
    }
    if !warnings.is_empty() {
        report::print(Format::Human, Path::new("."), &warnings)?;
    }
    println!(
        "imported {} grants of `{resource}` from app installation {id} ({} repositories, {held} already in the ledger) into {}",
        changes.len(),
        listed.len(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
