//! GitHub's published descriptions as validators, shared by the contract tests of the command
//! line (`crates/gatehouse/tests/it/github_contract.rs`) and of the guard
//! (`crates/gatehouse-server/tests/it/`: `serve.rs`, `capacity.rs` and `webhook_contract.rs`),
//! whose test binaries include this file; [`assert_follows_rest`] is the check a test of the
//! guard ends with.
//!
//! Two descriptions, pinned by `tests/contract/package-lock.json` and installed by
//! `scripts/ensure-openapi.sh`:
//! - the REST API, `@octokit/openapi` `generated/api.github.com.json` (OpenAPI 3.0.3);
//! - the webhooks, `@octokit/openapi-webhooks` `generated/api.github.com.json` (OpenAPI 3.1).
//!
//! A schema of the description is turned into JSON Schema 2020-12 (OpenAPI 3.0's
//! `nullable: true` becomes "or null"; `example`, `discriminator`, `x-*` and other annotations
//! are dropped) together with only the components it reaches, compiled once, and kept. Formats
//! (`date-time`, `uri`) are annotations and not checked: the shapes and types are.
//!
//! What is checked for one call ([`Description::check`]): the method and path are an
//! operation; every query parameter sent is one of the operation's; the request body validates
//! against the operation's `requestBody`; the status answered is one the operation lists, and
//! the answer validates against that response's schema.

// Included by the test binaries of two crates, each of which uses only a part of it.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// Known errors in GitHub's own description, where the real API answers what the description
/// does not allow: (operation id, what the problem says, why). A problem of that operation
/// whose text contains that is not reported.
const KNOWN_ERRORS: &[(&str, &str, &str)] = &[
    // These two list only 200, but GitHub answers 404 Not Found for a run (or attempt), or a
    // team, that it does not know or the token may not see, as for every resource
    // ("Troubleshooting the REST API": 404).
    (
        "actions/get-workflow-run-attempt",
        "answered 404,",
        "a run GitHub does not know",
    ),
    (
        "teams/list-repos-in-org",
        "answered 404,",
        "a team GitHub does not know",
    ),
];

/// Statuses any operation may answer although the description lists them for few: 304 to a
/// conditional request ("Use conditional requests if appropriate", GitHub's REST best
/// practices), 403 and 429 over a rate limit ("Rate limits for the REST API"), and server
/// errors. An answer with one of these is not checked against a schema unless the operation
/// lists it.
const ANY_OPERATION_MAY_ANSWER: &[u16] = &[304, 403, 429, 500, 502, 503, 504];

/// One call as the recording proxy saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The query's parameter names and values, as sent.
    pub query: Vec<(String, String)>,
    /// The request body, when there was one (not JSON: a string).
    pub request: Option<Value>,
    pub status: u16,
    /// The answer's body, when there was one (not JSON: a string).
    pub answer: Option<Value>,
}

impl Exchange {
    /// `METHOD /path`.
    pub fn call(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Something about one call (or payload) that the description does not allow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// `METHOD /path` (or the webhook event).
    pub call: String,
    /// The operation's id, when the call is one.
    pub operation: String,
    /// What is wrong, with the place in the body.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operation.is_empty() {
            write!(f, "{}: {}", self.call, self.what)
        } else {
            write!(f, "{} ({}): {}", self.call, self.operation, self.what)
        }
    }
}

/// One operation: its method, path template and id.
pub struct Operation {
    pub method: String,
    pub template: String,
    pub id: String,
    segments: Vec<String>,
}

