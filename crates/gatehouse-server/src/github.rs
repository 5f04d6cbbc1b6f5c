//! The few GitHub REST calls the guard makes: read a run, read a person's permission, cancel a
//! run, leave a check run. Transient failures (network, 5xx, 429) are retried a few times
//! with a short backoff; the guard answers webhooks, so it cannot wait long.

use std::time::Duration;

use anyhow::{Context, bail};
use gatehouse_policy::Permission;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use crate::Secret;
use crate::events::WorkflowRun;

const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(200);

pub struct GitHub {
    http: reqwest::Client,
    base: Url,
    /// Kept only to mask it: an answer may quote the request back, token included.
    token: Option<Secret>,
}

#[derive(Deserialize)]
struct PermissionAnswer {
    permission: Option<String>,
    /// The finer role (`maintain`, `triage`) where `permission` only says `write` or `read`.
    role_name: Option<String>,
}

impl GitHub {
    pub fn new(base: &str, token: Option<&Secret>) -> anyhow::Result<Self> {
        // reqwest is built without a default crypto provider; an error only means one is
        // already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .with_context(|| format!("the GitHub API must be an http(s) URL, got `{base}`"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        if let Some(token) = token {
            let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .context("the GitHub token contains characters a token cannot have")?;
            auth.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, auth);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(GitHub {
            http,
            base,
            token: token.cloned(),
        })
    }

    /// `GET /repos/{owner}/{repo}/actions/runs/{run_id}`; `None` when GitHub has no such run.
    pub async fn run(&self, repository: &str, run_id: i64) -> anyhow::Result<Option<WorkflowRun>> {
        let run_id = run_id.to_string();
        let path = repo_path(repository, &["actions", "runs", &run_id])?;
        match self.send(Method::GET, &path, None).await? {
            None => Ok(None),
            Some(v) => Ok(Some(
                serde_json::from_value(v)
                    .context("GitHub's answer for a run has an unexpected shape")?,
            )),
        }
    }

    /// A person's role on a repository; `None` when GitHub knows no such person.
    pub async fn permission(
        &self,
        repository: &str,
        login: &str,
    ) -> anyhow::Result<Option<Permission>> {
        let path = repo_path(repository, &["collaborators", login, "permission"])?;
        let Some(v) = self.send(Method::GET, &path, None).await? else {
            return Ok(None);
        };
        let answer: PermissionAnswer = serde_json::from_value(v)
            .context("GitHub's answer for a permission has an unexpected shape")?;
        // `role_name` is finer than `permission`, but may name a custom role: then fall back.
        let role = [answer.role_name, answer.permission]
            .into_iter()
            .flatten()
            .find_map(|r| parse_permission(&r));
        Ok(Some(role.unwrap_or(Permission::None)))
    }

    pub async fn cancel_run(&self, repository: &str, run_id: i64) -> anyhow::Result<()> {
        let run_id = run_id.to_string();
        let path = repo_path(repository, &["actions", "runs", &run_id, "cancel"])?;
        self.send(Method::POST, &path, None)
            .await?
            .map(drop)
            .context("GitHub has no such run to cancel")
    }

    /// A completed, failed check run on the commit: where the person who pushed looks.
    pub async fn fail_check_run(
        &self,
        repository: &str,
        head_sha: &str,
        title: &str,
        summary: &str,
    ) -> anyhow::Result<()> {
        let path = repo_path(repository, &["check-runs"])?;
        let body = serde_json::json!({
            "name": "gatehouse",
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "failure",
            "output": { "title": title, "summary": summary },
        });
        self.send(Method::POST, &path, Some(&body))
            .await?
            .map(drop)
            .context("GitHub has no such repository to leave a check run on")
    }

    /// One page (newest first) of an organisation webhook's recent deliveries, and the cursor
    /// of the next page. `None` when GitHub knows no such hook (or the token may not see it).
    pub async fn hook_deliveries(
        &self,
        org: &str,
        hook_id: u64,
        cursor: Option<&str>,
    ) -> anyhow::Result<Option<(Vec<HookDelivery>, Option<String>)>> {
        let hook = hook_id.to_string();
        let segments = ["orgs", org, "hooks", &hook, "deliveries"];
        let mut query = vec![("per_page", "100")];
        query.extend(cursor.map(|c| ("cursor", c)));
        let Some((page, headers)) = self.exchange(Method::GET, &segments, &query, None).await?
        else {
            return Ok(None);
        };
        let deliveries = serde_json::from_value(page)
            .context("GitHub's answer for a hook's deliveries has an unexpected shape")?;
        let next = headers
            .get(header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_cursor);
        Ok(Some((deliveries, next)))
    }

    /// Asks GitHub to send delivery `id` of an organisation webhook again.
    pub async fn redeliver(&self, org: &str, hook_id: u64, id: u64) -> anyhow::Result<()> {
        let (hook, id) = (hook_id.to_string(), id.to_string());
        let segments = ["orgs", org, "hooks", &hook, "deliveries", &id, "attempts"];
        self.send(Method::POST, &segments, None)
            .await?
            .map(drop)
            .context("GitHub has no such delivery to send again")
    }

    /// Sends one request, retrying transient failures. `Ok(None)` for 404.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> anyhow::Result<Option<Value>> {
        Ok(self
            .exchange(method, segments, &[], body)
            .await?
            .map(|(value, _)| value))
    }

    /// [`Self::send`] with a query string, answering the headers too.
    async fn exchange(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Option<(Value, HeaderMap)>> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow::anyhow!("the GitHub API URL cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let shown = segments.join("/");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(body) = body {
                req = req.json(body);
            }
            let retry = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::NOT_FOUND {
                        return Ok(None);
                    }
                    if status.is_success() {
                        let headers = resp.headers().clone();
                        let bytes = resp.bytes().await.with_context(|| {
                            format!("reading GitHub's answer to {method} /{shown}")
                        })?;
                        if bytes.is_empty() {
                            return Ok(Some((Value::Null, headers)));
                        }
                        let value = serde_json::from_slice(&bytes).with_context(|| {
                            format!("GitHub's answer to {method} /{shown} is not JSON")
                        })?;
                        return Ok(Some((value, headers)));
                    }
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    let text = resp.text().await.unwrap_or_default();
                    let message = format!(
                        "GitHub answered {status} to {method} /{shown}: {}",
                        first_line(&self.masked(&text))
                    );
                    if !transient || attempt >= ATTEMPTS {
                        bail!(message);
                    }
                    message
                }
                Err(e) => {
                    let message = format!("cannot reach GitHub for {method} /{shown}: {e}");
                    if attempt >= ATTEMPTS {
                        bail!(message);
                    }
                    message
                }
            };
            tracing::debug!(attempt, "{retry}; retrying");
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }
}

