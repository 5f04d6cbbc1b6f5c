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
    /// How long a job over a concurrency cap waits in the gate for a slot before it fails
    /// alone (`concurrency-exhausted`): seconds, minutes or hours such as `90s`, `10m`, `1h`.
    /// Absent: 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_wait: Option<Spanned<String>>,
}

/// How long a job waits for a slot when its pool does not say.
pub const DEFAULT_CONCURRENCY_WAIT_SECS: u64 = 600;

/// The longest `concurrency_wait`: a waiting job holds its runner, and GitHub ends a
/// self-hosted job after 5 days anyway.
pub const MAX_CONCURRENCY_WAIT_SECS: u64 = 24 * 3600;

/// How long a gate keeps asking at most, whatever the guard answers (the longest
/// `concurrency_wait` and a minute).
pub fn gate_wait_limit_secs() -> u64 {
    MAX_CONCURRENCY_WAIT_SECS + 60
}

/// `90s`, `10m`, `1h` as seconds.
pub fn parse_wait(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unit = text
        .char_indices()
        .last()
        .map(|(i, _)| i)
        .ok_or_else(|| "is empty".to_string())?;
    let (digits, unit) = text.split_at(unit);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a number followed by s, m or h"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(|| format!("`{text}` is not a number followed by s, m or h"))?;
    if secs > MAX_CONCURRENCY_WAIT_SECS {
        return Err(format!(
            "`{text}` is longer than {} hours",
            MAX_CONCURRENCY_WAIT_SECS / 3600
        ));
    }
    Ok(secs)
}

impl PoolSettings {
    /// How long a job waits for a slot, in seconds (the default when absent or invalid:
    /// `check` reports an invalid one).
    pub fn concurrency_wait_secs(&self) -> u64 {
        self.concurrency_wait
            .as_ref()
            .and_then(|w| parse_wait(&w.value).ok())
            .unwrap_or(DEFAULT_CONCURRENCY_WAIT_SECS)
    }
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
