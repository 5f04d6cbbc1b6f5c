//! Someone else's YAML (workflow files, `conda-forge.yml`) as a tree of nodes with places.
//!
//! The access repository's files have schemas; a project's files do not, as far as gatehouse is
//! concerned: audit reads only a few keys and must not refuse a file because of the rest. So
//! they are read into a generic tree in which every node keeps its line and column, with the
//! same limits on size, nesting and aliases as the access repository's files.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::diag::Diagnostic;
use crate::parse::MAX_FILE_BYTES;
use crate::span::{Span, Spanned};

/// One YAML node. Scalars keep their text as written (`true`, `12`, `linux`), since a runs-on
/// label is text whatever it looks like.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Scalar(String),
    Seq(Vec<Spanned<Node>>),
    /// Pairs in file order; a repeated key appears twice (YAML forbids it, GitHub refuses it,
    /// but audit reports what it finds rather than choosing one).
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The values under `key` (every one, when the key is repeated).
    pub fn get_all<'a, 'k>(
        &'a self,
        key: &'k str,
    ) -> impl Iterator<Item = &'a Spanned<Node>> + use<'a, 'k> {
        let pairs: &[(Spanned<Node>, Spanned<Node>)] = match self {
            Node::Map(pairs) => pairs,
            _ => &[],
        };
        pairs
            .iter()
            .filter(move |(k, _)| k.value.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The first value under `key`.
    pub fn get<'a>(&'a self, key: &str) -> Option<&'a Spanned<Node>> {
        self.get_all(key).next()
    }

    /// The pairs of a map whose keys are text, with the key's place.
    pub fn entries(&self) -> impl Iterator<Item = (Spanned<&str>, &Spanned<Node>)> {
        let pairs: &[(Spanned<Node>, Spanned<Node>)] = match self {
            Node::Map(pairs) => pairs,
            _ => &[],
        };
        pairs
            .iter()
            .filter_map(|(k, v)| Some((Spanned::new(k.value.as_str()?, k.span), v)))
    }

    pub fn items(&self) -> &[Spanned<Node>] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            pairs.push((key, value));
        }
        Ok(Node::Map(pairs))
    }
}

/// The limits of `parse.rs`, deeper and with more nodes (workflows nest further than ledger
/// files), with repeated keys passed through instead of refused.
fn options() -> serde_saphyr::Options {
    let mut budget = crate::parse::budget(MAX_FILE_BYTES);
    budget.max_depth = 64;
    budget.max_nodes = 500_000;
    budget.max_events = 1_000_000;
    serde_saphyr::options! {
        budget: Some(budget),
        with_snippet: false,
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    }
}

/// Reads `bytes` (the contents of `file`) into a tree. A file that cannot be read (too large,
/// not UTF-8, not YAML, over a limit) is a diagnostic with its place; an empty file is `Null`.
pub fn parse_tree(file: &str, bytes: &[u8]) -> Result<Spanned<Node>, Diagnostic> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::warning(
            "audit-unreadable",
            file,
            Span::UNKNOWN,
            format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES} audit reads",
                bytes.len()
            ),
        )
        .with_help("a workflow this large is not generated by conda-smithy; review it by hand"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        Diagnostic::warning(
            "audit-unreadable",
            file,
            Span::at(line as u32, 1),
            "file is not valid UTF-8",
        )
        .with_help("GitHub refuses such a workflow; fix or remove the file")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(Spanned::new(Node::Null, Span::at(1, 1)));
    }
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options()).map_err(|e| {
        let span = e
            .location()
            .map(Span::from_location)
            .unwrap_or(Span::UNKNOWN);
        let message = e.to_string();
        let first = message.lines().next().unwrap_or(&message);
        let first = first.find(" at line ").map_or(first, |i| &first[..i]);
        Diagnostic::warning(
            "audit-unreadable",
            file,
            span,
            format!("cannot read the file as YAML: {first}"),
        )
        .with_help("GitHub refuses a workflow it cannot parse; fix or remove the file")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_lines_and_repeated_keys() {
        let tree = parse_tree(
            "w.yml",
            b"on: push\njobs:\n  a:\n    runs-on: [x, y]\non: pull_request\n",
        )
        .unwrap();
        let ons: Vec<_> = tree.get_all("on").map(|n| n.span.line).collect();
        assert_eq!(ons, [1, 5]);
        let runs_on = tree
            .get("jobs")
            .unwrap()
            .get("a")
            .unwrap()
            .get("runs-on")
            .unwrap();
        assert_eq!(runs_on.items()[1].value.as_str(), Some("y"));
        assert_eq!(runs_on.items()[1].span.line, 4);
        assert_eq!(tree.get("on").unwrap().value.as_str(), Some("push"));
    }

    #[test]
    fn hostile_files_are_findings() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        for bad in [
            bomb.as_bytes(),
            b"\xff\xfe",
            b"jobs: [",
            "[".repeat(500).as_bytes(),
            b"a: 1\n---\nb: 2\n",
        ] {
            let d = parse_tree("w.yml", bad).unwrap_err();
            assert_eq!(d.code, "audit-unreadable");
        }
        assert_eq!(
            parse_tree("w.yml", b"# nothing\n").unwrap().value,
            Node::Null
        );
    }
}
