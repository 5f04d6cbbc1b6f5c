//! The issues `apply` keeps on GitHub: one in the access repository listing the merged
//! requests it holds back, and the helpers that find, open and close an issue by its title (so
//! that none is opened twice).

use anyhow::Context;
use gatehouse_github::{Client, Method, Service};
use gatehouse_providers as providers;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The title of the one issue that lists the merged requests `apply` holds back.
pub const HELD_TITLE: &str = "gatehouse: merged requests held back";

/// Keeps one open issue in the access repository listing the requests held back (not
/// approved, or rejected by `check`), edited when the list changes and closed when it is
/// empty. Without GITHUB_REPOSITORY or a token there is nowhere to report, and the log says it.
pub(crate) fn report_held(
    held: &[crate::plan::Skipped],
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let access = std::env::var("GITHUB_REPOSITORY").unwrap_or_default();
    if access.trim().is_empty() || providers::client_from_env(Service::GitHub).is_err() {
        if !held.is_empty() {
            eprintln!(
                "note: {} request(s) held back; with GITHUB_REPOSITORY and GITHUB_TOKEN set, \
                 apply reports them in one issue",
                held.len()
            );
        }
        return Ok(());
    }
    let client = providers::client_from_env(Service::GitHub)?;
    rt.block_on(async {
        let open = find_open_issue(&client, &access, HELD_TITLE).await?;
        let (owner, name) = providers::split_repository(&access)?;
        if held.is_empty() {
            if let Some(n) = open {
                let n = n.to_string();
                let _: IgnoredAny = client
                    .mutate(
                        Method::PATCH,
                        &["repos", owner, name, "issues", &n],
                        Some(&serde_json::json!({
                            "body": "Every merged request was applied; gatehouse closed this issue.\n",
                            "state": "closed",
                        })),
                    )
                    .await?;
            }
            return Ok(());
        }
        let mut body = String::from(
            "`gatehouse apply` holds these requests back: they stay in `requests/`, nothing is \
             granted for them, and this issue is edited on every run until the list is empty.\n\n\
             | request | why |\n| --- | --- |\n",
        );
        for s in held {
            body.push_str(&format!(
                "| `{}` | {} |\n",
                s.request,
                s.why.replace('|', "\\|").replace('\n', " ")
            ));
        }
        match open {
            None => {
                let _: IgnoredAny = client
                    .mutate(
                        Method::POST,
                        &["repos", owner, name, "issues"],
                        Some(&serde_json::json!({ "title": HELD_TITLE, "body": body })),
                    )
                    .await?;
            }
            Some(n) => {
                #[derive(Deserialize)]
                struct Issue {
                    body: Option<String>,
                }
                let n = n.to_string();
                let path = ["repos", owner, name, "issues", &n];
                let now: Option<Issue> = client.get(&path).await?;
                if now.and_then(|i| i.body).as_deref() != Some(body.as_str()) {
                    let _: IgnoredAny = client
                        .mutate(
                            Method::PATCH,
                            &path,
                            Some(&serde_json::json!({ "body": body })),
                        )
                        .await?;
                }
            }
        }
        anyhow::Ok(())
    })
}

/// Comments on the open issue `title` of `full` and closes it; its number, or `None` when no
/// open issue has that title (closed by hand, say). The comment is not repeated when a run
/// that left it failed to close the issue.
pub(crate) async fn close_issue(
    client: &Client,
    full: &str,
    title: &str,
    comment: &str,
) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Comment {
        body: Option<String>,
    }
    let Some(issue) = find_open_issue(client, full, title).await? else {
        return Ok(None);
    };
    let (owner, name) = providers::split_repository(full)?;
    let number = issue.to_string();
    let comments = ["repos", owner, name, "issues", &number, "comments"];
    let said: Vec<Comment> = client.get_all(&comments, None).await?.unwrap_or_default();
    if !said.iter().any(|c| c.body.as_deref() == Some(comment)) {
        let _: serde::de::IgnoredAny = client
            .mutate(
                Method::POST,
                &comments,
                Some(&serde_json::json!({ "body": comment })),
            )
            .await?;
    }
    let _: serde::de::IgnoredAny = client
        .mutate(
            Method::PATCH,
            &["repos", owner, name, "issues", &number],
            Some(&serde_json::json!({ "state": "closed", "state_reason": "completed" })),
        )
        .await?;
    Ok(Some(issue))
}

/// The number of the open issue (or pull request) of `full` titled `title`, if there is one.
pub(crate) async fn find_open_issue(
    client: &Client,
    full: &str,
    title: &str,
) -> anyhow::Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Issue {
        number: u64,
        title: String,
    }
    let (owner, name) = providers::split_repository(full)?;
    // The listing's default is the open issues (pull requests included).
    let open: Vec<Issue> = client
        .get_all(&["repos", owner, name, "issues"], None)
        .await?
        .with_context(|| format!("the repository {full} does not exist on GitHub"))?;
    Ok(open
        .into_iter()
        .find(|i| i.title == title)
        .map(|i| i.number))
}

/// Opens issue `title` on `full` unless an open one has that title; its number when opened.
pub(crate) async fn open_issue_once(
    client: &Client,
    full: &str,
    title: &str,
    body: &str,
) -> anyhow::Result<Option<u64>> {
    if find_open_issue(client, full, title).await?.is_some() {
        return Ok(None);
    }
    let (owner, name) = providers::split_repository(full)?;
    #[derive(Deserialize)]
    struct Created {
        number: u64,
    }
    let created: Created = client
        .mutate(
            Method::POST,
            &["repos", owner, name, "issues"],
            Some(&serde_json::json!({ "title": title, "body": body })),
        )
        .await?;
    Ok(Some(created.number))
}
