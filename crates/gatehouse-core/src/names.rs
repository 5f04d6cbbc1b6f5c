//! Names: projects, labels and logins, and the rules that compare them.

/// The longest project name accepted (GitHub's limit for repository names).
pub const MAX_PROJECT_NAME: usize = 100;

/// Labels that every self-hosted runner carries; they never route a job to a resource by
/// themselves, and a resource may not claim them.
pub const GENERIC_LABELS: &[&str] = &["self-hosted", "linux", "x64", "windows", "macos", "arm64"];

/// Why a project name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_PROJECT_NAME} characters")]
    TooLong,
    #[error("must start with a letter or digit")]
    BadStart,
    #[error("may contain only letters, digits, '.', '_' and '-'")]
    BadChar,
}

/// Checks a project name against `^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`.
///
/// The pattern rules out path separators, so a name can be used as a file name; `..` is ruled
/// out by the first character.
pub fn validate_project_name(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let first = chars.next().ok_or(NameError::Empty)?;
    if name.len() > MAX_PROJECT_NAME {
        return Err(NameError::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::BadStart);
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(NameError::BadChar);
    }
    Ok(())
}

/// The routing key of a runs-on label: the label up to its first `--` or its first `;`
/// (see [`label_key_end`]), without surrounding white space, lower-cased. Resource labels and
/// job labels are compared by this key.
pub fn label_key(label: &str) -> String {
    label[..label_key_end(label.as_bytes())]
        .trim()
        .to_ascii_lowercase()
}

/// Where the routing part of a label ends: at the first `--` (providers ignore what follows;
/// conda-forge generates labels like `cirun-openstack-gpu-large--8075232475-linux_64`) or the
/// first `;` (Namespace's runner options, as in
/// `namespace-profile-16cpu-on-linux-64;container.privileged=true`), whichever comes first;
/// the label's length when it has neither. Both are ASCII, so the offset is a char boundary.
///
/// The guard runs this on every label of every job, so it looks at eight bytes at a time: the
/// plain statement of the rule is the test below.
#[inline]
pub fn label_key_end(label: &[u8]) -> usize {
    let n = label.len();
    if n < 8 {
        let mut i = 0;
        while i < n {
            match label[i] {
                b';' => return i,
                b'-' if label.get(i + 1) == Some(&b'-') => return i,
                _ => {}
            }
            i += 1;
        }
        return n;
    }
    let mut next = 0;
    loop {
        // The last window ends at the label's end and may overlap the one before it.
        let at = next.min(n - 8);
        let mut word = [0u8; 8];
        word.copy_from_slice(&label[at..at + 8]);
        let word = u64::from_le_bytes(word);
        let dash = bytes_equal_to(word, b'-');
        // Byte k starts a `--` when bytes k and k + 1 are both dashes.
        let cut = bytes_equal_to(word, b';') | (dash & (dash >> 8));
        // A `--` that spans two windows.
        if at > 0 && dash & 0x80 != 0 && label[at - 1] == b'-' {
            return at - 1;
        }
        if cut != 0 {
            return at + (cut.trailing_zeros() / 8) as usize;
        }
        if at + 8 >= n {
            return n;
        }
        next = at + 8;
    }
}

/// The high bit of every byte of `word` that equals `byte`, and no other bit. (The usual
/// `(x - 0x01..) & !x` test can also flag the byte after a match; this one cannot.)
#[inline(always)]
fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    !(((x & LOW7) + LOW7) | x) & !LOW7
}

/// True for the labels every runner carries (`self-hosted`, `linux`, ...).
pub fn is_generic_label(label: &str) -> bool {
    let key = label_key(label);
    GENERIC_LABELS.iter().any(|g| *g == key)
}

/// The beginnings of the labels GitHub's own hosted runners answer to (`ubuntu-latest`,
/// `windows-2022`, `macos-14`, ...). A job asking for one runs on GitHub's machines, or on any
/// runner of the organisation that carries the label: a resource may not claim them.
pub const HOSTED_LABEL_PREFIXES: &[&str] = &["ubuntu-", "windows-", "macos-"];

/// True when a routing key (lower-cased, as [`label_key`] gives it) is a label of GitHub's
/// hosted runners.
pub fn is_hosted_runner_key(key: &[u8]) -> bool {
    HOSTED_LABEL_PREFIXES
        .iter()
        .any(|p| key.starts_with(p.as_bytes()))
}

/// True when a routing key (lower-cased) never selects a resource: a generic label or a label
/// of GitHub's hosted runners, whatever label or pattern a resource lists.
pub fn never_routes(key: &[u8]) -> bool {
    GENERIC_LABELS.iter().any(|g| g.as_bytes() == key) || is_hosted_runner_key(key)
}

/// Why a resource label with a `*` is not a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("is `*` alone, which would route every label of every job")]
    Bare,
    #[error("has more than one `*`")]
    Several,
    #[error("has a `*` that is not its last character")]
    NotAtEnd,
}

/// A resource label's routing key (from [`label_key`]) as a pattern: `Ok(Some(prefix))` when it
/// ends in its only `*` (`namespace-profile-*` stands for every label whose key starts with
/// `namespace-profile-`, so one resource serves a provider's whole family of labels),
/// `Ok(None)` when it has no `*`. A key with a misplaced `*` is an error, which `check`
/// reports; routing then compares it as written.
pub fn label_pattern(key: &str) -> Result<Option<&str>, PatternError> {
    let Some(star) = key.find('*') else {
        return Ok(None);
    };
    if key == "*" {
        Err(PatternError::Bare)
    } else if key[star + 1..].contains('*') {
        Err(PatternError::Several)
    } else if star + 1 != key.len() {
        Err(PatternError::NotAtEnd)
    } else {
        Ok(Some(&key[..star]))
    }
}

