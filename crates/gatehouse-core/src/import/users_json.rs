//! The terms-of-service list in the JSON format Cirun reads through a policy's
//! `users_from_json`: `{"users": [{"github": "jaimergp", "id": 2559438}, ...]}`, the format of
//! the open GPU server's `access/conda-forge-users.json`
//! (github.com/Quansight/open-gpu-server). `import cirun` reads it into `people/tos.yml`;
//! `gatehouse site` writes `people/tos.yml` back out in it (`v1/tos-users.json`), so the
//! provider's `users_from_json` can point at the ledger from then on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::model::{AccountId, TosEntry, TosList};
use crate::span::{Span, Spanned};

#[derive(Deserialize, Serialize)]
struct UsersJson<T> {
    users: Vec<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadUser {
    github: String,
    id: i64,
}

#[derive(Serialize)]
struct WrittenUser<'a> {
    github: &'a str,
    id: i64,
}

/// Reads a users list. Every person becomes one entry, in the list's order; an entry whose id
/// is not positive, or a login or id listed twice, is an error naming the entry.
pub fn parse(file: &str, bytes: &[u8]) -> Result<TosList, Vec<Diagnostic>> {
    let help = "the list must read {\"users\": [{\"github\": \"<login>\", \"id\": <numeric account id>}, ...]}";
    let doc: UsersJson<ReadUser> = serde_json::from_slice(bytes).map_err(|e| {
        vec![
            Diagnostic::error(
                "users-json",
                file,
                Span::at(e.line() as u32, e.column() as u32),
                format!("not a users list: {e}"),
            )
            .with_help(help),
        ]
    })?;
    let mut errors = Vec::new();
    let mut logins: HashMap<String, usize> = HashMap::new();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut list = TosList::new();
    for (n, user) in doc.users.into_iter().enumerate() {
        let place = format!("entry {} (`{}`)", n + 1, user.github);
        if user.id <= 0 {
            errors.push(Diagnostic::error(
                "users-json",
                file,
                Span::UNKNOWN,
                format!("{place}: the account id {} is not positive", user.id),
            ));
        }
        if user.github.is_empty() {
            errors.push(Diagnostic::error(
                "users-json",
                file,
                Span::UNKNOWN,
                format!("{place}: the login is empty"),
            ));
        }
        if let Some(first) = logins.insert(user.github.to_ascii_lowercase(), n + 1) {
            errors.push(Diagnostic::error(
                "users-json",
                file,
                Span::UNKNOWN,
                format!("{place}: the login is listed already in entry {first}"),
            ));
        }
        if let Some(first) = ids.insert(user.id, n + 1) {
            errors.push(Diagnostic::error(
                "users-json",
                file,
                Span::UNKNOWN,
                format!(
                    "{place}: the account id {} is listed already in entry {first}",
                    user.id
                ),
            ));
        }
        list.push(TosEntry {
            github: Spanned::unplaced(user.github),
            id: Spanned::unplaced(AccountId(user.id)),
            accepted: None,
        });
    }
    if errors.is_empty() {
        Ok(list)
    } else {
        Err(errors)
    }
}

/// `list` in the users-list format, in its order, indented as the open GPU server's file is.
pub fn to_json(list: &TosList) -> String {
    let doc = UsersJson {
        users: list
            .iter()
            .map(|e| WrittenUser {
                github: &e.github.value,
                id: e.id.value.0,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// `people/tos.yml` for `list`: one short line per person, in the list's order.
pub fn to_tos_yaml(list: &TosList, source: &str) -> String {
    let mut out = format!(
        "# Who accepted the terms of service, matched by numeric account id.\n# Imported from {source}; from now on this file is the list (`gatehouse site` publishes it\n# as v1/tos-users.json, in the same format, for Cirun's users_from_json).\n"
    );
    if list.is_empty() {
        out.push_str("[]\n");
    }
    for e in list {
        let login = &e.github.value;
        let plain = login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && login.starts_with(|c: char| c.is_ascii_alphabetic())
            && !matches!(
                login.to_ascii_lowercase().as_str(),
                "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
            );
        let login = if plain {
            login.clone()
        } else {
            serde_json::to_string(login).unwrap_or_default()
        };
        out.push_str(&format!("- {{ github: {login}, id: {} }}\n", e.id.value.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_yaml;

    const REAL: &str = include_str!("../../../../fixtures/conda-forge/conda-forge-users.json");

    #[test]
    fn the_real_list_reads_and_survives_both_formats() {
        let list = parse("users.json", REAL.as_bytes()).unwrap();
        assert_eq!(list.len(), 37);
        assert_eq!(list[0].github.value, "jaimergp");
        assert_eq!(list[0].id.value, AccountId(2559438));
        // Written out again, it is the same document.
        let again: serde_json::Value = serde_json::from_str(&to_json(&list)).unwrap();
        let real: serde_json::Value = serde_json::from_str(REAL).unwrap();
        assert_eq!(again, real);
        // people/tos.yml of it reads back as the same people.
        let yaml = to_tos_yaml(&list, "users.json");
        let back: TosList = parse_yaml("people/tos.yml", yaml.as_bytes()).unwrap();
        let pairs = |l: &TosList| {
            l.iter()
                .map(|e| (e.github.value.clone(), e.id.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&back), pairs(&list));
    }

    #[test]
    fn bad_lists_name_the_entry() {
        let dup = br#"{"users": [{"github": "a", "id": 1}, {"github": "A", "id": 2}, {"github": "b", "id": 1}]}"#;
        let errors = parse("u.json", dup).unwrap_err();
        let text: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("entry 2") && text[0].contains("login"));
        assert!(text[1].contains("entry 3") && text[1].contains("account id 1"));
        let bad = parse("u.json", br#"{"users": [{"github": "a", "id": "1"}]}"#).unwrap_err();
        assert_eq!(bad[0].span.line, 1);
        assert!(parse("u.json", br#"{"users": [{"github": "a", "id": -4}]}"#).is_err());
        assert!(parse("u.json", b"[]").is_err());
    }
}
