//! Findings: what `check` (and every later command that validates input) reports.
//!
//! A [`Diagnostic`] names a file, a place in it, a stable code, what is wrong and what to do.
//! Rendering (human, GitHub annotations, JSON) lives at the edge, in the CLI.

use std::fmt;

use serde::Serialize;

use crate::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, kebab-case identifier (`unknown-resource`), for filtering and documentation.
    pub code: &'static str,
    /// Path relative to the repository root, with `/` separators; empty for repository-wide
    /// findings.
    pub file: String,
    #[serde(flatten, serialize_with = "serialize_span")]
    pub span: Span,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

fn serialize_span<S: serde::Serializer>(span: &Span, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    if span.is_known() {
        m.serialize_entry("line", &span.line)?;
        m.serialize_entry("column", &span.column)?;
    }
    m.end()
}

impl Diagnostic {
    pub fn error(
        code: &'static str,
        file: impl Into<String>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            file: file.into(),
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(
        code: &'static str,
        file: impl Into<String>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:column`, or as much of it as is known.
    pub fn location(&self) -> String {
        match (self.file.is_empty(), self.span.is_known()) {
            (true, _) => "(repository)".to_string(),
            (false, true) => format!("{}:{}:{}", self.file, self.span.line, self.span.column),
            (false, false) => self.file.clone(),
        }
    }
}

/// The findings of one run, in the order they were found. Call [`Diagnostics::sorted`] before
/// showing them.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Sorted by file, line, column, then severity and code, with exact repeats removed.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (
                &a.file,
                a.span.line,
                a.span.column,
                a.severity,
                a.code,
                &a.message,
            )
                .cmp(&(
                    &b.file,
                    b.span.line,
                    b.span.column,
                    b.severity,
                    b.code,
                    &b.message,
                ))
        });
        self.items.dedup();
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}
