//! A small GitHub REST client: the token, timeouts, retries with backoff, and GitHub's rate
//! limits, handled once here so every command that talks to GitHub behaves the same.
//!
//! It only reads what gatehouse needs (one method per question); it is not a general SDK.
//! Settings come from the environment at the edge ([`Settings::from_env`]) so tests can point
//! the client at a fake GitHub and make it retry fast.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const DEFAULT_API: &str = "https://api.github.com";
/// GitHub's reset time has one-second resolution and our clock may run a little behind
/// GitHub's, so waiting exactly until the reset can still meet an exhausted limit.
const RESET_GRACE: Duration = Duration::from_secs(1);
/// GitHub's advice for a secondary rate limit that names no wait.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A GitHub token. Its `Debug` and `Display` hide it, so it cannot leak into logs or errors.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into().trim().to_string())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the client talks to GitHub: where, how long it waits, how often it tries.
#[derive(Clone, Debug)]
pub struct Settings {
    pub base_url: Url,
    pub connect_timeout: Duration,
    /// For a whole request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// Tries per request, the first included.
    pub attempts: u32,
    /// The first retry waits about this long; each later one twice as long as the one before.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest wait for a rate limit to reset; beyond it the request fails instead.
    pub max_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_url: Url::parse(DEFAULT_API).expect("the default API URL is valid"),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// The defaults, overridden by `GATEHOUSE_GITHUB_API` (GitHub Enterprise, tests),
    /// `GATEHOUSE_HTTP_TIMEOUT_MS`, `GATEHOUSE_HTTP_BACKOFF_MS` and
    /// `GATEHOUSE_HTTP_MAX_WAIT_SECS`.
    pub fn from_env() -> Result<Self, Error> {
        let mut s = Settings::default();
        if let Some(api) = env("GATEHOUSE_GITHUB_API") {
            s.base_url = match Url::parse(&api) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base() => {
                    url
                }
                _ => {
                    return Err(Error::Settings(format!(
                        "GATEHOUSE_GITHUB_API must be an http(s) URL such as {DEFAULT_API}, got `{api}`"
                    )));
                }
            };
        }
        if let Some(ms) = env_number("GATEHOUSE_HTTP_TIMEOUT_MS", "milliseconds")? {
            s.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = env_number("GATEHOUSE_HTTP_BACKOFF_MS", "milliseconds")? {
            s.backoff_base = Duration::from_millis(ms);
        }
        if let Some(secs) = env_number("GATEHOUSE_HTTP_MAX_WAIT_SECS", "seconds")? {
            s.max_wait = Duration::from_secs(secs);
        }
        Ok(s)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_number(name: &str, unit: &str) -> Result<Option<u64>, Error> {
    env(name)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                Error::Settings(format!(
                    "{name} must be a whole number of {unit}, got `{v}`"
                ))
            })
        })
        .transpose()
}

/// What went wrong talking to GitHub, and what to do about it. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GitHub rejected the token (401): check GITHUB_TOKEN")]
    BadToken,
    #[error("GitHub refused {path} (403: {message}): check that the token may read it")]
    Forbidden { path: String, message: String },
    #[error(
        "GitHub's rate limit is used up until {resets_at}, longer than gatehouse waits \
         ({}s, GATEHOUSE_HTTP_MAX_WAIT_SECS): run again after that",
        max_wait.as_secs()
    )]
    RateLimited {
        resets_at: jiff::Timestamp,
        max_wait: Duration,
    },
    #[error(
        "no usable answer from GitHub for {path} after {attempts} tries ({last}): try again later"
    )]
    Unavailable {
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("GitHub answered {status} to {path}: {message}")]
    Unexpected {
        path: String,
        status: StatusCode,
        message: String,
    },
    #[error("GitHub's answer to {path} is not what gatehouse expects: {reason}")]
    Decode { path: String, reason: String },
    #[error("{0}")]
    Settings(String),
    #[error("could not set up the HTTP client: {0}")]
    Client(String),
}

#[derive(Clone, Debug, Deserialize)]
pub struct RepoInfo {
    pub archived: bool,
}

#[derive(Deserialize)]
struct UserInfo {
    id: i64,
}

pub struct GitHub {
    http: reqwest::Client,
    token: Token,
    settings: Settings,
    /// Shared by every request: once one answer says the rate limit is used up, the others
    /// wait (or give up) too instead of spending requests on certain refusals.
    limited_until: Mutex<Option<SystemTime>>,
}

