//! The REST client: the token, timeouts, retries with backoff, rate limits, spacing between
//! mutating calls, conditional requests and `Link` pagination, handled once here so every
//! command and the guard behave the same.
//!
//! Callers name paths and shapes (the typed calls in the sibling modules do). Settings come
//! from the environment at the edge ([`Settings::from_env`], [`Settings::for_service`]) so
//! tests can point the client at a fake and make it retry fast.

use std::fmt;
use std::sync::Mutex;

use crate::Secret;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{self, HeaderMap, HeaderValue};
pub use reqwest::{Method, Url};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Pages followed at most by one listing: 100 items a page, far beyond any real listing, and a
/// bound against a server whose `next` link never ends.
const MAX_PAGES: usize = 1000;
/// GitHub's reset time has one-second resolution and our clock may run a little behind
/// GitHub's, so waiting exactly until the reset can still meet an exhausted limit.
const RESET_GRACE: Duration = Duration::from_secs(1);
/// GitHub's advice for a secondary rate limit that names no wait.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Which API a client talks to. They share conventions but not names, addresses or tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    GitHub,
    Cirun,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::GitHub => "GitHub",
            Service::Cirun => "Cirun",
        }
    }

    /// The environment variable that holds the token.
    pub fn token_var(self) -> &'static str {
        match self {
            Service::GitHub => "GITHUB_TOKEN",
            Service::Cirun => "CIRUN_API_KEY",
        }
    }

    /// The environment variable that overrides the base URL.
    pub fn api_var(self) -> &'static str {
        match self {
            Service::GitHub => "GATEHOUSE_GITHUB_API",
            Service::Cirun => "GATEHOUSE_CIRUN_API",
        }
    }

    fn default_api(self) -> &'static str {
        match self {
            Service::GitHub => "https://api.github.com",
            Service::Cirun => "https://api.cirun.io/api/v1",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the client talks to its API: where, how long it waits, how often it tries.
#[derive(Clone, Debug)]
pub struct Settings {
    pub service: Service,
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
    /// The least time between two mutating calls: GitHub's advice against its secondary rate
    /// limits is at least one second.
    pub mutation_spacing: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            service: Service::GitHub,
            base_url: Url::parse(Service::GitHub.default_api())
                .expect("the default API URL is valid"),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
            mutation_spacing: Duration::from_secs(1),
        }
    }
}

impl Settings {
    /// GitHub's settings: see [`Settings::for_service`].
    pub fn from_env() -> Result<Self, Error> {
        Settings::for_service(Service::GitHub)
    }

    /// The defaults, overridden by `GATEHOUSE_GITHUB_API` or `GATEHOUSE_CIRUN_API` (GitHub
    /// Enterprise, tests), `GATEHOUSE_HTTP_TIMEOUT_MS`, `GATEHOUSE_HTTP_BACKOFF_MS`,
    /// `GATEHOUSE_HTTP_MAX_WAIT_SECS` and, for GitHub, `GATEHOUSE_GITHUB_MUTATION_SPACING_MS`.
    pub fn for_service(service: Service) -> Result<Self, Error> {
        let mut s = Settings {
            service,
            ..Settings::default()
        };
        let var = service.api_var();
        let default_api = service.default_api();
        s.base_url = match env(var) {
            None => Url::parse(default_api).expect("the default API URL is valid"),
            Some(api) => match Url::parse(&api) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base() => {
                    url
                }
                _ => {
                    return Err(Error::Settings(format!(
                        "{var} must be an http(s) URL such as {default_api}, got `{api}`"
                    )));
                }
            },
        };
        match service {
            Service::GitHub => {
                if let Some(ms) =
                    env_number("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", "milliseconds")?
                {
                    s.mutation_spacing = Duration::from_millis(ms);
                }
            }
            // Cirun takes the whole policy in one call per run; there is nothing to space.
            Service::Cirun => s.mutation_spacing = Duration::ZERO,
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

/// What went wrong talking to an API, and what to do about it. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GitHub rejected the token (401): check GITHUB_TOKEN")]
    BadToken,
    /// Another service's [`Error::BadToken`].
    #[error("{service} rejected the token (401): check {}", service.token_var())]
    Rejected { service: Service },
    #[error("{service} refused {path} (403: {message}): check that the token may use it")]
    Forbidden {
        service: Service,
        path: String,
        message: String,
    },
    #[error(
        "{service}'s rate limit is used up until {resets_at}, longer than gatehouse waits \
         ({}s, GATEHOUSE_HTTP_MAX_WAIT_SECS): run again after that",
        max_wait.as_secs()
    )]
    RateLimited {
        service: Service,
        resets_at: jiff::Timestamp,
        max_wait: Duration,
    },
    #[error(
        "no usable answer from {service} for {path} after {attempts} tries ({last}): try again later"
    )]
    Unavailable {
        service: Service,
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("{service} answered {status} to {path}: {message}")]
    Unexpected {
        service: Service,
        path: String,
        status: StatusCode,
        message: String,
    },
    #[error("{service}'s answer to {path} is not what gatehouse expects: {reason}")]
    Decode {
        service: Service,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Settings(String),
    #[error("could not set up the HTTP client: {0}")]
    Client(String),
}

