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

/// The routing key of a runs-on label: everything from the first `--` dropped (providers ignore
/// that suffix; conda-forge generates labels like `cirun-openstack-gpu-large--8075232475-linux_64`),
/// then lower-cased.
pub fn label_key(label: &str) -> String {
    let base = match label.find("--") {
        Some(i) => &label[..i],
        None => label,
    };
    base.trim().to_ascii_lowercase()
}

/// True for the labels every runner carries (`self-hosted`, `linux`, ...).
pub fn is_generic_label(label: &str) -> bool {
    let key = label_key(label);
    GENERIC_LABELS.iter().any(|g| *g == key)
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
}
