//! Parsing one YAML document into a model type, safely.
//!
//! Limits keep hostile files (alias bombs, deep nesting, huge scalars) from costing more than a
//! small, fixed amount of time and memory; every failure becomes a [`Diagnostic`] that names the
//! file, line and column.
//!
//! YAML can also make a value differ from the text a reviewer reads: a tag changes how the value
//! after it is read (`!!binary` decodes base64, `!!str` turns a number into text), and a merge
//! key (`<<: *base`) brings in fields written elsewhere. Access files need neither, so both are
//! refused where they stand.

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser;

use crate::diag::Diagnostic;
use crate::model::ACCOUNT_ID_HELP;
use crate::span::Span;

/// Files larger than this are refused before they are parsed.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// `people/tos.yml` lists everyone who accepted the terms, one short line each: a large
/// organisation's list outgrows 1 MiB (about 17,000 people), so it gets a larger limit.
pub const MAX_TOS_BYTES: usize = 16 * 1024 * 1024;

fn options(budget: serde_saphyr::Budget) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: Some(budget),
        with_snippet: false,
        strict_booleans: true,
        merge_keys: serde_saphyr::MergeKeyPolicy::Error,
    }
}

/// The parser's limits for a file of at most `limit` bytes: depth, aliases and anchors (billion
/// laughs), documents, nodes and events. Shared with audit's reader of project files.
pub(crate) fn budget(limit: usize) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    budget.max_nodes = 200_000;
    budget.max_events = 500_000;
    budget.max_recorded_anchor_events = 10_000;
    budget.max_recorded_anchor_bytes = 256 * 1024;
    budget.max_total_scalar_bytes = limit;
    budget.max_nodes = budget.max_nodes.max(limit / 4);
    budget.max_events = budget.max_events.max(limit / 2);
    budget.max_merge_keys = 100;
    budget
}

/// Parses `bytes` (the contents of `file`) as a `T`, with the 1 MiB limit.
pub fn parse_yaml<T: DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, Diagnostic> {
    parse_yaml_limited(file, bytes, MAX_FILE_BYTES)
}

/// Parses `bytes` (the contents of `file`) as a `T`, refusing more than `limit` bytes.
pub fn parse_yaml_limited<T: DeserializeOwned>(
    file: &str,
    bytes: &[u8],
    limit: usize,
) -> Result<T, Diagnostic> {
    if bytes.len() > limit {
        return Err(Diagnostic::error(
            "file-too-large",
            file,
            Span::UNKNOWN,
            format!(
                "file is {} bytes; the limit is {limit} bytes ({} MiB)",
                bytes.len(),
                limit / (1024 * 1024)
            ),
        )
        .with_help("split it, or remove what does not belong in the access repository"));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            return Err(Diagnostic::error(
                "not-utf8",
                file,
                Span::at(line as u32, column as u32),
                "file is not valid UTF-8",
            )
            .with_help("save the file as UTF-8"));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Err(
            Diagnostic::error("empty-file", file, Span::UNKNOWN, "file is empty")
                .with_help("fill it in, or delete it"),
        );
    }
    let budget = budget(limit);
    let tags = refuse_tags(file, text, &budget)?;
    let value = serde_saphyr::from_str_with_options::<T>(text, options(budget))
        .map_err(|e| schema_error(file, &e))?;
    match tags {
        TagScan::Clean => Ok(value),
        // The deserializer read what the same parser could not: fail closed.
        TagScan::Unfinished(d) => Err(d),
    }
}

/// How far [`refuse_tags`] got through a file without finding a tag.
enum TagScan {
    Clean,
    /// The parser stopped early; the deserializer, which uses the same parser, is expected to
    /// fail there too and say why.
    Unfinished(Diagnostic),
}

