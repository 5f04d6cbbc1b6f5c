//! Source locations that travel with parsed values.
//!
//! Every value read from the access repository keeps the place it came from, so that a check
//! that runs long after parsing can still point at the exact line and column.

use std::fmt;
use std::hash::{Hash, Hasher};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A place in a source file: 1-based line and column, and the byte range when known.
///
/// A `Span` with `line == 0` is unknown (for values built in code rather than parsed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub line: u32,
    pub column: u32,
    /// Byte offset of the value's first character in the file.
    pub offset: Option<u32>,
    /// Length of the value in bytes, when known.
    pub len: u32,
}

impl Span {
    pub const UNKNOWN: Span = Span {
        line: 0,
        column: 0,
        offset: None,
        len: 0,
    };

    pub fn at(line: u32, column: u32) -> Span {
        Span {
            line,
            column,
            offset: None,
            len: 0,
        }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }

    pub(crate) fn from_location(loc: serde_saphyr::Location) -> Span {
        if loc == serde_saphyr::Location::UNKNOWN {
            return Span::UNKNOWN;
        }
        let span = loc.span();
        Span {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            offset: span.byte_offset().and_then(|o| u32::try_from(o).ok()),
            len: span
                .byte_len()
                .and_then(|l| u32::try_from(l).ok())
                .unwrap_or(0),
        }
    }

    /// A place the YAML parser itself reports (its columns count from 0), `len` bytes long.
    pub(crate) fn from_marker(marker: &serde_saphyr::granit_parser::Marker, len: usize) -> Span {
        Span {
            line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
            column: u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX),
            offset: marker.byte_offset().and_then(|o| u32::try_from(o).ok()),
            len: u32::try_from(len).unwrap_or(0),
        }
    }
}

/// A value and the place it was read from.
///
/// Equality, ordering and hashing look at the value only: two equal names written at different
/// places are the same name.
#[derive(Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    /// A value built in code, with no source location.
    pub fn unplaced(value: T) -> Self {
        Spanned {
            value,
            span: Span::UNKNOWN,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Spanned<T> {}
impl<T: Hash> Hash for Spanned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}
impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Spanned {
            span: Span::from_location(inner.referenced),
            value: inner.value,
        })
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The lines of `text` as YAML counts them, which the lines of every [`Span`] are: a line ends
/// at `\n`, `\r\n` or a lone `\r` (YAML 1.2, "Line Break Characters"). `str::lines` does not
/// end a line at a lone `\r`, so it would show the wrong line of such a file.
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let now = rest?;
        match now.find(['\n', '\r']) {
            Some(i) => {
                let next = if now[i..].starts_with("\r\n") {
                    i + 2
                } else {
                    i + 1
                };
                rest = Some(&now[next..]);
                Some(&now[..i])
            }
            None => {
                rest = None;
                (!now.is_empty()).then_some(now)
            }
        }
    })
}

#[cfg(test)]
mod line_tests {
    use super::yaml_lines;

    #[test]
    fn lines_end_where_yaml_ends_them() {
        let lines: Vec<&str> = yaml_lines("a\nb\r\nc\rd\n").collect();
        assert_eq!(lines, ["a", "b", "c", "d"]);
        assert_eq!(yaml_lines("x").collect::<Vec<_>>(), ["x"]);
        assert_eq!(yaml_lines("").count(), 0);
        assert_eq!(yaml_lines("\n\n").collect::<Vec<_>>(), ["", ""]);
    }

    /// A lone `\r` ends a line for the parser too: its spans and these lines agree.
    #[test]
    fn a_parse_error_after_a_lone_cr_names_a_line_that_exists() {
        let text = "action: renew\rprojects: [a]\r:expires: 2027-11-01\n";
        let err = crate::parse::parse_yaml::<crate::model::RequestFile>("r.yml", text.as_bytes())
            .unwrap_err();
        let line = yaml_lines(text).nth(err.span.line as usize - 1);
        assert_eq!(line, Some(":expires: 2027-11-01"), "{err:?}");
    }
}
