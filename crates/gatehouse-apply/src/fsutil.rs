//! Writing files safely: every file is written to a temporary sibling and renamed into place,
//! so a crash never leaves half a file; a set of files is checked for conflicts before the
//! first one is written.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};

/// Writes `contents` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    // A temporary file is private (0600); the file it becomes keeps the mode of the one it
    // replaces, or gets the usual 0644.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    tmp.write_all(contents)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("moving the new {} into place", path.display()))?;
    Ok(())
}

/// Joins a relative, `/`-separated path onto `root`, refusing anything that could leave it.
pub fn safe_join(root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("refusing to write `{rel}`: not a plain relative path inside the repository");
    }
    Ok(root.join(p))
}

/// Writes every file under `root`. Unless `force`, fails before writing anything when one of
/// them exists already.
pub fn write_tree(root: &Path, files: &[(String, Vec<u8>)], force: bool) -> anyhow::Result<()> {
    let mut targets = Vec::with_capacity(files.len());
    let mut existing = Vec::new();
    for (rel, _) in files {
        let path = safe_join(root, rel)?;
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_symlink() {
                bail!(
                    "refusing to write through the symbolic link {}",
                    path.display()
                );
            }
            existing.push(rel.clone());
        }
        targets.push(path);
    }
    if !force && !existing.is_empty() {
        let shown: Vec<&str> = existing.iter().take(5).map(String::as_str).collect();
        bail!(
            "{} file(s) already exist in {} ({}{}); nothing was written. Pass --force to overwrite them",
            existing.len(),
            root.display(),
            shown.join(", "),
            if existing.len() > 5 { ", ..." } else { "" }
        );
    }
    for (path, (_, contents)) in targets.iter().zip(files) {
        write_atomic(path, contents)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn written_files_are_readable_and_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.yml");
        write_atomic(&new, b"x").unwrap();
        assert_eq!(
            std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&new, b"y").unwrap();
        assert_eq!(
            std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        let root = Path::new("/tmp/x");
        assert!(safe_join(root, "grants/a.yml").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "grants/../../x", "", "./a"] {
            assert!(safe_join(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_conflict_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "old").unwrap();
        let files = vec![
            ("a.yml".to_string(), b"new a".to_vec()),
            ("b.yml".to_string(), b"new b".to_vec()),
        ];
        let err = write_tree(dir.path(), &files, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(!dir.path().join("a.yml").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.yml")).unwrap(),
            "old"
        );
        write_tree(dir.path(), &files, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.yml")).unwrap(),
            "new b"
        );
    }
}
