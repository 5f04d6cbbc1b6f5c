//! The one pull request comment `gatehouse approvals` writes (and edits on later runs): who
//! must approve, the reviews, the eligibility report and the plan.

use std::fmt::Write;

use anyhow::Context;
use gatehouse_core::approval::{Requirement, Verdict};
use gatehouse_github::{self as github, Client, Method};
use serde_json::json;

use super::Target;
use super::answers::Comment;
use super::eligibility::Eligibility;
use super::status::{cut, short};

/// Starts the one comment this command writes, so that later runs find it.
pub const MARKER: &str = "<!-- gatehouse:approvals -->";

/// GitHub refuses a comment longer than 65,536 characters; the comment stays well below.
const MAX_COMMENT_CHARS: usize = 60_000;

/// The account id of GitHub Actions' `github-actions[bot]`, which the workflow's token writes
/// as. A GitHub App's token writes as the app's bot: set `GATEHOUSE_BOT_ID` to its id.
pub const ACTIONS_BOT_ID: i64 = 41_898_282;

/// The account whose comment this command edits.
pub(super) fn bot_id() -> anyhow::Result<i64> {
    match std::env::var("GATEHOUSE_BOT_ID") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| {
            format!("GATEHOUSE_BOT_ID must be the numeric account id of the bot, got `{v}`")
        }),
        _ => Ok(ACTIONS_BOT_ID),
    }
}

/// The comment marked with [`MARKER`] and written by the bot's own account (by numeric id) is
/// edited; anyone can paste the marker into a comment of their own, and such a comment is never
/// touched. One is created only when the bot has none.
pub(super) async fn upsert_comment(
    client: &Client,
    target: &Target<'_>,
    body: &str,
) -> Result<Option<String>, github::Error> {
    let bot = bot_id().unwrap_or(ACTIONS_BOT_ID);
    let n = target.number.to_string();
    let comments: Vec<Comment> = client
        .get_all(&target.path(&["issues", &n, "comments"]), None)
        .await?
        .unwrap_or_default();
    let mine = comments.iter().find(|c| {
        c.body.as_deref().is_some_and(|b| b.starts_with(MARKER))
            && c.user.as_ref().is_some_and(|u| u.id == Some(bot))
    });
    let payload = json!({ "body": body });
    let written: Comment = match mine {
        Some(c) => {
            let id = c.id.to_string();
            client
                .mutate(
                    Method::PATCH,
                    &target.path(&["issues", "comments", &id]),
                    Some(&payload),
                )
                .await?
        }
        None => {
            client
                .mutate(
                    Method::POST,
                    &target.path(&["issues", &n, "comments"]),
                    Some(&payload),
                )
                .await?
        }
    };
    eprintln!(
        "{} the comment on #{}",
        if mine.is_some() { "edited" } else { "posted" },
        target.number
    );
    Ok(written.html_url)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn comment_body(
    org: &str,
    sha: &str,
    author: &str,
    needs: &[Requirement],
    verdict: &Verdict,
    eligibility: &[Eligibility],
    plan: &str,
    run_url: Option<&str>,
) -> String {
    let mut out = format!("{MARKER}\n### gatehouse: approvals\n\n");
    let _ = writeln!(
        out,
        "**{}**: {} of {} approval(s) on the head commit `{}`.\n",
        if verdict.refused.is_some() {
            "Refused"
        } else if verdict.approved() {
            "Approved"
        } else {
            "Pending"
        },
        verdict.approved_by.len(),
        verdict.needed,
        short(sha)
    );
    if let Some(why) = &verdict.refused {
        let _ = writeln!(out, "This pull request cannot be judged: {why}.\n");
    }
    out.push_str("**Who must approve**");
    if needs.len() > 1 {
        out.push_str(" (one approval counts only from someone in every group)");
    }
    out.push_str("\n\n");
    for r in needs {
        let _ = writeln!(
            out,
            "- {}: {} approval(s) from `{}`; because of {}",
            r.group,
            r.min_approvals,
            r.who(org),
            cut(&r.because.join(", "), 2_000)
        );
    }
    if !author.is_empty() {
        let _ = writeln!(
            out,
            "\nThe author, `@{author}`, and whoever wrote or committed its commits cannot \
             approve this pull request."
        );
    }
    // What is left for the tables and the plan; each is cut to what fits, with a link to the
    // whole of it in the run's log.
    let whole = match run_url {
        Some(url) => format!("[the workflow run's log]({url})"),
        None => "the workflow run's log".to_string(),
    };
    let fits = |out: &String, more: &str| {
        out.chars().count() + more.chars().count() < MAX_COMMENT_CHARS / 2
    };
    if !verdict.reviews.is_empty() {
        out.push_str("\n| reviewer | latest review | counts? |\n| --- | --- | --- |\n");
        for (i, r) in verdict.reviews.iter().enumerate() {
            let row = format!(
                "| `@{}` | {} | {} |\n",
                r.login,
                r.state.to_lowercase(),
                if r.counts {
                    "yes".to_string()
                } else {
                    format!("no: {}", r.why)
                }
            );
            if !fits(&out, &row) {
                let _ = writeln!(out, "\n…and {} more review(s).", verdict.reviews.len() - i);
                break;
            }
            out.push_str(&row);
        }
    }
    if !eligibility.is_empty() {
        let _ = write!(
            out,
            "\n**Eligibility**\n\n| request | action | project | resource | repository | \
             role of `@{author}` there | already holds it | projects holding the resource now |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for (i, e) in eligibility.iter().enumerate() {
            let row = format!(
                "| `{}` | {} | `{}` | `{}` | `{}`: {} | {} | {} | {} |\n",
                e.request,
                e.action,
                e.project,
                e.resource,
                e.repository,
                e.repository_state,
                e.author_role,
                if e.holds { "yes" } else { "no" },
                e.projects_now
            );
            if !fits(&out, &row) {
                let _ = writeln!(
                    out,
                    "\n…and {} more row(s); the whole report is in {whole}.",
                    eligibility.len() - i
                );
                break;
            }
            out.push_str(&row);
        }
    }
    // A fence longer than any run of backticks in the plan, which quotes file names.
    let longest = plan.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.clamp(2, 100) + 1);
    let _ = writeln!(
        out,
        "\n**Plan** (what `gatehouse apply` does once this is merged)\n\n{fence}text"
    );
    let room = MAX_COMMENT_CHARS.saturating_sub(out.chars().count() + 1_000);
    let shown = cut(plan, room);
    out.push_str(&shown);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "{fence}");
    if shown != plan {
        let _ = writeln!(out, "\nThe plan is cut here; the whole plan is in {whole}.");
    }
    let _ = writeln!(
        out,
        "\n<sub>Written by `gatehouse approvals`; edited in place on every run.</sub>"
    );
    cut(&out, MAX_COMMENT_CHARS)
}
