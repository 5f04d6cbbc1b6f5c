//! Rendering findings for people (`human`), for GitHub workflow annotations (`github`) and for
//! tools (`json`).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use gatehouse_core::{Diagnostic, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable text with the offending line and a caret (colour on a terminal unless NO_COLOR).
    Human,
    /// GitHub Actions workflow commands (`::error file=..,line=..::`), shown on the PR diff.
    Github,
    /// One JSON document: every finding with file, line, column, code, message and help.
    Json,
}

/// Writes `diags` (already sorted) to stdout in `format`, with a summary line for humans.
pub fn print(format: Format, root: &Path, diags: &[Diagnostic]) -> std::io::Result<()> {
    let stdout = anstream::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Human => {
            let renderer = if color_enabled() {
                Renderer::styled()
            } else {
                Renderer::plain()
            };
            let mut sources = SourceCache::new(root);
            for d in diags {
                writeln!(out, "{}\n", render_human(&renderer, &mut sources, d))?;
            }
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diags.len() - errors;
            writeln!(out, "{}", summary(errors, warnings))?;
        }
        Format::Github => {
            for d in diags {
                writeln!(out, "{}", github_annotation(d))?;
            }
        }
        Format::Json => {
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let doc = serde_json::json!({
                "errors": errors,
                "warnings": diags.len() - errors,
                "diagnostics": diags,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()
}

pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if errors == 0 && warnings == 0 {
        "no problems found".to_string()
    } else {
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

fn color_enabled() -> bool {
    // anstream strips colour when stdout is not a terminal or NO_COLOR is set; this only decides
    // whether to produce it at all.
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Lines of the files findings point at, read once each.
struct SourceCache<'a> {
    root: &'a Path,
    files: HashMap<String, Option<String>>,
}

impl<'a> SourceCache<'a> {
    fn new(root: &'a Path) -> Self {
        SourceCache {
            root,
            files: HashMap::new(),
        }
    }

    fn line(&mut self, file: &str, line: u32) -> Option<&str> {
        let text = self.files.entry(file.to_string()).or_insert_with(|| {
            let bytes = std::fs::read(self.root.join(file)).ok()?;
            if bytes.len() > gatehouse_core::parse::MAX_FILE_BYTES {
                return None;
            }
            String::from_utf8(bytes).ok()
        });
        gatehouse_core::span::yaml_lines(text.as_deref()?).nth(line.checked_sub(1)? as usize)
    }
}

fn render_human(renderer: &Renderer, sources: &mut SourceCache<'_>, d: &Diagnostic) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = level.primary_title(d.message.as_str()).id(d.code);
    let location = d.location();
    let line_text = if d.span.is_known() {
        sources.line(&d.file, d.span.line).map(str::to_string)
    } else {
        None
    };
    let mut group = match &line_text {
        Some(text) => {
            let range = caret_range(text, d.span.column, d.span.len);
            title.element(
                Snippet::source(text.as_str())
                    .line_start(d.span.line as usize)
                    .path(d.file.as_str())
                    .annotation(AnnotationKind::Primary.span(range)),
            )
        }
        None => title.element(Level::NOTE.message(format!("in {location}"))),
    };
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let report: [Group<'_>; 1] = [group];
    renderer.render(&report).to_string()
}

/// The byte range in `line` to underline: from the 1-based character `column`, `len` bytes when
/// known, otherwise to the end of the token.
fn caret_range(line: &str, column: u32, len: u32) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    let token = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}'))
        .unwrap_or(rest.len());
    let want = if len > 0 { len as usize } else { token };
    let mut end = (start + want.max(1)).min(line.len());
    while !line.is_char_boundary(end) {
        end += 1;
    }
    if end <= start {
        // An empty line or a place past its end: point just after it.
        return line.len()..line.len();
    }
    start..end
}

/// One GitHub Actions workflow command. Property values escape `%`, CR, LF, `:` and `,`;
/// messages escape `%`, CR and LF.
pub fn github_annotation(d: &Diagnostic) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut props = Vec::new();
    if !d.file.is_empty() {
        props.push(format!("file={}", escape_property(&d.file)));
    }
    if d.span.is_known() {
        props.push(format!("line={}", d.span.line));
        props.push(format!("col={}", d.span.column));
    }
    props.push(format!("title={}", escape_property(d.code)));
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!("::{kind} {}::{}", props.join(","), escape_data(&message))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::Span;

    #[test]
    fn github_annotations_escape_their_fields() {
        let d = Diagnostic::error(
            "schema",
            "grants/a,b.yml",
            Span::at(3, 5),
            "bad: 100%\nnext",
        )
        .with_help("fix it");
        assert_eq!(
            github_annotation(&d),
            "::error file=grants/a%2Cb.yml,line=3,col=5,title=schema::bad: 100%25%0Anext%0Ahelp: fix it"
        );
    }

    #[test]
    fn carets_cover_the_token_at_the_column() {
        let line = "  - resource: cirun-gpu  # note";
        assert_eq!(&line[caret_range(line, 15, 0)], "cirun-gpu");
        assert_eq!(&line[caret_range(line, 15, 5)], "cirun");
        assert_eq!(caret_range("", 1, 0), 0..0);
        let wide = "x: é€";
        assert_eq!(&wide[caret_range(wide, 4, 0)], "é€");
    }
}
