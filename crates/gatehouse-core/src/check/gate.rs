//! `gate:` in gatehouse.yml: each runner pool serves a resource that exists, and a pool that
//! lets jobs through when nothing can decide them is said out loud.

use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::OnUnreachable;
use crate::model::parse_wait;

pub(super) fn validate_gate_pools(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let Some(settings) = &ctx.repo.settings else {
        return;
    };
    let file = settings.path.as_str();
    for (name, pool) in &settings.value.gate.pools {
        if ctx.repo.resource(&pool.resource).is_none() {
            diags.push(
                Diagnostic::error(
                    "gate-pool",
                    file,
                    pool.resource.span,
                    format!(
                        "runner pool `{name}` serves `{}`, which is no resource",
                        pool.resource.value
                    ),
                )
                .with_help("name a resource of resources/ (the one the pool's runners serve)"),
            );
        }
        if let Some(wait) = &pool.concurrency_wait
            && let Err(e) = parse_wait(&wait.value)
        {
            diags.push(
                Diagnostic::error(
                    "gate-pool",
                    file,
                    wait.span,
                    format!("runner pool `{name}`'s `concurrency_wait` {e}"),
                )
                .with_help("write seconds, minutes or hours, such as `90s`, `10m` or `1h`"),
            );
        }
        if pool.on_unreachable.value == OnUnreachable::Allow {
            diags.push(
                Diagnostic::warning(
                    "gate-open",
                    file,
                    pool.on_unreachable.span,
                    format!(
                        "runner pool `{name}` lets jobs run when neither the guard nor a usable snapshot can decide them; only the guard's webhook path judges them then"
                    ),
                )
                .with_help("remove `on_unreachable: allow` to refuse such jobs (the default)"),
            );
        }
    }
}
