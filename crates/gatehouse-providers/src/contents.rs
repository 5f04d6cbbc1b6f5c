//! Files, branches and pull requests in a GitHub repository, through the REST API (contents,
//! git refs, pulls): what the feedstock-config provider and Cirun's `.access.yml` mode need,
//! without a clone.

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::github::{Client, Method};

/// A text file as a branch holds it.
#[derive(Debug)]
pub struct File {
    /// The blob's sha: a write must name it, so that it cannot overwrite a change it never saw.
    pub sha: String,
    pub text: String,
}

/// `path` (`a/b.yml`) as URL segments: the client encodes each segment, so a `/` must not be
/// inside one.
fn segments<'a>(head: &[&'a str], path: &'a str) -> Vec<&'a str> {
    let mut out = head.to_vec();
    out.extend(path.split('/').filter(|s| !s.is_empty()));
    out
}

/// File `path` on `git_ref` (a branch, or the default branch when `None`); `None` when absent.
pub async fn read_file(
    client: &Client,
    owner: &str,
    name: &str,
    path: &str,
    git_ref: Option<&str>,
) -> anyhow::Result<Option<File>> {
    #[derive(Deserialize)]
    struct Contents {
        #[serde(rename = "type")]
        kind: String,
        sha: String,
        #[serde(default)]
        content: String,
        #[serde(default)]
        encoding: String,
    }
    let segs = segments(&["repos", owner, name, "contents"], path);
    let query: Vec<(&str, &str)> = git_ref.map(|r| ("ref", r)).into_iter().collect();
    let Some(found): Option<Contents> = client.get_query(&segs, &query).await? else {
        return Ok(None);
    };
    if found.kind != "file" {
        bail!("{owner}/{name}: {path} is a {}, not a file", found.kind);
    }
    if found.encoding != "base64" {
        bail!(
            "{owner}/{name}: {path} came as `{}`, not base64 (is it larger than 1 MB?)",
            found.encoding
        );
    }
    let compact: String = found
        .content
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .with_context(|| format!("{owner}/{name}: {path} is not valid base64"))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{owner}/{name}: {path} is not UTF-8 text"))?;
    Ok(Some(File {
        sha: found.sha,
        text,
    }))
}

/// Writes `path` on `branch` (the default branch when `None`) as one commit. `sha` is the blob
/// being replaced (`None` for a new file); GitHub refuses the write if it has changed since.
pub async fn write_file(
    client: &Client,
    (owner, name): (&str, &str),
    path: &str,
    branch: Option<&str>,
    text: &str,
    sha: Option<&str>,
    message: &str,
) -> anyhow::Result<()> {
    let mut body = serde_json::json!({
        "message": message,
        "content": base64::engine::general_purpose::STANDARD.encode(text),
    });
    if let Some(branch) = branch {
        body["branch"] = branch.into();
    }
    if let Some(sha) = sha {
        body["sha"] = sha.into();
    }
    let segs = segments(&["repos", owner, name, "contents"], path);
    let _: IgnoredAny = client
        .mutate(Method::PUT, &segs, Some(&body))
        .await
        .with_context(|| format!("writing {path} in {owner}/{name}"))?;
    Ok(())
}

/// The repository's default branch.
pub async fn default_branch(client: &Client, owner: &str, name: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Repository {
        default_branch: String,
    }
    let found: Option<Repository> = client.get(&["repos", owner, name]).await?;
    Ok(found
        .with_context(|| format!("the repository {owner}/{name} does not exist on GitHub"))?
        .default_branch)
}

/// Points `branch` at the head of `base`, creating it or moving it (a branch left by a run
/// that was stopped half way is started over, so what it holds is always this run's).
pub async fn reset_branch(
    client: &Client,
    owner: &str,
    name: &str,
    branch: &str,
    base: &str,
) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Ref {
        object: Object,
    }
    #[derive(Deserialize)]
    struct Object {
        sha: String,
    }
    let base_ref: Option<Ref> = client
        .get(&segments(
            &["repos", owner, name, "git", "ref", "heads"],
            base,
        ))
        .await?;
    let sha = base_ref
        .with_context(|| format!("{owner}/{name} has no branch `{base}`"))?
        .object
        .sha;
    let create = serde_json::json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
    match client
        .mutate::<IgnoredAny>(
            Method::POST,
            &["repos", owner, name, "git", "refs"],
            Some(&create),
        )
        .await
    {
        Ok(_) => Ok(()),
        // It exists already.
        Err(e) if e.unexpected_status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
            let update = serde_json::json!({ "sha": sha, "force": true });
            let _: IgnoredAny = client
                .mutate(
                    Method::PATCH,
                    &segments(&["repos", owner, name, "git", "refs", "heads"], branch),
                    Some(&update),
                )
                .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// An open pull request.
#[derive(Debug, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub html_url: String,
    pub head: Head,
}