impl GitHub {
    pub fn new(token: Token, settings: Settings) -> Result<Self, Error> {
        // reqwest is built without a default crypto provider; an error here only means one is
        // already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.0)).map_err(|_| {
            Error::Settings("GITHUB_TOKEN contains characters a token cannot have".into())
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| Error::Client(causes(&e)))?;
        Ok(GitHub {
            http,
            token,
            settings,
            limited_until: Mutex::new(None),
        })
    }

    /// The repository `owner/name`, or `None` when GitHub has none by that name.
    pub async fn get_repo(&self, owner: &str, name: &str) -> Result<Option<RepoInfo>, Error> {
        self.get_json(&["repos", owner, name]).await
    }

    /// The numeric id of the account `login` holds now, or `None` when no account does.
    pub async fn get_user(&self, login: &str) -> Result<Option<i64>, Error> {
        let user: Option<UserInfo> = self.get_json(&["users", login]).await?;
        Ok(user.map(|u| u.id))
    }

    /// GETs the path made of `segments` (each percent-encoded); 404 is `None`.
    async fn get_json<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<Option<T>, Error> {
        let mut url = self.settings.base_url.clone();
        url.path_segments_mut()
            .expect("base URL was checked to be a base")
            .pop_if_empty()
            .extend(segments);
        let path = format!("/{}", segments.join("/"));
        let resp = self.send(url, &path).await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = resp.bytes().await.map_err(|e| Error::Decode {
            path: path.clone(),
            reason: causes(&e),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| Error::Decode {
                    path,
                    reason: e.to_string(),
                });
        }
        let message = self.scrub(github_message(&body));
        Err(if status == StatusCode::FORBIDDEN {
            Error::Forbidden { path, message }
        } else {
            Error::Unexpected {
                path,
                status,
                message,
            }
        })
    }

    /// Sends a GET, retrying server errors and network failures with backoff and waiting out
    /// rate limits; any other answer is returned for the caller to judge.
    async fn send(&self, url: Url, path: &str) -> Result<Response, Error> {
        let attempts = self.settings.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_rate_limit().await?;
            let failure = match self.http.get(url.clone()).send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(Error::BadToken);
                }
                Ok(resp) if resp.status().is_server_error() => resp.status().to_string(),
                Ok(resp) => match rate_limit_wait(&resp) {
                    None => return Ok(resp),
                    Some(wait) => {
                        self.note_rate_limit(wait);
                        if attempt < attempts {
                            // The wait happens at the top of the loop, where every other
                            // request waits for the same reset.
                            continue;
                        }
                        format!("rate limited ({})", resp.status())
                    }
                },
                // A GET is safe to repeat, so any failure to get an answer is worth retrying.
                Err(e) if e.is_timeout() => "timed out".to_string(),
                Err(e) => self.scrub(causes(&e)),
            };
            if attempt >= attempts {
                return Err(Error::Unavailable {
                    path: path.to_string(),
                    attempts,
                    last: failure,
                });
            }
            tracing::debug!(path, attempt, failure, "retrying");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    fn note_rate_limit(&self, wait: Duration) {
        let now = SystemTime::now();
        let until = now + wait;
        let mut limited = self.limited_until.lock().unwrap_or_else(|e| e.into_inner());
        // Several requests in flight meet the same limit; say so once.
        if limited.is_none_or(|u| u <= now) && wait <= self.settings.max_wait {
            tracing::warn!(
                "GitHub's rate limit is used up; waiting {:.1}s for it to reset",
                wait.as_secs_f32()
            );
        }
        *limited = Some(limited.map_or(until, |u| u.max(until)));
    }

    async fn wait_for_rate_limit(&self) -> Result<(), Error> {
        let until = *self.limited_until.lock().unwrap_or_else(|e| e.into_inner());
        let Some(until) = until else { return Ok(()) };
        let Ok(wait) = until.duration_since(SystemTime::now()) else {
            return Ok(());
        };
        if wait > self.settings.max_wait {
            return Err(Error::RateLimited {
                resets_at: timestamp(until),
                max_wait: self.settings.max_wait,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Exponential, capped, with jitter so that requests that failed together do not all
    /// retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .settings
            .backoff_base
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(self.settings.backoff_max);
        let ms = full.as_millis() as u64;
        Duration::from_millis(fastrand::u64(ms / 2..=ms))
    }

    /// Text from outside (an answer, an error from the network stack) may in principle echo the
    /// request; make sure the token never travels on in it.
    fn scrub(&self, text: String) -> String {
        if self.token.0.is_empty() {
            text
        } else {
            text.replace(&self.token.0, "***")
        }
    }
}

/// How long a 403 or 429 asks us to wait, when it is a rate limit and not a refusal.
fn rate_limit_wait(resp: &Response) -> Option<Duration> {
    if !matches!(
        resp.status(),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        return None;
    }
    let h = |name: &str| {
        resp.headers()
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    if let Some(secs) = h("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if h("x-ratelimit-remaining") == Some(0) {
        let Some(reset) = h("x-ratelimit-reset") else {
            return Some(SECONDARY_LIMIT_WAIT);
        };
        let reset = UNIX_EPOCH + Duration::from_secs(reset);
        let wait = reset.duration_since(SystemTime::now()).unwrap_or_default();
        return Some(wait + RESET_GRACE);
    }
    (resp.status() == StatusCode::TOO_MANY_REQUESTS).then_some(SECONDARY_LIMIT_WAIT)
}

/// GitHub's error answers carry `{"message": ...}`; anything else is shown as a short excerpt.
fn github_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => b.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

/// reqwest's own message only says what it was doing ("error sending request for url (...)");
/// what went wrong is further down its chain of sources.
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Whole seconds, rounded up: a reset time shown a moment early invites a run that fails again.
fn timestamp(t: SystemTime) -> jiff::Timestamp {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows() {
        let token = Token::new("ghp_secret");
        assert_eq!(format!("{token} {token:?}"), "*** Token(***)");
        let github = GitHub::new(token, Settings::default()).unwrap();
        assert!(!format!("{:?}", github.http).contains("ghp_secret"));
    }

    #[test]
    fn backoff_grows_and_stays_within_its_cap() {
        let github = GitHub::new(Token::new("t"), Settings::default()).unwrap();
        for attempt in 1..40 {
            let full =
                Duration::from_millis(500 << (attempt - 1).min(5)).min(Duration::from_secs(8));
            let wait = github.backoff(attempt);
            assert!(
                full / 2 <= wait && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }
}