/// Refuses the file's first explicit YAML tag (`!!binary`, `!!str`, `!foo`, `!<tag:...>`, a lone
/// `!`). serde-saphyr reads tags without saying so, so this is a pass over the parser's events,
/// with the deserializer's parser limits; it runs only on files that hold a `!` at all, since
/// every tag starts with one, which keeps it off the path of almost every file.
fn refuse_tags(
    file: &str,
    text: &str,
    budget: &serde_saphyr::Budget,
) -> Result<TagScan, Diagnostic> {
    if !text.contains('!') {
        return Ok(TagScan::Clean);
    }
    let parser = granit_parser::Parser::new_from_str_with_options(text, parser_options(budget));
    for event in parser {
        let (event, at) = match event {
            Ok(e) => e,
            Err(e) => {
                let unfinished = Diagnostic::error(
                    "schema",
                    file,
                    Span::from_marker(e.marker(), 0),
                    format!("the file could not be checked for YAML tags: {}", e.info()),
                )
                .with_help("see `gatehouse schema` for the expected form");
                return Ok(TagScan::Unfinished(unfinished));
            }
        };
        let (Some(tag), Some(start)) = (event.tag(), at.tag_start()) else {
            continue;
        };
        let written = at
            .tag_span()
            .and_then(|s| s.slice(text))
            .map_or_else(|| tag.original(), str::to_string);
        return Err(Diagnostic::error(
            "yaml-tag",
            file,
            Span::from_marker(&start, written.len()),
            format!("the YAML tag `{written}` is not accepted: it changes how the value after it is read"),
        )
        .with_help(format!(
            "delete `{written}` and write the value itself: text as text (in quotes when it looks like a number, a date or `true`), numbers as plain digits"
        )));
    }
    Ok(TagScan::Clean)
}

/// The parser options serde-saphyr derives from `budget` (`Budget::parser_options`, private to
/// it), so that [`refuse_tags`] parses exactly what the deserializer parses.
fn parser_options(budget: &serde_saphyr::Budget) -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(budget.max_depth.saturating_add(1));
    options.set_emit_comments(false);
    options
}

fn schema_error(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let span = e
        .location()
        .map(Span::from_location)
        .unwrap_or(Span::UNKNOWN);
    if matches!(cause(e), serde_saphyr::Error::MergeKeyNotAllowed { .. }) {
        return Diagnostic::error(
            "merge-key",
            file,
            span,
            "merge keys are not accepted: write the fields out",
        )
        .with_help("replace `<<: *name` with the fields it would bring in, written out here, so that a reviewer sees everything the file says");
    }
    let message = clean_message(&e.to_string());
    let help = if message.contains("unknown field") {
        "remove the field, or correct its spelling (`gatehouse schema` lists every field)"
    } else if message.contains("duplicate") {
        "keep one of the repeated keys"
    } else if message.contains("Documents") {
        "keep one YAML document per file (remove the extra `---`)"
    } else if message.contains("budget") || message.contains("limit") {
        "the file is larger or more deeply nested than any access file needs to be"
    } else if message.contains("account id") {
        ACCOUNT_ID_HELP
    } else if message.contains("boolean") {
        "write `true` or `false`"
    } else if message.contains("missing field") {
        "add the field (`gatehouse schema` lists every field)"
    } else {
        "see `gatehouse schema` for the expected form"
    };
    Diagnostic::error("schema", file, span, message).with_help(help)
}

/// The error itself, when serde-saphyr met it while replaying an alias.
fn cause(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = e
    {
        e = error;
    }
    e
}

/// serde-saphyr appends the location to its messages (both places for a value read through an
/// alias: "(defined at line 1, column 7) (used at line 2, column 4)"); ours travels separately.
fn clean_message(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    let cut = first
        .find(" (defined at line ")
        .or_else(|| first.find(" at line "))
        .map(|i| &first[..i])
        .unwrap_or(first);
    let cut = cut.trim_end_matches('.');
    // "duplicate mapping key: granted, set DuplicateKeyPolicy in Options if acceptable"
    if let Some(rest) = cut.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    if cut.contains("budget breached: Documents") {
        return "the file holds more than one YAML document".to_string();
    }
    cut.to_string()
}