impl GitHub {
    /// `text` with the token replaced by `***`: some proxies and error pages echo the request,
    /// and such an answer ends up in logs and in the explanation of a failed delivery.
    fn masked(&self, text: &str) -> String {
        match &self.token {
            Some(token) if !token.expose().is_empty() => text.replace(token.expose(), "***"),
            _ => text.to_string(),
        }
    }
}

/// One delivery of a webhook, as GitHub lists them. Each attempt (a redelivery too) is listed
/// with its own `id` and the delivery's `guid` (the `X-GitHub-Delivery` header).
#[derive(Clone, Debug, Deserialize)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: jiff::Timestamp,
    pub event: String,
}

/// The `cursor` of the `rel="next"` link of a `Link` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let url = part.split(';').next()?.trim();
            let url = Url::parse(url.trim_start_matches('<').trim_end_matches('>')).ok()?;
            url.query_pairs()
                .find(|(k, _)| k == "cursor")
                .map(|(_, v)| v.into_owned())
        })
}

fn repo_path<'a>(repository: &'a str, rest: &[&'a str]) -> anyhow::Result<Vec<&'a str>> {
    let Some((owner, name)) = repository.split_once('/') else {
        bail!("`{repository}` is not an owner/name repository");
    };
    let mut path = vec!["repos", owner, name];
    path.extend_from_slice(rest);
    Ok(path)
}

fn parse_permission(role: &str) -> Option<Permission> {
    serde_json::from_value(Value::String(role.to_ascii_lowercase())).ok()
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let link = "<https://api.github.com/orgs/o/hooks/1/deliveries?per_page=100&cursor=v1_12345>; rel=\"next\", <https://api.github.com/orgs/o/hooks/1/deliveries?per_page=100>; rel=\"first\"";
        assert_eq!(next_cursor(link).as_deref(), Some("v1_12345"));
        assert_eq!(
            next_cursor("<https://api.github.com/x?cursor=a>; rel=\"prev\""),
            None
        );
        assert_eq!(next_cursor("garbage"), None);
    }

    #[test]
    fn roles_parse_as_github_names_them() {
        assert_eq!(parse_permission("maintain"), Some(Permission::Maintain));
        assert_eq!(parse_permission("Write"), Some(Permission::Write));
        assert_eq!(parse_permission("custom-release-manager"), None);
    }
}
