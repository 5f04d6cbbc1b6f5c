use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::span::Spanned;

/// `gate:` in `gatehouse.yml`: the runner pools whose job-started hook runs `gatehouse gate`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
    /// Pool name -> its settings. A pool's runners share one admission token and serve one
    /// resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, PoolSettings>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    /// The resource the pool's runners serve.
    pub resource: Spanned<String>,
    /// What the gate does when neither the guard nor a usable snapshot can decide: `deny` (the
    /// default: the job fails before its first step) or `allow` (it runs, and only the guard's
    /// webhook path judges it; `check` warns).
    #[serde(default = "deny")]
    pub on_unreachable: Spanned<OnUnreachable>,
}

fn deny() -> Spanned<OnUnreachable> {
    Spanned::unplaced(OnUnreachable::Deny)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnreachable {
    #[default]
    Deny,
    Allow,
}