impl Error {
    /// The status of an answer that was neither success, 404 nor a refusal (409, 422, ...):
    /// callers that expect one (a branch that already exists) match on it.
    pub fn unexpected_status(&self) -> Option<StatusCode> {
        match self {
            Error::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service refused the credential itself (401, or 403 that is not a rate limit).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::BadToken | Error::Rejected { .. } | Error::Forbidden { .. }
        )
    }

    /// The service was not reached or kept failing.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::RateLimited { .. })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct RepoInfo {
    pub archived: bool,
}

#[derive(Deserialize)]
struct UserInfo {
    id: i64,
}

/// The client for one API with one token. `GitHub` is its usual name.
pub struct Client {
    http: reqwest::Client,
    token: Secret,
    settings: Settings,
    /// Shared by every request: once one answer says the rate limit is used up, the others
    /// wait (or give up) too instead of spending requests on certain refusals.
    limited_until: Mutex<Option<SystemTime>>,
    /// When the last mutating call was sent.
    last_mutation: Mutex<Option<Instant>>,
    /// Held by a spaced mutating call while it waits its turn, so they go one by one.
    mutation_turn: tokio::sync::Mutex<()>,
}

/// Which page of a listing [`Client::get_page`] reads.
#[derive(Clone, Copy, Debug)]
pub enum Page<'a> {
    /// The first page of the path made of these segments, with this query.
    First(&'a [&'a str], &'a [(&'a str, &'a str)]),
    /// The page a `Link: <...>; rel="next"` named.
    Next(&'a Url),
}

/// How urgent a mutating call is. GitHub asks for a second between mutating calls (its
/// secondary rate limits); an urgent call (cancelling a denied run) does not wait behind the
/// others, but the next spaced call waits a full spacing after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Spaced,
    Urgent,
}

/// The answer to a conditional request (`If-None-Match`): GitHub answers 304 when nothing
/// changed, and such an answer does not count against the rate limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conditional<T> {
    NotModified,
    Modified {
        value: T,
        /// The `ETag` to send next time; `None` when the answer cannot be asked for again
        /// that way (a listing of several pages).
        etag: Option<String>,
    },
}

pub type GitHub = Client;