pub struct Description {
    /// Which package, for messages.
    pub name: &'static str,
    doc: Value,
    operations: Vec<Operation>,
    /// JSON pointer of a schema → its validator.
    compiled: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// The contract check of a test that talked to the fake GitHub through the recording proxy:
/// every operation in `needed` was called, and every call and the fake's answer to it follow
/// GitHub's REST description. Panics naming what was not called, or what is not allowed.
pub fn assert_follows_rest(exchanges: &[Exchange], needed: &[&str]) {
    let rest = Description::rest();
    let operations: BTreeSet<&str> = exchanges
        .iter()
        .filter_map(|e| rest.operation(&e.method, &e.path))
        .map(|o| o.id.as_str())
        .collect();
    for needed in needed {
        assert!(
            operations.contains(needed),
            "{needed} was not called: {operations:?}"
        );
    }
    let problems: BTreeSet<Problem> = exchanges.iter().flat_map(|e| rest.check(e)).collect();
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.is_empty(),
        "calls or answers GitHub's description does not allow:\n{}",
        listed.join("\n")
    );
}

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/contract/node_modules/@octokit")
}

impl Description {
    /// GitHub's REST description, read once per test binary.
    pub fn rest() -> &'static Description {
        static REST: OnceLock<Description> = OnceLock::new();
        REST.get_or_init(|| {
            Description::load("@octokit/openapi", "openapi/generated/api.github.com.json")
        })
    }

    /// GitHub's webhooks description, read once per test binary.
    pub fn webhooks() -> &'static Description {
        static HOOKS: OnceLock<Description> = OnceLock::new();
        HOOKS.get_or_init(|| {
            Description::load(
                "@octokit/openapi-webhooks",
                "openapi-webhooks/generated/api.github.com.json",
            )
        })
    }

    fn load(name: &'static str, relative: &str) -> Description {
        let path = contract_dir().join(relative);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{name} is missing at {} ({e}): run scripts/ensure-openapi.sh (scripts/test.sh does)",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let mut operations = Vec::new();
        if let Some(paths) = doc["paths"].as_object() {
            for (template, item) in paths {
                for method in ["get", "put", "post", "patch", "delete"] {
                    if let Some(op) = item.get(method) {
                        operations.push(Operation {
                            method: method.to_ascii_uppercase(),
                            template: template.clone(),
                            id: op["operationId"].as_str().unwrap_or_default().to_string(),
                            segments: template.split('/').map(str::to_string).collect(),
                        });
                    }
                }
            }
        }
        Description {
            name,
            doc,
            operations,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation a concrete call is, if any. A literal segment wins over a parameter
    /// (`/pulls/comments` is not `/pulls/{pull_number}`).
    pub fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method == method && fits(&op.segments, &path))
            .max_by_key(|op| op.segments.iter().filter(|s| !s.starts_with('{')).count())
    }

    /// Follows a `$ref` (to a response, parameter or request body) to what it names.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or(&Value::Null),
            None => v,
        }
    }

    /// The pointer of the JSON schema of a request body or response at `at`, if it has one.
    fn content_schema(&self, at: &str) -> Option<String> {
        let v = self.doc.pointer(at)?;
        let at = match v["$ref"].as_str() {
            Some(r) => r.trim_start_matches('#').to_string(),
            None => at.to_string(),
        };
        let content = self.doc.pointer(&format!("{at}/content"))?.as_object()?;
        let media = content
            .keys()
            .find(|k| *k == "application/json")
            .or_else(|| content.keys().find(|k| k.contains("json")))?;
        Some(format!("{at}/content/{}/schema", escape(media)))
    }

    /// The problems of `instance` against the schema at pointer `at` (compiled once).
    pub fn validate(&self, at: &str, instance: &Value) -> Vec<String> {
        let validator = self.validator(at);
        validator
            .iter_errors(instance)
            .take(5)
            .map(|e| {
                let mut message = e.to_string();
                if message.len() > 300 {
                    let mut end = 300;
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                    message.push_str("...");
                }
                let place = e.instance_path().to_string();
                let place = if place.is_empty() { "/".into() } else { place };
                format!("at `{place}`: {message}")
            })
            .collect()
    }

    fn validator(&self, at: &str) -> Arc<jsonschema::Validator> {
        let key = at.to_string();
        if let Some(v) = self.compiled.lock().unwrap().get(&key) {
            return v.clone();
        }
        let schema = self
            .doc
            .pointer(at)
            .unwrap_or_else(|| panic!("{}: no schema at {at}", self.name));
        let root = self.standalone(schema);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(false)
            .build(&root)
            .unwrap_or_else(|e| panic!("{}: the schema at {at} does not compile: {e}", self.name));
        let validator = Arc::new(validator);
        self.compiled.lock().unwrap().insert(key, validator.clone());
        validator
    }

    /// `schema` as one JSON Schema document: itself, and under `components/schemas` every
    /// component it reaches, each converted from OpenAPI's dialect.
    fn standalone(&self, schema: &Value) -> Value {
        let mut components = Map::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut seen = BTreeSet::new();
        refs(schema, &mut queue);
        while let Some(r) = queue.pop_front() {
            if !seen.insert(r.clone()) {
                continue;
            }
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{}: a $ref outside components/schemas: {r}", self.name));
            let target = &self.doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{}: $ref {r} names nothing", self.name);
            refs(target, &mut queue);
            components.insert(name.to_string(), convert(target));
        }
        json!({ "allOf": [convert(schema)], "components": { "schemas": components } })
    }

    /// Everything about one call that the description does not allow.
    pub fn check(&self, ex: &Exchange) -> Vec<Problem> {
        let call = ex.call();
        let Some(op) = self.operation(&ex.method, &ex.path) else {
            return vec![Problem {
                call,
                operation: String::new(),
                what: format!("no operation of {} has this method and path", self.name),
            }];
        };
        let problem = |what: String| Problem {
            call: call.clone(),
            operation: op.id.clone(),
            what,
        };
        let mut problems = Vec::new();
        let item_at = format!("/paths/{}", escape(&op.template));
        let at = format!("{item_at}/{}", op.method.to_ascii_lowercase());
        let item = &self.doc.pointer(&item_at).expect("the operation's path");
        let operation = &item[op.method.to_ascii_lowercase()];

        let mut query_names = BTreeSet::new();
        for list in [&item["parameters"], &operation["parameters"]] {
            for p in list.as_array().into_iter().flatten() {
                let p = self.resolve(p);
                if p["in"] == "query" {
                    query_names.insert(p["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        for (name, _) in &ex.query {
            if !query_names.contains(name) {
                problems.push(problem(format!(
                    "query parameter `{name}` is not one of the operation's ({query_names:?})"
                )));
            }
        }

        let body_at = format!("{at}/requestBody");
        let takes_body = self.doc.pointer(&body_at).is_some();
        match (&ex.request, self.content_schema(&body_at)) {
            (Some(body), Some(schema)) => {
                for e in self.validate(&schema, body) {
                    problems.push(problem(format!("request body {e}")));
                }
            }
            (Some(_), None) if !takes_body => {
                problems.push(problem("sends a body; the operation takes none".into()))
            }
            (None, _) if self.resolve(&operation["requestBody"])["required"] == true => {
                problems.push(problem("sends no body; the operation requires one".into()))
            }
            _ => {}
        }

        let status = ex.status.to_string();
        let responses = &operation["responses"];
        let key = if responses.get(&status).is_some() {
            status.clone()
        } else if responses.get("default").is_some() {
            "default".to_string()
        } else if ANY_OPERATION_MAY_ANSWER.contains(&ex.status) {
            return self.unknown_removed(problems);
        } else {
            let listed: Vec<&String> = responses
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            problems.push(problem(format!(
                "answered {status}, which the operation does not list ({listed:?})"
            )));
            return self.unknown_removed(problems);
        };
        let response_at = format!("{at}/responses/{}", escape(&key));
        match (&ex.answer, self.content_schema(&response_at)) {
            (Some(answer), Some(schema)) => {
                for e in self.validate(&schema, answer) {
                    problems.push(problem(format!("answer {status} {e}")));
                }
            }
            (None, Some(_)) if ex.status != 304 => problems.push(problem(format!(
                "answered {status} with no body; the description gives that answer one"
            ))),
            (Some(answer), None) => problems.push(problem(format!(
                "answered {status} with a body ({answer}); the description gives that answer none"
            ))),
            _ => {}
        }
        self.unknown_removed(problems)
    }

    /// Drops the problems [`KNOWN_ERRORS`] lists.
    fn unknown_removed(&self, mut problems: Vec<Problem>) -> Vec<Problem> {
        problems.retain(|p| {
            !KNOWN_ERRORS
                .iter()
                .any(|(op, needle, _)| p.operation == *op && p.what.contains(needle))
        });
        problems
    }

    /// The webhook description's schema pointer for an event (`workflow_job`) and its payload's
    /// `action`, if it describes one.
    pub fn webhook_schema(&self, event: &str, payload: &Value) -> Option<String> {
        let mut key = event.replace('_', "-");
        if let Some(action) = payload["action"].as_str() {
            key = format!("{key}-{}", action.replace('_', "-"));
        }
        self.content_schema(&format!("/webhooks/{}/post/requestBody", escape(&key)))
    }

    /// Everything about a webhook payload that the webhooks description does not allow.
    pub fn check_webhook(&self, event: &str, payload: &Value) -> Vec<Problem> {
        let call = match payload["action"].as_str() {
            Some(action) => format!("{event}.{action}"),
            None => event.to_string(),
        };
        let Some(at) = self.webhook_schema(event, payload) else {
            return vec![Problem {
                call,
                operation: String::new(),
                what: format!("{} describes no such event and action", self.name),
            }];
        };
        self.validate(&at, payload)
            .into_iter()
            .map(|what| Problem {
                call: call.clone(),
                operation: String::new(),
                what: format!("payload {what}"),
            })
            .collect()
    }
}

/// Whether a concrete path fits a template's segments. A parameter matches one segment, except
/// a last `{path}` or `{ref}`, which may span several (a file's path, `heads/main`).
fn fits(template: &[String], path: &[&str]) -> bool {
    let mut at = 0;
    for (i, segment) in template.iter().enumerate() {
        let last = i + 1 == template.len();
        if last && (segment == "{path}" || segment == "{ref}") {
            return path.len() > at && path[at..].iter().all(|s| !s.is_empty());
        }
        let Some(actual) = path.get(at) else {
            return false;
        };
        let is_parameter = segment.starts_with('{') && segment.ends_with('}');
        if is_parameter {
            if actual.is_empty() {
                return false;
            }
        } else if segment != actual {
            return false;
        }
        at += 1;
    }
    at == path.len()
}

/// A JSON pointer token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Every `$ref` in a schema, queued.
fn refs(v: &Value, queue: &mut VecDeque<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => queue.push_back(r.clone()),
                    ("enum" | "const" | "default" | "example" | "examples", _) => {}
                    _ => refs(x, queue),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, queue)),
        _ => {}
    }
}

/// An OpenAPI schema as JSON Schema 2020-12: `nullable: true` becomes "or null" (for every
/// schema, with or without `type`, `enum` or `$ref`), annotations that are not JSON Schema are
/// dropped. Names under `properties` are kept as they are (a property may be called `example`).
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                match k.as_str() {
                    "nullable" | "example" | "examples" | "discriminator" | "xml"
                    | "externalDocs" | "deprecated" | "readOnly" | "writeOnly" | "description"
                    | "title" | "format" => {}
                    k if k.starts_with("x-") => {}
                    "properties" | "patternProperties" | "$defs" | "definitions" => {
                        let props: Map<String, Value> = x
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(name, s)| (name.clone(), convert(s)))
                            .collect();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "enum" | "const" | "default" | "required" => {
                        out.insert(k.clone(), x.clone());
                    }
                    _ => {
                        out.insert(k.clone(), convert(x));
                    }
                }
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] })
            } else {
                Value::Object(out)
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(convert).collect()),
        other => other.clone(),
    }
}