/// Whether some label can match both patterns (given by their prefixes): exactly when one
/// prefix starts with the other.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// GitHub logins compare case-insensitively.
pub fn login_key(login: &str) -> String {
    login.to_ascii_lowercase()
}

/// Project names compare case-insensitively, as GitHub's repository names do: `PyTorch-CPU`
/// and `pytorch-cpu` are one project, with one grant file.
pub fn project_key(project: &str) -> String {
    project.to_ascii_lowercase()
}

/// Whether two project names are one project ([`project_key`] without the allocation).
pub fn same_project(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_the_pattern() {
        for ok in [
            "pytorch-cpu",
            "a",
            "0ad",
            "ray.packages",
            "x_y",
            &"a".repeat(100),
        ] {
            assert_eq!(validate_project_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_project_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_project_name("../../etc/passwd"),
            Err(NameError::BadStart)
        );
        assert_eq!(validate_project_name(".."), Err(NameError::BadStart));
        assert_eq!(validate_project_name("a/b"), Err(NameError::BadChar));
        assert_eq!(validate_project_name("a b"), Err(NameError::BadChar));
        assert_eq!(validate_project_name("naïve"), Err(NameError::BadChar));
        assert_eq!(
            validate_project_name(&"a".repeat(101)),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn labels_route_by_their_prefix_case_insensitively() {
        assert_eq!(
            label_key("cirun-openstack-gpu-large--8075232475-linux_64"),
            "cirun-openstack-gpu-large"
        );
        assert_eq!(
            label_key("Cirun-OpenStack-GPU-Large"),
            "cirun-openstack-gpu-large"
        );
        assert_eq!(label_key("a--b--c"), "a");
        assert!(is_generic_label("Self-Hosted"));
        assert!(!is_generic_label("cirun-openstack-gpu-large"));
    }

    #[test]
    fn namespace_options_after_a_semicolon_do_not_route() {
        // conda-forge/pytorch-cpu-feedstock's .github/workflows/conda-build.yml (2026-06).
        assert_eq!(
            label_key(
                "namespace-profile-16cpu-on-linux-64;container.privileged=true;container.mount-scratch=true"
            ),
            "namespace-profile-16cpu-on-linux-64"
        );
        assert_eq!(label_key("A;b--c"), "a");
        assert_eq!(label_key("a--b;c"), "a");
        assert_eq!(label_key(";x"), "");
    }

    /// The fast scan against the plain statement of the rule, on every string of up to 10
    /// bytes over an alphabet that makes every case (and every window boundary) happen.
    #[test]
    fn the_key_ends_at_the_first_double_dash_or_semicolon() {
        let plain = |s: &[u8]| {
            let dash = s.windows(2).position(|w| w == b"--").unwrap_or(s.len());
            let semi = s.iter().position(|b| *b == b';').unwrap_or(s.len());
            dash.min(semi)
        };
        let alphabet = [b'-', b';', b'a', b','];
        let mut s = Vec::new();
        for len in 0..=10u32 {
            for n in 0..4usize.pow(len) {
                s.clear();
                let mut n = n;
                for _ in 0..len {
                    s.push(alphabet[n % 4]);
                    n /= 4;
                }
                assert_eq!(
                    label_key_end(&s),
                    plain(&s),
                    "{:?}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        for long in [
            "gen-gpu-0003--8075232475-linux_64",
            "namespace-profile-16cpu-on-linux-64;container.privileged=true",
            "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z",
            "abcdefg--",
            "abcdefghijklmno-",
            "abcdefghijklmnop-;",
            "ünïcödé-label-ẞ--x",
        ] {
            assert_eq!(
                label_key_end(long.as_bytes()),
                plain(long.as_bytes()),
                "{long}"
            );
        }
    }

    #[test]
    fn a_trailing_star_makes_a_pattern() {
        assert_eq!(
            label_pattern("namespace-profile-*"),
            Ok(Some("namespace-profile-"))
        );
        assert_eq!(label_pattern("depot-ubuntu"), Ok(None));
        assert_eq!(label_pattern("*"), Err(PatternError::Bare));
        assert_eq!(label_pattern("a*b"), Err(PatternError::NotAtEnd));
        assert_eq!(label_pattern("a**"), Err(PatternError::Several));
        assert_eq!(label_pattern("*a*"), Err(PatternError::Several));
        assert!(patterns_overlap("depot-", "depot-ubuntu-"));
        assert!(!patterns_overlap("depot-", "blacksmith-"));
    }

    #[test]
    fn generic_and_hosted_runner_labels_never_route() {
        for key in [
            "self-hosted",
            "linux",
            "ubuntu-latest",
            "windows-2022",
            "macos-14",
        ] {
            assert!(never_routes(key.as_bytes()), "{key}");
        }
        for key in [
            "cirun-azure-windows-2xlarge",
            "blacksmith-4vcpu-ubuntu-2204",
            "ubuntu",
        ] {
            assert!(!never_routes(key.as_bytes()), "{key}");
        }
    }
}
