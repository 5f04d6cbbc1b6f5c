//! Secrets: tokens, webhook secrets, signing keys.

use std::fmt;

/// A secret string. `Debug` and `Display` hide it, so it cannot end up in a log line or an
/// error message; [`Secret::expose`] is the one way to its value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret, without the white space around it (files end with a newline).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    /// The value itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`: answers from outside
    /// (an error page, a proxy) may echo a request, token included.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_and_is_scrubbed_from_text() {
        let s = Secret::new(" ghp_secret\n");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "ghp_secret");
        assert_eq!(
            s.scrub("Bearer ghp_secret, again ghp_secret"),
            "Bearer ***, again ***"
        );
        assert_eq!(Secret::new("").scrub("text"), "text");
    }
}
