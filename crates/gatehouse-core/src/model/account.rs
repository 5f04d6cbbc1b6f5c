//! Numeric GitHub account ids, as the access repository writes them.
//!
//! The id is what identifies a person (logins can be renamed or reused), so a file must not be
//! able to hide which id it names: YAML reads `0x1F`, `0o17`, `1_000`, `+5` and `"31"` as
//! numbers too, and a reviewer reading the pull request sees something else than the plain id.
//! [`AccountId`] is the one place that accepts only plain decimal digits.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// What to write instead of a refused account id; the loader shows it as the error's help.
pub(crate) const ACCOUNT_ID_HELP: &str = "write the account id as plain decimal digits, without quotes, sign, prefix or `_` (like `2559438`); https://api.github.com/users/LOGIN shows it";

/// A numeric GitHub account id, written in files as plain decimal digits (`2559438`).
///
/// Anything else YAML reads as a number is refused when the file is read: quotes, `0x`, `0o`
/// and `0b` prefixes, `_` separators, a `+` sign, leading zeros, exponents. A `-` sign is
/// read, so that `check` can say that ids are positive where the id is listed.
///
/// The rule needs the text as written, which only serde-saphyr's locations give: read an
/// `AccountId` directly from YAML, not through `#[serde(flatten)]` or `#[serde(untagged)]`,
/// where serde buffers the value and the text is lost (every id is then refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<AccountId> for i64 {
    fn from(id: AccountId) -> i64 {
        id.0
    }
}

/// Reads `written`, the scalar's text exactly as it stands in the file, as an id.
fn parse_written(written: &str) -> Result<AccountId, String> {
    let digits = written.strip_prefix('-').unwrap_or(written);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !plain {
        return Err(format!("`{written}` is not a plain decimal account id"));
    }
    written
        .parse()
        .map(AccountId)
        .map_err(|_| format!("`{written}` is too large for an account id"))
}

/// The scalar as the deserializer hands it over: for a plain scalar, its text unchanged.
struct Text<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a numeric account id")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(s.into()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(s.to_owned().into()))
            }
        }
        // As a string: serde-saphyr then hands over a plain scalar's text (`0x1F`), where
        // `i64` would hand over the number YAML reads (31).
        d.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = serde_saphyr::Spanned::<Text<'de>>::deserialize(d)?;
        let text_len = u64::try_from(text.value.0.len()).ok();
        // Where the scalar stands (the anchored value for an alias) and how many bytes it
        // takes: more bytes than its text means quotes, escapes or a folded line, and an
        // unknown length means serde buffered it; either way the text seen is not the text
        // written, and a quoted id is a string.
        if text.defined.span().byte_len() != text_len {
            return Err(de::Error::custom(format!(
                "account id `{}` is not written as a plain number",
                text.value.0
            )));
        }
        parse_written(&text.value.0).map_err(de::Error::custom)
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl JsonSchema for AccountId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AccountId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "description": "A numeric GitHub account id, written as plain decimal digits (no quotes, sign, prefix or `_`)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Entry {
        id: AccountId,
    }

    fn read(value: &str) -> Result<AccountId, String> {
        serde_saphyr::from_str::<Entry>(&format!("id: {value}\n"))
            .map(|e| e.id)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn plain_decimal_digits_are_the_one_spelling() {
        assert_eq!(read("2559438"), Ok(AccountId(2559438)));
        assert_eq!(read("2559438   # jaimergp"), Ok(AccountId(2559438)));
        assert_eq!(read("0"), Ok(AccountId(0)));
        // Read, so that `check` reports it as not positive where it is listed.
        assert_eq!(read("-5"), Ok(AccountId(-5)));
    }

    #[test]
    fn every_other_spelling_of_a_number_is_refused() {
        for written in [
            "\"123\"",
            "'123'",
            "\"\\x31\"",
            "0x7B",
            "0o173",
            "0b1111011",
            "1_000",
            "+123",
            "0123",
            "1e3",
            "123.0",
            ".inf",
            "-0x7B",
            "--1",
            "\"\"",
            "12\n  3",
            "|-\n  123",
            "true",
        ] {
            let got = read(written);
            assert!(
                got.as_ref().is_err_and(|e| e.contains("account id")),
                "{written:?} read as {got:?}"
            );
        }
    }

    #[test]
    fn an_id_beyond_i64_is_refused_not_wrapped() {
        let got = read("9223372036854775808");
        assert!(
            got.as_ref().is_err_and(|e| e.contains("too large")),
            "{got:?}"
        );
        assert_eq!(read("9223372036854775807"), Ok(AccountId(i64::MAX)));
    }

    #[test]
    fn an_alias_is_judged_by_the_anchored_text() {
        #[derive(Debug, Deserialize)]
        struct Two {
            a: AccountId,
            b: AccountId,
        }
        let two: Two = serde_saphyr::from_str("a: &x 7\nb: *x\n").expect("plain ids");
        assert_eq!((two.a, two.b), (AccountId(7), AccountId(7)));
        assert!(serde_saphyr::from_str::<Two>("a: &x \"7\"\nb: *x\n").is_err());
    }

    #[test]
    fn it_is_written_back_as_a_number() {
        assert_eq!(
            serde_json::to_string(&AccountId(2559438)).expect("json"),
            "2559438"
        );
        assert_eq!(AccountId(2559438).to_string(), "2559438");
    }
}
