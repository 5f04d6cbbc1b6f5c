use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Day;
use crate::span::Spanned;

/// `pools/<name>.yml`: credit a sponsor gives for some resources (a cloud's donated credits, a
/// company's paid minutes). The jobs of those resources draw from it while it runs; a pool
/// that is used up refuses further jobs that only it funds (`budget-exhausted`).
///
/// ```yaml
/// sponsor: Example Cloud
/// amount: 5000          # in `currency`; or `minutes: 100000` instead of both
/// currency: USD
/// start: 2026-01-01
/// end: 2026-12-31
/// resources: [cirun-openstack-gpu-large]
/// projects: [pytorch-cpu]   # optional: only these projects draw from it
/// alerts: [80, 100]         # percent used at which the guard opens (then edits) one issue
/// order: 1                  # which pool pays first when several fund one resource
/// ```
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Who gives the credit, as the public pages name them.
    pub sponsor: Spanned<String>,
    /// A link to the sponsor or the announcement of the gift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The credit in `currency` units: the resources' prices (`cost:`) turn minutes into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Spanned<f64>>,
    /// An ISO 4217 code; the funded resources' prices must be in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Spanned<String>>,
    /// The credit in machine minutes, instead of `amount` and `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<Spanned<u64>>,
    /// The first day jobs draw from it.
    pub start: Spanned<Day>,
    /// The last day jobs draw from it.
    pub end: Spanned<Day>,
    /// The resources it funds.
    pub resources: Vec<Spanned<String>>,
    /// Only these projects draw from it; empty: every project with a grant of its resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<Spanned<String>>,
    /// Percentages of the credit used at which the guard opens an issue in the access
    /// repository (one issue per pool, edited at each further threshold).
    #[serde(default = "default_alerts")]
    pub alerts: Vec<Spanned<u32>>,
    /// Which pool a job draws from when several fund its resource: the lowest `order` with
    /// credit left. Required when pools overlap (`check` says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Spanned<u32>>,
}

/// The alert thresholds when a pool names none: 80% and 100%.
pub const DEFAULT_ALERTS: [u32; 2] = [80, 100];

fn default_alerts() -> Vec<Spanned<u32>> {
    DEFAULT_ALERTS.into_iter().map(Spanned::unplaced).collect()
}
