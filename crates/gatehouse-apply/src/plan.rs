//! The plan: what `apply` would do (ledger changes, the provider changes they cause, the
//! counts the mass-revocation guard needs, and, read online, where it switches Cirun on or off),
//! as `gatehouse plan` prints it and `approvals` comments it. Read-only.

use std::collections::HashMap;
use std::fmt::Write;

use gatehouse_core::desired::{
    Counting, DesiredState, FEEDSTOCK_CONFIG, ProviderChange, config_state_of, diff, state_of,
};
use gatehouse_core::ledger::{
    LedgerChange, active_grants, applied_repo, plan_expiry, plan_requests,
};
use gatehouse_core::tos_claims::TosAcceptance;
use gatehouse_providers::LimitChange;
use jiff::civil::Date;
use serde::Serialize;

#[derive(Serialize)]
pub struct Plan {
    pub ledger: Vec<LedgerChange>,
    /// People who accept the terms of service with their request: added to `people/tos.yml`
    /// in the same commit.
    pub tos: Vec<TosAcceptance>,
    pub consumed: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub providers: Vec<ProviderChange>,
    pub active_grants: usize,
    pub revocations: usize,
    /// Where `apply` switches Cirun on or off at a repository (Cirun's app installation and
    /// cirun-py's `set_repo`), as [`read_cirun_switches`] found it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cirun_switches: Vec<CirunSwitch>,
    /// Cirun providers with an app installation whose switch was not read (the plan was made
    /// offline): `apply` may switch Cirun on or off there, which this plan cannot show.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub switches_unread: Vec<String>,
    /// The GitHub-hosted larger runners whose `maximum_runners` `apply` sets from the ledger's
    /// caps, as [`read_runner_limits`] found them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<LimitChange>,
    /// Runner-group providers with caps whose larger runners were not read (the plan was made
    /// offline): `apply` may set their `maximum_runners`, which this plan cannot show.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits_unread: Vec<String>,
}

/// What `apply` does to Cirun's switch at one repository.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct CirunSwitch {
    pub provider: String,
    pub installation: u64,
    /// `owner/name`.
    pub repository: String,
    pub action: SwitchAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchAction {
    /// It gains a grant: switched on (`set_repo` active, into the installation).
    On,
    /// It holds no grant: switched off (`--deactivate-ungranted`: `set_repo` inactive, out of
    /// the installation).
    Off,
    /// It holds no grant and stays on (reported; `--deactivate-ungranted` switches it off).
    StaysOn,
}

impl std::fmt::Display for CirunSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (provider, installation, repository) =
            (&self.provider, self.installation, &self.repository);
        match self.action {
            SwitchAction::On => write!(
                f,
                "{provider}: switch Cirun on at {repository}, which gains a grant (set_repo, app installation {installation})"
            ),
            SwitchAction::Off => write!(
                f,
                "{provider}: switch Cirun off at {repository}, which holds no grant (--deactivate-ungranted: set_repo, out of app installation {installation})"
            ),
            SwitchAction::StaysOn => write!(
                f,
                "{provider}: Cirun stays on at {repository}, which holds no grant (reported; --deactivate-ungranted would switch it off)"
            ),
        }
    }
}

/// The Cirun providers that name their app installation: `apply` keeps Cirun's switch there.
fn cirun_installations(repo: &gatehouse_core::Repo) -> Vec<(String, u64)> {
    repo.settings
        .iter()
        .flat_map(|s| s.value.providers.iter())
        .filter_map(|(name, p)| match p {
            gatehouse_core::model::ProviderSettings::Cirun(c) => {
                c.installation_id.as_ref().map(|i| (name.clone(), i.value))
            }
            _ => None,
        })
        .collect()
}