impl Client {
    pub fn new(token: Secret, settings: Settings) -> Result<Self, Error> {
        // reqwest is built without a default crypto provider; an error here only means one is
        // already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                Error::Settings(format!(
                    "{} contains characters a token cannot have",
                    settings.service.token_var()
                ))
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, auth);
        match settings.service {
            Service::GitHub => {
                headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_static("application/vnd.github+json"),
                );
                headers.insert(
                    "x-github-api-version",
                    HeaderValue::from_static("2022-11-28"),
                );
            }
            Service::Cirun => {
                headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            }
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| Error::Client(causes(&e)))?;
        Ok(Client {
            http,
            token,
            settings,
            limited_until: Mutex::new(None),
            last_mutation: Mutex::new(None),
            mutation_turn: tokio::sync::Mutex::new(()),
        })
    }

    pub fn service(&self) -> Service {
        self.settings.service
    }

    /// The repository `owner/name`, or `None` when GitHub has none by that name.
    pub async fn get_repo(&self, owner: &str, name: &str) -> Result<Option<RepoInfo>, Error> {
        self.get(&["repos", owner, name]).await
    }

    /// The numeric id of the account `login` holds now, or `None` when no account does.
    pub async fn get_user(&self, login: &str) -> Result<Option<i64>, Error> {
        let user: Option<UserInfo> = self.get(&["users", login]).await?;
        Ok(user.map(|u| u.id))
    }

    /// GETs the path made of `segments` (each percent-encoded); 404 is `None`.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<Option<T>, Error> {
        let (url, path) = self.url(segments);
        let resp = self.send(&Method::GET, url, &path, None).await?;
        self.read(resp, &path).await
    }

    /// GETs the path made of `segments` with a JSON body, as Cirun's `GET access-control`
    /// takes its `{"org": ...}` (cirun-py `Cirun.get_access_control`); 404 is `None`.
    pub async fn get_with_body<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &(impl Serialize + ?Sized),
    ) -> Result<Option<T>, Error> {
        let (url, path) = self.url(segments);
        let body = serde_json::to_vec(body).map_err(|e| Error::Client(e.to_string()))?;
        let resp = self.send(&Method::GET, url, &path, Some(body)).await?;
        self.read(resp, &path).await
    }

    /// GETs the path made of `segments` with a query (`?head=...&state=open`); 404 is `None`.
    pub async fn get_query<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Option<T>, Error> {
        let (mut url, path) = self.url(segments);
        url.query_pairs_mut().extend_pairs(query);
        let resp = self.send(&Method::GET, url, &path, None).await?;
        self.read(resp, &path).await
    }

    /// GETs every page of a listing, following `Link: <...>; rel="next"`. The items are the
    /// answer itself (`field: None`) or the array under `field` (GitHub wraps some listings as
    /// `{"total_count": n, "repositories": [...]}`). 404 on the first page is `None`.
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        field: Option<&str>,
    ) -> Result<Option<Vec<T>>, Error> {
        match self.get_all_if_changed(segments, &[], field, None).await? {
            None => Ok(None),
            Some(Conditional::Modified { value, .. }) => Ok(Some(value)),
            Some(Conditional::NotModified) => Err(self.decode_error(
                &format!("/{}", segments.join("/")),
                "304 to a request that was not conditional",
            )),
        }
    }

    /// [`Client::get_all`] with a query, asked only if changed since the answer whose `ETag`
    /// is `etag`: GitHub answers 304 for an unchanged first page, which costs no rate limit.
    /// The answer's `ETag` is kept only for a single page (a listing of several pages could
    /// change behind an unchanged first one).
    pub async fn get_all_if_changed<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        field: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Option<Conditional<Vec<T>>>, Error> {
        let (mut url, path) = self.url(segments);
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("per_page", "100");
        let mut items = Vec::new();
        let mut if_none_match = etag;
        let mut first_etag = None;
        for page in 0..MAX_PAGES {
            let resp = self
                .send_with(
                    &Method::GET,
                    url,
                    &path,
                    None,
                    if_none_match.take(),
                    Priority::Spaced,
                )
                .await?;
            if resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(Some(Conditional::NotModified));
            }
            if page == 0 {
                first_etag = resp
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
            }
            let next = next_link(resp.headers());
            let Some(mut body) = self.read::<serde_json::Value>(resp, &path).await? else {
                if page == 0 {
                    return Ok(None);
                }
                return Err(self.decode_error(&path, "a later page vanished (404)"));
            };
            let list = match field {
                Some(f) => body.get_mut(f).map(serde_json::Value::take),
                None => Some(body),
            };
            let list = list.ok_or_else(|| {
                self.decode_error(
                    &path,
                    &format!("no `{}` in the answer", field.unwrap_or("")),
                )
            })?;
            let page_items: Vec<T> = serde_json::from_value(list)
                .map_err(|e| self.decode_error(&path, &e.to_string()))?;
            items.extend(page_items);
            let Some(next) = next else {
                return Ok(Some(Conditional::Modified {
                    value: items,
                    etag: first_etag.filter(|_| page == 0),
                }));
            };
            let next = Url::parse(&next)
                .map_err(|_| self.decode_error(&path, "the `next` link is not a URL"))?;
            // The token goes with every request: never follow a link to another server.
            if next.origin() != self.settings.base_url.origin() {
                return Err(self.decode_error(&path, "the `next` link points to another server"));
            }
            url = next;
        }
        Err(self.decode_error(&path, &format!("more than {MAX_PAGES} pages")))
    }

    /// One page of a listing: the first (`Page::First`) or the one a previous page's `next`
    /// link named, and the next page's link. 404 is `None`. For listings a caller reads page
    /// by page and may stop early (a hook's deliveries, newest first).
    pub async fn get_page<T: DeserializeOwned>(
        &self,
        page: Page<'_>,
    ) -> Result<Option<(T, Option<Url>)>, Error> {
        let (url, path) = match page {
            Page::First(segments, query) => {
                let (mut url, path) = self.url(segments);
                url.query_pairs_mut()
                    .extend_pairs(query)
                    .append_pair("per_page", "100");
                (url, path)
            }
            Page::Next(url) => {
                // The token goes with every request: never follow a link to another server.
                if url.origin() != self.settings.base_url.origin() {
                    return Err(
                        self.decode_error(url.path(), "the `next` link points to another server")
                    );
                }
                (url.clone(), url.path().to_string())
            }
        };
        let resp = self.send(&Method::GET, url, &path, None).await?;
        let next = next_link(resp.headers()).and_then(|n| Url::parse(&n).ok());
        Ok(self.read::<T>(resp, &path).await?.map(|v| (v, next)))
    }

    /// Sends a mutating call (`PUT`, `PATCH`, `POST`, `DELETE`) with an optional JSON body.
    /// 404 is an error here: the thing to change must exist. An empty answer (204) reads as
    /// JSON `null`, so `T` may be `serde::de::IgnoredAny` or `serde_json::Value`.
    pub async fn mutate<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Error> {
        self.mutate_with(method, segments, body, Priority::Spaced)
            .await
    }

    /// [`Client::mutate`] at the given [`Priority`].
    pub async fn mutate_with<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
        priority: Priority,
    ) -> Result<T, Error> {
        let repeatable = method != Method::POST;
        self.mutate_full(method, segments, body, priority, repeatable)
            .await
    }

    /// [`Client::mutate`] for a call that must not be sent twice even though its method is
    /// idempotent in HTTP's terms (Cirun's `PUT access-control` opens a pull request each
    /// time): like a `POST`, a server error or a lost answer is returned, not retried.
    pub async fn mutate_once<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, Error> {
        self.mutate_full(method, segments, body, Priority::Spaced, false)
            .await
    }

    async fn mutate_full<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
        priority: Priority,
        repeatable: bool,
    ) -> Result<T, Error> {
        let (url, path) = self.url(segments);
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Client(e.to_string()))?;
        let resp = self
            .send_full(&method, url, &path, body, None, priority, repeatable)
            .await?;
        let status = resp.status();
        self.read(resp, &path)
            .await?
            .ok_or_else(|| Error::Unexpected {
                service: self.service(),
                path,
                status,
                message: "Not Found".into(),
            })
    }

    fn url(&self, segments: &[&str]) -> (Url, String) {
        let mut url = self.settings.base_url.clone();
        url.path_segments_mut()
            .expect("base URL was checked to be a base")
            .pop_if_empty()
            .extend(segments);
        (url, format!("/{}", segments.join("/")))
    }

    fn decode_error(&self, path: &str, reason: &str) -> Error {
        Error::Decode {
            service: self.service(),
            path: path.to_string(),
            reason: self.scrub(reason.to_string()),
        }
    }

    /// The answer as `T`; 404 is `None`; other failures are errors.
    async fn read<T: DeserializeOwned>(
        &self,
        resp: Response,
        path: &str,
    ) -> Result<Option<T>, Error> {
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.decode_error(path, &causes(&e)))?;
        if status.is_success() {
            let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                b"null"
            } else {
                &body
            };
            return serde_json::from_slice(body)
                .map(Some)
                .map_err(|e| self.decode_error(path, &e.to_string()));
        }
        let message = self.scrub(github_message(&body));
        let (service, path) = (self.service(), path.to_string());
        Err(if status == StatusCode::FORBIDDEN {
            Error::Forbidden {
                service,
                path,
                message,
            }
        } else {
            Error::Unexpected {
                service,
                path,
                status,
                message,
            }
        })
    }

    /// Sends a request, retrying server errors and network failures with backoff and waiting
    /// out rate limits; any other answer is returned for the caller to judge.
    ///
    /// `POST` is not idempotent: it is retried only when the server surely did not act on it
    /// (no connection, or a rate limit). Its server errors come back to the caller; the next
    /// run, which observes the state anew, is its retry.
    async fn send(
        &self,
        method: &Method,
        url: Url,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, Error> {
        self.send_with(method, url, path, body, None, Priority::Spaced)
            .await
    }

    /// [`Client::send`] with an `If-None-Match` (a 304 is returned as it is) and a priority.
    async fn send_with(
        &self,
        method: &Method,
        url: Url,
        path: &str,
        body: Option<Vec<u8>>,
        if_none_match: Option<&str>,
        priority: Priority,
    ) -> Result<Response, Error> {
        let repeatable = *method != Method::POST;
        self.send_full(method, url, path, body, if_none_match, priority, repeatable)
            .await
    }

    /// [`Client::send_with`]; a call that is not `repeatable` is retried only when the server
    /// surely did not act on it (no connection, or a rate limit).
    #[allow(clippy::too_many_arguments)]
    async fn send_full(
        &self,
        method: &Method,
        url: Url,
        path: &str,
        body: Option<Vec<u8>>,
        if_none_match: Option<&str>,
        priority: Priority,
        repeatable: bool,
    ) -> Result<Response, Error> {
        let attempts = self.settings.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_rate_limit().await?;
            if *method != Method::GET && *method != Method::HEAD {
                self.space_mutation(priority).await;
            }
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(tag) = if_none_match
                && let Ok(value) = HeaderValue::from_str(tag)
            {
                request = request.header(header::IF_NONE_MATCH, value);
            }
            if let Some(body) = &body {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let failure = match request.send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    return Err(match self.service() {
                        Service::GitHub => Error::BadToken,
                        service => Error::Rejected { service },
                    });
                }
                Ok(resp) if resp.status().is_server_error() && !repeatable => return Ok(resp),
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
                Err(e) if e.is_timeout() && repeatable => "timed out".to_string(),
                Err(e) if repeatable || e.is_connect() => self.scrub(causes(&e)),
                Err(e) => {
                    return Err(Error::Unavailable {
                        service: self.service(),
                        path: path.to_string(),
                        attempts: attempt,
                        last: self.scrub(causes(&e)),
                    });
                }
            };
            if attempt >= attempts {
                return Err(Error::Unavailable {
                    service: self.service(),
                    path: path.to_string(),
                    attempts,
                    last: failure,
                });
            }
            tracing::debug!(path, attempt, failure, "retrying");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// Waits until `mutation_spacing` has passed since the last mutating call (an urgent call
    /// does not wait), and notes this one.
    async fn space_mutation(&self, priority: Priority) {
        let spacing = self.settings.mutation_spacing;
        if spacing.is_zero() {
            return;
        }
        let last = || *self.last_mutation.lock().unwrap_or_else(|e| e.into_inner());
        let note =
            || *self.last_mutation.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if priority == Priority::Urgent {
            note();
            return;
        }
        let _turn = self.mutation_turn.lock().await;
        // An urgent call may slip in while this one sleeps: look again after each sleep.
        while let Some(at) = last()
            && at + spacing > Instant::now()
        {
            tokio::time::sleep_until((at + spacing).into()).await;
        }
        note();
    }

    fn note_rate_limit(&self, wait: Duration) {
        let now = SystemTime::now();
        let until = now + wait;
        let mut limited = self.limited_until.lock().unwrap_or_else(|e| e.into_inner());
        // Several requests in flight meet the same limit; say so once.
        if limited.is_none_or(|u| u <= now) && wait <= self.settings.max_wait {
            tracing::warn!(
                "{}'s rate limit is used up; waiting {:.1}s for it to reset",
                self.service(),
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
                service: self.service(),
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
        self.token.scrub(&text)
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

/// The `next` URL of a `Link` header: `<https://...?page=2>; rel="next", <...>; rel="last"`.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
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
        let github = GitHub::new(Secret::new("ghp_secret"), Settings::default()).unwrap();
        assert!(!format!("{:?}", github.http).contains("ghp_secret"));
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/x?page=1>; rel=\"prev\", \
                 <https://api.github.com/x?page=3>; rel=\"next\", \
                 <https://api.github.com/x?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static("<https://api.github.com/x?page=1>; rel=\"first\""),
        );
        assert_eq!(next_link(&h), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn cirun_errors_name_cirun_and_its_variable() {
        let e = Error::Rejected {
            service: Service::Cirun,
        };
        assert_eq!(
            e.to_string(),
            "Cirun rejected the token (401): check CIRUN_API_KEY"
        );
        assert!(e.is_refusal());
    }

    #[test]
    fn mutations_are_a_second_apart_by_default_and_cirun_s_are_not_spaced() {
        assert_eq!(Settings::default().mutation_spacing, Duration::from_secs(1));
        let cirun = Settings::for_service(Service::Cirun).unwrap();
        assert_eq!(cirun.mutation_spacing, Duration::ZERO);
    }

    #[tokio::test]
    async fn mutations_wait_for_the_spacing() {
        let settings = Settings {
            mutation_spacing: Duration::from_millis(200),
            ..Settings::default()
        };
        let client = Client::new(Secret::new("t"), settings).unwrap();
        let started = Instant::now();
        for _ in 0..3 {
            client.space_mutation(Priority::Spaced).await;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn backoff_grows_and_stays_within_its_cap() {
        let github = GitHub::new(Secret::new("t"), Settings::default()).unwrap();
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
