//! Requests, in gatehouse's native form and in conda-forge's admin-requests form.
//!
//! Both forms are read into one [`RequestFile`] (all fields optional, unknown fields refused)
//! and then normalised into one [`Request`], so nothing after loading knows which form a
//! maintainer wrote.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AccountId, GrantUser};
use crate::duration::Day;
use crate::span::{Span, Spanned};

/// The `action` values of conda-forge's admin-requests that gatehouse understands.
pub const ADMIN_ACTIONS: &[&str] = &[
    "cirun",
    "namespace",
    "blacksmith",
    "depot",
    "travis",
    "cirrus_runners",
];

/// The other `action` values of conda-forge's admin-requests (registered in its
/// `conda_forge_admin_requests/__init__.py`): marking builds broken, archiving, outputs, tokens.
/// They are not access requests; gatehouse leaves such files to admin-requests' own tools, so
/// it can check the same `requests/` folder beside them.
pub const OTHER_ADMIN_ACTIONS: &[&str] = &[
    "archive",
    "unarchive",
    "archive_branch",
    "unarchive_branch",
    "broken",
    "not_broken",
    "token_reset",
    "cfep3_copy",
    "add_feedstock_output",
    "remove_feedstock_output",
];

/// Just the `action` of a request file, whatever else it holds.
#[derive(Debug, Deserialize)]
pub struct ActionOnly {
    pub action: Option<Spanned<String>>,
}

/// A request file as written: the union of both forms.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    /// `grant`, `revoke` or `renew`; or an admin-requests action (`cirun`, `namespace`, ...).
    pub action: Spanned<String>,
    /// Native form: the projects the request is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<Spanned<String>>>,
    /// Admin-requests form: feedstock names without the `-feedstock` suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedstocks: Option<Vec<Spanned<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Spanned<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forks: Option<bool>,
    /// Native form: when the grant ends; defaults to, and may not exceed, the resource's
    /// `max_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Spanned<Day>>,
    /// Open a pull request on the project that adds the resource's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_pr: Option<bool>,
    /// Admin-requests form: `true` revokes instead of granting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Spanned<bool>>,
    /// Native form: narrows who may trigger jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<Spanned<GrantUser>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Both forms: the requester accepts the resources' terms of service with this request, so
    /// that onboarding is one pull request. It must name the pull request's author: `apply`
    /// reads the author's account id from GitHub and adds them to `people/tos.yml` in the same
    /// ledger commit, and holds the request back when the claim names anyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_tos: Option<TosClaim>,
}

/// `accept_tos: { github: LOGIN, id: ACCOUNT_ID }`: who accepts the terms of service (the
/// pull request's author, by numeric account id: logins can be renamed).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TosClaim {
    pub github: Spanned<String>,
    pub id: Spanned<AccountId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestAction {
    Grant,
    Revoke,
    Renew,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestForm {
    Native,
    /// conda-forge's admin-requests, with its `action`.
    AdminRequests {
        action: Spanned<String>,
    },
}

/// A request in its one internal form.
#[derive(Clone, Debug)]
pub struct Request {
    pub action: Spanned<RequestAction>,
    pub projects: Vec<Spanned<String>>,
    pub resources: Vec<Spanned<String>>,
    /// `None` when the request does not say (the resource's default applies).
    pub pull_request: Option<bool>,
    /// `None` when the request does not say (the resource's default, else forks allowed).
    pub forks: Option<bool>,
    pub expires: Option<Spanned<Day>>,
    pub send_pr: bool,
    pub users: Option<Vec<Spanned<GrantUser>>>,
    pub reason: Option<String>,
    /// The requester's acceptance of the terms of service, if the request carries it.
    pub accept_tos: Option<TosClaim>,
    pub form: RequestForm,
}

/// Why a request file cannot be understood at all. Softer problems (a suffix, a missing list)
/// are reported by checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeError {
    pub span: Span,
    pub message: String,
    pub help: String,
}

impl RequestFile {
    /// Which form the file is written in, judged by its `action`.
    pub fn is_admin_form(&self) -> bool {
        ADMIN_ACTIONS.contains(&self.action.as_str())
    }

    pub fn normalize(&self) -> Result<Request, NormalizeError> {
        let action_span = self.action.span;
        if self.is_admin_form() {
            self.normalize_admin()
        } else {
            let action = match self.action.as_str() {
                "grant" => RequestAction::Grant,
                "revoke" => RequestAction::Revoke,
                "renew" => RequestAction::Renew,
                other => {
                    return Err(NormalizeError {
                        span: action_span,
                        message: format!("unknown action `{other}`"),
                        help: format!(
                            "use `grant`, `revoke` or `renew`, or an admin-requests action ({})",
                            ADMIN_ACTIONS.join(", ")
                        ),
                    });
                }
            };
            if let Some(f) = &self.feedstocks {
                return Err(NormalizeError {
                    span: f.first().map(|s| s.span).unwrap_or(action_span),
                    message: "`feedstocks` belongs to the admin-requests form".into(),
                    help: "with `action: grant|revoke|renew`, list the projects under `projects`"
                        .into(),
                });
            }
            if let Some(r) = &self.revoke {
                return Err(NormalizeError {
                    span: r.span,
                    message: "`revoke` belongs to the admin-requests form".into(),
                    help: "write `action: revoke` instead".into(),
                });
            }
            let projects = self.projects.clone().ok_or_else(|| NormalizeError {
                span: action_span,
                message: "the request names no projects".into(),
                help: "add `projects: [<project>]`".into(),
            })?;
            Ok(Request {
                action: Spanned::new(action, action_span),
                projects,
                resources: self.resources.clone().unwrap_or_default(),
                pull_request: self.pull_request,
                forks: self.forks,
                expires: self.expires.clone(),
                send_pr: self.send_pr.unwrap_or(false),
                users: self.users.clone(),
                reason: self.reason.clone(),
                accept_tos: self.accept_tos.clone(),
                form: RequestForm::Native,
            })
        }
    }

    fn normalize_admin(&self) -> Result<Request, NormalizeError> {
        let action_span = self.action.span;
        if let Some(p) = &self.projects {
            return Err(NormalizeError {
                span: p.first().map(|s| s.span).unwrap_or(action_span),
                message: format!(
                    "`projects` belongs to the native form, but `action: {}` is an admin-requests action",
                    self.action.value
                ),
                help: "list the feedstocks under `feedstocks`".into(),
            });
        }
        let feedstocks = self.feedstocks.clone().ok_or_else(|| NormalizeError {
            span: action_span,
            message: "the request names no feedstocks".into(),
            help: "add `feedstocks: [<name without -feedstock>]`".into(),
        })?;
        // Other admin actions name the service itself; the resource carries the same name.
        let resources = match &self.resources {
            Some(r) => r.clone(),
            None if self.action.as_str() == "cirun" => Vec::new(),
            None => vec![self.action.clone()],
        };
        let revoke = self.revoke.as_ref().is_some_and(|r| r.value);
        let action = if revoke {
            RequestAction::Revoke
        } else {
            RequestAction::Grant
        };
        let span = self.revoke.as_ref().map(|r| r.span).unwrap_or(action_span);
        Ok(Request {
            action: Spanned::new(action, span),
            projects: feedstocks,
            resources,
            pull_request: self.pull_request,
            forks: self.forks,
            expires: self.expires.clone(),
            send_pr: self.send_pr.unwrap_or(false),
            users: self.users.clone(),
            reason: self.reason.clone(),
            accept_tos: self.accept_tos.clone(),
            form: RequestForm::AdminRequests {
                action: self.action.clone(),
            },
        })
    }
}
