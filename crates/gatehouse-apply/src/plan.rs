//! The plan: what `apply` would do (ledger changes, the provider changes they cause, the
//! counts the mass-revocation guard needs), as `gatehouse plan` prints it and `approvals`
//! comments it. Read-only.

use std::collections::HashMap;
use std::fmt::Write;

use gatehouse_core::desired::{
    Counting, DesiredState, FEEDSTOCK_CONFIG, ProviderChange, config_state_of, diff, state_of,
};
use gatehouse_core::ledger::{
    LedgerChange, active_grants, applied_repo, plan_expiry, plan_requests,
};
use gatehouse_core::tos_claims::TosAcceptance;
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
    }
}

pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.ledger.is_empty()
        && plan.tos.is_empty()
        && plan.providers.is_empty()
        && plan.skipped.is_empty()
    {
        return "nothing to do: the ledger and the providers' desired state are up to date\n"
            .into();
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
    out
}

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### gatehouse plan\n\n");
    if plan.ledger.is_empty()
        && plan.tos.is_empty()
        && plan.providers.is_empty()
        && plan.skipped.is_empty()
    {
        out.push_str("Nothing to do: the ledger and the providers are up to date.\n");
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
    out
}
