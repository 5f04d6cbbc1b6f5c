//! Sponsor credit pools (`pools/<name>.yml`): their credit and dates read, the resources they
//! fund exist and can be counted in their unit, and where two pools fund the same job an
//! explicit `order` says which pays first.

use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::names::project_key;
use crate::span::Span;

pub(super) fn validate_pools(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for p in &ctx.repo.pools {
        let file = p.path.as_str();
        let v = &p.value;
        let credit_help = "write `amount: 5000` with `currency: USD`, or `minutes: 100000`";
        match (&v.amount, &v.currency, &v.minutes) {
            (Some(a), Some(c), None) => {
                if !a.value.is_finite() || a.value <= 0.0 {
                    diags.push(
                        Diagnostic::error(
                            "pool-credit",
                            file,
                            a.span,
                            "`amount` must be a positive number",
                        )
                        .with_help(credit_help),
                    );
                }
                let code = &c.value;
                if !crate::cost::is_currency_code(code) {
                    diags.push(
                        Diagnostic::error(
                            "pool-credit",
                            file,
                            c.span,
                            format!("`{code}` is not an ISO 4217 currency code"),
                        )
                        .with_help("write the three capital letters, such as `USD` or `EUR`"),
                    );
                }
            }
            (None, None, Some(m)) if m.value == 0 => diags.push(
                Diagnostic::error("pool-credit", file, m.span, "`minutes: 0` funds nothing")
                    .with_help(credit_help),
            ),
            (None, None, Some(_)) => {}
            (amount, currency, minutes) => {
                let span = amount
                    .as_ref()
                    .map(|a| a.span)
                    .or(currency.as_ref().map(|c| c.span))
                    .or(minutes.as_ref().map(|m| m.span))
                    .unwrap_or(Span::UNKNOWN);
                diags.push(
                    Diagnostic::error(
                        "pool-credit",
                        file,
                        span,
                        "a pool's credit is either `amount` with `currency`, or `minutes`",
                    )
                    .with_help(credit_help),
                );
            }
        }
        if v.end.value < v.start.value {
            diags.push(
                Diagnostic::error(
                    "pool-dates",
                    file,
                    v.end.span,
                    format!(
                        "the pool ends ({}) before it starts ({})",
                        v.end.value, v.start.value
                    ),
                )
                .with_help("`start` and `end` are the first and the last day jobs draw from it"),
            );
        } else if v.end.value.0 < ctx.today {
            diags.push(
                Diagnostic::warning(
                    "pool-dates",
                    file,
                    v.end.span,
                    format!("the pool ended on {}: it funds nothing", v.end.value),
                )
                .with_help("remove the file, or move it out of `pools/` to keep its record"),
            );
        }
        if v.resources.is_empty() {
            diags.push(
                Diagnostic::error(
                    "pool-resource",
                    file,
                    Span::UNKNOWN,
                    "the pool funds no resource",
                )
                .with_help("list the resources it pays for: `resources: [gpu-large]`"),
            );
        }
        for r in &v.resources {
            let Some(resource) = ctx.index.resources.get(r.as_str()) else {
                diags.push(
                    Diagnostic::error(
                        "pool-resource",
                        file,
                        r.span,
                        format!("no resource is named `{}`", r.value),
                    )
                    .with_help("name a resource of `resources/`"),
                );
                continue;
            };
            // A currency that is no ISO code is reported above; no price can be in it.
            let Some(currency) = v
                .currency
                .as_ref()
                .filter(|c| crate::cost::is_currency_code(&c.value))
            else {
                continue;
            };
            let price = resource
                .value
                .cost
                .as_ref()
                .and_then(|c| crate::cost::Price::of(&c.value));
            match price {
                None => diags.push(
                    Diagnostic::error(
                        "pool-resource",
                        file,
                        r.span,
                        format!(
                            "`{}` has no price, so its minutes cannot be counted in {}",
                            r.value, currency.value
                        ),
                    )
                    .with_help(format!(
                        "give `{}` a `cost:` in {}, or fund it with a pool of `minutes`",
                        r.value, currency.value
                    )),
                ),
                Some(price) if price.currency != currency.value => diags.push(
                    Diagnostic::error(
                        "pool-resource",
                        file,
                        r.span,
                        format!(
                            "`{}` is priced in {}, the pool counts in {}",
                            r.value, price.currency, currency.value
                        ),
                    )
                    .with_help("amounts in different currencies are never added up: use one"),
                ),
                Some(_) => {}
            }
        }
        for a in &v.alerts {
            if !(1..=100).contains(&a.value) {
                diags.push(
                    Diagnostic::error(
                        "pool-alerts",
                        file,
                        a.span,
                        format!("alert at {}% is not a share of the credit", a.value),
                    )
                    .with_help("alerts are percentages from 1 to 100: `alerts: [80, 100]`"),
                );
            }
        }
        for project in &v.projects {
            let funded = v
                .resources
                .iter()
                .any(|r| ctx.index.has_grant(project.as_str(), r.as_str()));
            if !funded {
                diags.push(
                    Diagnostic::warning(
                        "pool-projects",
                        file,
                        project.span,
                        format!(
                            "`{}` holds no grant of a resource this pool funds",
                            project.value
                        ),
                    )
                    .with_help("the pool pays only for jobs a grant lets run"),
                );
            }
        }
    }
    validate_overlaps(ctx, diags);
}

/// Two pools that can pay for one job (a resource in common, dates that meet, projects that
/// meet) need distinct `order`s: which pays first is written down, never left to file names.
fn validate_overlaps(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let pools = &ctx.repo.pools;
    for (i, a) in pools.iter().enumerate() {
        for b in &pools[i + 1..] {
            let (va, vb) = (&a.value, &b.value);
            let common = va
                .resources
                .iter()
                .find(|r| vb.resources.iter().any(|s| s.value == r.value));
            let Some(common) = common else { continue };
            let dates_meet = va.start.value <= vb.end.value && vb.start.value <= va.end.value;
            let keys = |p: &crate::model::Pool| {
                p.projects
                    .iter()
                    .map(|x| project_key(x))
                    .collect::<Vec<_>>()
            };
            let (pa, pb) = (keys(va), keys(vb));
            let projects_meet = pa.is_empty() || pb.is_empty() || pa.iter().any(|p| pb.contains(p));
            if !dates_meet || !projects_meet {
                continue;
            }
            let ordered = match (&va.order, &vb.order) {
                (Some(x), Some(y)) => x.value != y.value,
                _ => false,
            };
            if !ordered {
                diags.push(
                    Diagnostic::error(
                        "pool-order",
                        b.path.as_str(),
                        vb.order.as_ref().map_or(common.span, |o| o.span),
                        format!(
                            "`{}` and `{}` both fund `{}` at the same time: which pays first is not said",
                            a.stem(),
                            b.stem(),
                            common.value
                        ),
                    )
                    .with_help("give both pools an `order` (the lower pays first), each a different one"),
                );
            }
        }
    }
}