/// Reads each Cirun provider's app installation (`installed`, given the installation id,
/// answers its repositories) and adds to `plan` where `apply` (with `deactivate`:
/// `--deactivate-ungranted`) switches Cirun on or off, judged against the ledger as the plan
/// leaves it, as `apply` judges it.
pub fn add_cirun_switches(
    plan: &mut Plan,
    repo: &gatehouse_core::Repo,
    today: Date,
    deactivate: bool,
    mut installed: impl FnMut(u64) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<()> {
    let after = applied_repo(repo, &plan.ledger, &plan.consumed);
    for (name, installation) in cirun_installations(repo) {
        let listed = installed(installation).map_err(|e| {
            anyhow::anyhow!(
                "reading Cirun's app installation {installation} of provider `{name}`: {e:#}"
            )
        })?;
        let granted = crate::granted_at(&after, &name, today);
        let switch = gatehouse_providers::cirun_app::plan(&listed, &granted, deactivate);
        let mut push = |repositories: Vec<String>, action| {
            plan.cirun_switches
                .extend(repositories.into_iter().map(|repository| CirunSwitch {
                    provider: name.clone(),
                    installation,
                    repository,
                    action,
                }));
        };
        push(switch.activate, SwitchAction::On);
        push(switch.deactivate, SwitchAction::Off);
        push(switch.ungranted, SwitchAction::StaysOn);
        plan.switches_unread.retain(|p| p != &name);
    }
    Ok(())
}

/// [`add_cirun_switches`] with the app installations read from GitHub, with the organisation
/// owner's token (`GATEHOUSE_ADMIN_TOKEN`), as `apply` reads them.
pub fn read_cirun_switches(
    plan: &mut Plan,
    repo: &gatehouse_core::Repo,
    today: Date,
    deactivate: bool,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    if cirun_installations(repo).is_empty() {
        return Ok(());
    }
    let admin = gatehouse_providers::Clients::from_env().admin()?;
    add_cirun_switches(plan, repo, today, deactivate, |installation| {
        rt.block_on(gatehouse_providers::cirun_app::installed_repositories(
            &admin,
            installation,
        ))
    })
}

/// The runner-group providers of `repo` with a cap for some runner their resources name
/// ([`gatehouse_core::desired::runner_limits`]): `apply` may set a larger runner's limit there.
fn capped_runner_groups(repo: &gatehouse_core::Repo) -> Vec<String> {
    repo.settings
        .iter()
        .flat_map(|s| s.value.providers.iter())
        .filter(|(name, p)| {
            p.kind() == gatehouse_core::model::ProviderKind::RunnerGroup
                && !gatehouse_core::desired::runner_limits(repo, name).is_empty()
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Reads the larger runners of every runner-group provider with caps (`GITHUB_TOKEN`, as
/// `apply` reads them) and adds to `plan` the `maximum_runners` `apply` would set.
pub fn read_runner_limits(
    plan: &mut Plan,
    repo: &gatehouse_core::Repo,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let Some(settings) = &repo.settings else {
        return Ok(());
    };
    let clients = gatehouse_providers::Clients::from_env();
    for name in capped_runner_groups(repo) {
        let read = gatehouse_providers::configure(
            repo,
            &name,
            &settings.value.providers[&name],
            today,
            &clients,
        )
        .and_then(|p| rt.block_on(gatehouse_providers::drift(repo, &name, &p)))
        .map_err(|e| anyhow::anyhow!("reading the larger runners of provider `{name}`: {e:#}"))?;
        plan.limits.extend(read.limits);
        plan.limits_unread.retain(|p| p != &name);
    }
    Ok(())
}

#[derive(Serialize)]
pub struct Skipped {
    pub request: String,
    pub why: String,
}

/// The plan for the repository as it stands on `today` (requests without known origins).
pub fn make_plan(repo: &gatehouse_core::Repo, today: Date) -> Plan {
    let requests = plan_requests(repo, today, &HashMap::new());
    let mut ledger = requests.changes;
    // An expired grant that a request revokes too is revoked once.
    let expiry: Vec<LedgerChange> = plan_expiry(repo, today)
        .into_iter()
        .filter(|e| {
            !ledger.iter().any(|c| {
                c.resource() == e.resource()
                    && gatehouse_core::names::same_project(c.project(), e.project())
            })
        })
        .collect();
    ledger.extend(expiry);
    plan_from(
        repo,
        today,
        ledger,
        requests.tos,
        requests.consumed,
        requests.skipped,
    )
}

/// The plan made of these ledger changes: the provider changes they cause, and the counts.
pub fn plan_from(
    repo: &gatehouse_core::Repo,
    today: Date,
    ledger: Vec<LedgerChange>,
    tos: Vec<TosAcceptance>,
    consumed: Vec<String>,
    skipped: Vec<(String, String)>,
) -> Plan {
    let after = applied_repo(repo, &ledger, &consumed);
    // Providers still hold what the last apply gave them, expired or not; after this plan
    // they hold the active grants of the new ledger.
    // Configuration pull requests to the projects (`send_pr`) are planned like a provider.
    let with_config = |r: &gatehouse_core::Repo, counting: Counting| -> DesiredState {
        let mut state = state_of(r, counting);
        let config = config_state_of(r, counting);
        if !config.is_empty() {
            state.insert(FEEDSTOCK_CONFIG.to_string(), config);
        }
        state
    };
    let providers = diff(
        repo,
        &with_config(repo, Counting::StartedBy(today)),
        &with_config(&after, Counting::ActiveOn(today)),
    );
    let revocations = ledger
        .iter()
        .filter(|c| matches!(c, LedgerChange::Revoke { .. }))
        .count();
    Plan {
        ledger,
        tos,
        consumed,
        skipped: skipped
            .into_iter()
            .map(|(request, why)| Skipped { request, why })
            .collect(),
        providers,
        active_grants: active_grants(repo, today),
        revocations,
        cirun_switches: Vec::new(),
        switches_unread: cirun_installations(repo)
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
        limits: Vec::new(),
        limits_unread: capped_runner_groups(&after),
    }
}

impl Plan {
    /// Whether `apply` would change nothing the plan knows of.
    fn is_empty(&self) -> bool {
        self.ledger.is_empty()
            && self.tos.is_empty()
            && self.providers.is_empty()
            && self.skipped.is_empty()
            && self.cirun_switches.is_empty()
            && self.limits.is_empty()
    }
}

pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        out.push_str("nothing to do: the ledger and the providers' desired state are up to date\n");
        unread_text(plan, &mut out);
        return out;
    }
    if !plan.ledger.is_empty() {
        out.push_str("ledger:\n");
        for c in &plan.ledger {
            let _ = writeln!(out, "  {c}");
        }
    }
    for t in &plan.tos {
        let _ = writeln!(
            out,
            "terms of service: {} (id {}) accepts them ({}), added to people/tos.yml",
            t.github, t.id, t.request
        );
    }
    if !plan.consumed.is_empty() {
        let _ = writeln!(out, "requests consumed: {}", plan.consumed.join(", "));
    }
    for s in &plan.skipped {
        let _ = writeln!(out, "skipped {}: {}", s.request, s.why);
    }
    if !plan.providers.is_empty() {
        out.push_str("providers:\n");
        for c in &plan.providers {
            let _ = writeln!(out, "  {c}");
        }
    }
    if !plan.cirun_switches.is_empty() {
        out.push_str("Cirun's switch:\n");
        for s in &plan.cirun_switches {
            let _ = writeln!(out, "  {s}");
        }
    }
    if !plan.limits.is_empty() {
        out.push_str("limits:\n");
        for l in &plan.limits {
            let _ = writeln!(out, "  {l}");
        }
    }
    unread_text(plan, &mut out);
    out
}

fn unread_text(plan: &Plan, out: &mut String) {
    for name in &plan.switches_unread {
        let _ = writeln!(
            out,
            "{name}: Cirun's switch not read (app installation); `gatehouse plan --online` lists where apply switches Cirun on or off"
        );
    }
    for name in &plan.limits_unread {
        let _ = writeln!(
            out,
            "{name}: GitHub-hosted runners not read; `gatehouse plan --online` lists the maximum_runners apply sets from the caps"
        );
    }
}

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### gatehouse plan\n\n");
    if plan.is_empty() {
        out.push_str("Nothing to do: the ledger and the providers are up to date.\n");
        unread_markdown(plan, &mut out);
        return out;
    }
    if !plan.ledger.is_empty() {
        out.push_str(
            "**Ledger**\n\n| change | project | resource | details |\n| --- | --- | --- | --- |\n",
        );
        for c in &plan.ledger {
            let (kind, details) = match c {
                LedgerChange::Grant {
                    pull_request,
                    expires,
                    request,
                    ..
                } => (
                    "grant",
                    format!(
                        "{}until {}; {}",
                        if *pull_request {
                            "pull requests too; "
                        } else {
                            ""
                        },
                        expires.as_deref().unwrap_or("no expiry"),
                        request
                    ),
                ),
                LedgerChange::Renew {
                    from, to, request, ..
                } => (
                    "renew",
                    format!(
                        "{} → {}; {request}",
                        from.as_deref().unwrap_or("no expiry"),
                        to.as_deref().unwrap_or("no expiry")
                    ),
                ),
                LedgerChange::Revoke { why, .. } => ("revoke", why.clone()),
            };
            let _ = writeln!(
                out,
                "| {kind} | `{}` | `{}` | {} |",
                c.project(),
                c.resource(),
                details.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    if !plan.tos.is_empty() {
        out.push_str("**Terms of service** (added to `people/tos.yml`)\n\n");
        for t in &plan.tos {
            let _ = writeln!(
                out,
                "- `{}` (id {}) accepts them: {}",
                t.github, t.id, t.request
            );
        }
        out.push('\n');
    }
    if !plan.skipped.is_empty() {
        out.push_str("**Skipped requests**\n\n");
        for s in &plan.skipped {
            let _ = writeln!(out, "- `{}`: {}", s.request, s.why);
        }
        out.push('\n');
    }
    if !plan.providers.is_empty() {
        out.push_str("**Providers**\n\n| provider | change | repository | resource |\n| --- | --- | --- | --- |\n");
        for c in &plan.providers {
            let _ = writeln!(
                out,
                "| `{}` ({}) | {} | `{}` | `{}` |",
                c.provider,
                c.kind,
                if c.add { "add" } else { "remove" },
                c.repository,
                c.resource
            );
        }
    }
    if !plan.cirun_switches.is_empty() {
        out.push_str("\n**Cirun's switch** (its app installation and `set_repo`)\n\n| provider | change | repository |\n| --- | --- | --- |\n");
        for s in &plan.cirun_switches {
            let change = match s.action {
                SwitchAction::On => "switch on (gains a grant)",
                SwitchAction::Off => "switch off (no grant; `--deactivate-ungranted`)",
                SwitchAction::StaysOn => {
                    "stays on, no grant (reported; `--deactivate-ungranted` switches it off)"
                }
            };
            let _ = writeln!(out, "| `{}` | {change} | `{}` |", s.provider, s.repository);
        }
    }
    if !plan.limits.is_empty() {
        out.push_str("\n**Limits** (`maximum_runners` of GitHub-hosted larger runners, from the caps)\n\n| provider | runner | now | after | resources |\n| --- | --- | --- | --- | --- |\n");
        for l in &plan.limits {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} |",
                l.provider,
                l.runner,
                l.from,
                l.to,
                l.resources
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    unread_markdown(plan, &mut out);
    out
}

fn unread_markdown(plan: &Plan, out: &mut String) {
    for name in &plan.switches_unread {
        let _ = writeln!(
            out,
            "\n`{name}`: Cirun's switch was not read (app installation); `gatehouse plan --online` lists where `apply` switches Cirun on or off."
        );
    }
    for name in &plan.limits_unread {
        let _ = writeln!(
            out,
            "\n`{name}`: its GitHub-hosted runners were not read; `gatehouse plan --online` lists the `maximum_runners` `apply` sets from the caps."
        );
    }
}
