//! The commit status `gatehouse/approval`: the verdict in one line on the head commit.

use gatehouse_core::approval::{Requirement, Verdict};
use gatehouse_github::{self as github, Client, Method};
use serde::de::IgnoredAny;
use serde_json::json;

use super::Target;

/// The commit status this command sets.
pub const STATUS_CONTEXT: &str = "gatehouse/approval";

/// GitHub refuses a status description longer than this.
const MAX_DESCRIPTION: usize = 140;

/// Sets the commit status `gatehouse/approval` (`repos/create-commit-status`).
pub(super) async fn set_status(
    client: &Client,
    target: &Target<'_>,
    sha: &str,
    state: &str,
    description: &str,
    target_url: Option<&str>,
) -> anyhow::Result<()> {
    let status = json!({
        "state": state,
        "context": STATUS_CONTEXT,
        "description": cut(description, MAX_DESCRIPTION),
        "target_url": target_url,
    });
    match client
        .mutate::<IgnoredAny>(
            Method::POST,
            &target.path(&["statuses", sha]),
            Some(&status),
        )
        .await
    {
        Ok(_) => {
            eprintln!("set {STATUS_CONTEXT} to {state} on {}", short(sha));
            Ok(())
        }
        Err(e) => write_refused(e, "set the commit status"),
    }
}

/// A write the token may not make is a warning: a fork's pull request gets a read-only token, and
/// the exit status still tells the verdict. Any other failure is an error.
pub(super) fn write_refused(e: github::Error, what: &str) -> anyhow::Result<()> {
    if matches!(e, github::Error::Forbidden { .. }) {
        eprintln!(
            "warning: could not {what}: {e}. A pull request from a fork gets a read-only token; \
             the exit status still tells the verdict"
        );
        Ok(())
    } else {
        Err(anyhow::Error::new(e).context(format!("could not {what}")))
    }
}

/// The commit status's one line: who approved, or who is still needed.
pub(super) fn description(verdict: &Verdict, needs: &[Requirement], org: &str) -> String {
    let text = if let Some(why) = &verdict.refused {
        format!("refused: {why}")
    } else if verdict.approved() {
        if verdict.approved_by.is_empty() {
            "no approval needed".to_string()
        } else {
            format!("approved by {}", verdict.logins())
        }
    } else {
        let more = u64::from(verdict.needed).saturating_sub(verdict.approved_by.len() as u64);
        let who: Vec<String> = needs.iter().map(|r| r.who(org)).collect();
        match who.as_slice() {
            [one] => format!("needs {more} more approval(s) from {one}"),
            many => format!(
                "needs {more} more approval(s), each from someone in all of: {}",
                many.join("; ")
            ),
        }
    };
    cut(&text, MAX_DESCRIPTION)
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::approval::Approver;

    #[test]
    fn the_status_description_fits() {
        let v = Verdict {
            needed: 1,
            approved_by: vec![Approver {
                login: "x".repeat(200),
                id: None,
            }],
            reviews: vec![],
            missing: vec![],
            refused: None,
        };
        assert_eq!(description(&v, &[], "cf").chars().count(), MAX_DESCRIPTION);
    }
}