/// Where a pull request comes from: `label` is `owner:branch`.
#[derive(Debug, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    #[serde(default)]
    pub label: String,
}

/// The open pull request from `branch` of the same repository, if any.
pub async fn open_pull(
    client: &Client,
    owner: &str,
    name: &str,
    branch: &str,
) -> anyhow::Result<Option<Pull>> {
    let head = format!("{owner}:{branch}");
    let pulls: Option<Vec<Pull>> = client
        .get_query(
            &["repos", owner, name, "pulls"],
            &[("head", &head), ("state", "open")],
        )
        .await?;
    Ok(pulls.unwrap_or_default().into_iter().next())
}

/// Opens a pull request from `branch` into `base`. When GitHub says one exists already (a run
/// stopped between opening it and recording it), that one is returned.
pub async fn create_pull(
    client: &Client,
    owner: &str,
    name: &str,
    branch: &str,
    base: &str,
    title: &str,
    body: &str,
) -> anyhow::Result<Pull> {
    let payload = serde_json::json!({
        "title": title,
        "head": branch,
        "base": base,
        "body": body,
        "maintainer_can_modify": true,
    });
    match client
        .mutate::<Pull>(
            Method::POST,
            &["repos", owner, name, "pulls"],
            Some(&payload),
        )
        .await
    {
        Ok(p) => Ok(p),
        Err(e) if e.unexpected_status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
            match open_pull(client, owner, name, branch).await? {
                Some(p) => Ok(p),
                None => Err(anyhow::Error::from(e))
                    .with_context(|| format!("opening a pull request in {owner}/{name}")),
            }
        }
        Err(e) => Err(anyhow::Error::from(e))
            .with_context(|| format!("opening a pull request in {owner}/{name}")),
    }
}

pub async fn close_pull(
    client: &Client,
    owner: &str,
    name: &str,
    number: u64,
) -> anyhow::Result<()> {
    let n = number.to_string();
    let _: IgnoredAny = client
        .mutate(
            Method::PATCH,
            &["repos", owner, name, "pulls", &n],
            Some(&serde_json::json!({ "state": "closed" })),
        )
        .await?;
    Ok(())
}

/// Comments `text` on issue or pull request `number` unless a comment already says it.
pub async fn comment_once(
    client: &Client,
    owner: &str,
    name: &str,
    number: u64,
    text: &str,
) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Comment {
        #[serde(default)]
        body: String,
    }
    let n = number.to_string();
    let comments: Vec<Comment> = client
        .get_all(&["repos", owner, name, "issues", &n, "comments"], None)
        .await?
        .unwrap_or_default();
    if comments.iter().any(|c| c.body.trim() == text.trim()) {
        return Ok(());
    }
    post_comment(client, owner, name, number, text).await
}

pub async fn post_comment(
    client: &Client,
    owner: &str,
    name: &str,
    number: u64,
    text: &str,
) -> anyhow::Result<()> {
    let n = number.to_string();
    let _: IgnoredAny = client
        .mutate(
            Method::POST,
            &["repos", owner, name, "issues", &n, "comments"],
            Some(&serde_json::json!({ "body": text })),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_becomes_one_segment_per_folder() {
        assert_eq!(
            segments(
                &["repos", "o", "r", "contents"],
                "recipe/conda_build_config.yaml"
            ),
            [
                "repos",
                "o",
                "r",
                "contents",
                "recipe",
                "conda_build_config.yaml"
            ]
        );
        assert_eq!(
            segments(&["x"], "gatehouse/gpu-add"),
            ["x", "gatehouse", "gpu-add"]
        );
    }
}
