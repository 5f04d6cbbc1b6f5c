//! The access repository as loaded: every file parsed, or a diagnostic saying why not.
//!
//! [`Repo::from_sources`] is pure (it takes file names and bytes); [`load_dir`] is the edge that
//! reads a directory. A file that fails to parse is left out of the model and reported; the rest
//! of the repository is still loaded, so `check` shows every problem at once.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use jiff::civil::Date;

use crate::model::{
    Grant, GrantFile, GrantUser, Pool, Request, RequestFile, Resource, Settings, TosList,
};
use crate::names::same_project;
use crate::parse::{MAX_FILE_BYTES, MAX_TOS_BYTES, parse_yaml, parse_yaml_limited};
use crate::span::{Span, Spanned};

pub const SETTINGS_FILE: &str = "gatehouse.yml";
pub const TOS_FILE: &str = "people/tos.yml";
pub const RESOURCES_DIR: &str = "resources";
pub const GRANTS_DIR: &str = "grants";
pub const REQUESTS_DIR: &str = "requests";
pub const POOLS_DIR: &str = "pools";
/// Read so that `check` can tell when it no longer matches `gatehouse ci codeowners`.
pub const CODEOWNERS_FILE: &str = ".github/CODEOWNERS";

/// A parsed file and the path it came from (relative to the repository, `/`-separated).
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub path: String,
    pub value: T,
}

impl<T> Loaded<T> {
    /// The file name without directory and extension.
    pub fn stem(&self) -> &str {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        name.rsplit_once('.').map_or(name, |(stem, _)| stem)
    }
}

/// A request file and, when it could be understood, its normalised form.
#[derive(Clone, Debug)]
pub struct RequestEntry {
    pub file: RequestFile,
    pub request: Option<Request>,
}

#[derive(Clone, Debug, Default)]
pub struct Repo {
    pub settings: Option<Loaded<Settings>>,
    pub resources: Vec<Loaded<Resource>>,
    pub grants: Vec<Loaded<GrantFile>>,
    pub requests: Vec<Loaded<RequestEntry>>,
    /// Sponsor credit pools, `pools/<name>.yml`.
    pub pools: Vec<Loaded<Pool>>,
    pub tos: Option<Loaded<TosList>>,
    /// `.github/CODEOWNERS`, as text, when present.
    pub codeowners: Option<Loaded<String>>,
    /// Files that could not be read or parsed.
    pub load_errors: Diagnostics,
}

/// What kind of file a repository path holds, judged by where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Settings,
    Resource,
    Grant,
    Request,
    Pool,
    Tos,
    Codeowners,
}

fn kind_of(path: &str) -> Option<FileKind> {
    if path == SETTINGS_FILE {
        return Some(FileKind::Settings);
    }
    if path == TOS_FILE {
        return Some(FileKind::Tos);
    }
    if path == CODEOWNERS_FILE {
        return Some(FileKind::Codeowners);
    }
    let (dir, name) = path.split_once('/')?;
    if name.contains('/') {
        return None;
    }
    // A grant file is `grants/<project>.yml` and nothing else: `apply` writes that name, so a
    // `.yaml` grant file would be a second ledger for its project that no revoke empties.
    let yml = name.ends_with(".yml");
    match dir {
        GRANTS_DIR if yml => Some(FileKind::Grant),
        RESOURCES_DIR if yml || name.ends_with(".yaml") => Some(FileKind::Resource),
        REQUESTS_DIR if yml || name.ends_with(".yaml") => Some(FileKind::Request),
        POOLS_DIR if yml || name.ends_with(".yaml") => Some(FileKind::Pool),
        _ => None,
    }
}

/// The `grant-file-name` error for `path` (a `folder` when it is one) when it lies in `grants/`
/// but is not a grant file. Such a file is not read, so it grants nothing; it is refused rather
/// than passed over because whoever put it there meant it as a grant. Hidden names are no
/// project's file (a project name starts with a letter or digit) and are passed over:
/// `.gitkeep`, and the temporary file of an interrupted `apply`, which the next run removes.
fn not_a_grant_file(path: &str, folder: bool) -> Option<Diagnostic> {
    let name = path.strip_prefix(GRANTS_DIR)?.strip_prefix('/')?;
    if name.starts_with('.') || (!folder && kind_of(path).is_some()) {
        return None;
    }
    let help = if folder {
        "grant files sit directly in `grants/`: move those in this folder to \
         `grants/<project>.yml`, and the folder out of `grants/`"
            .to_string()
    } else if name.contains('/') {
        "a grant file sits directly in `grants/`: move it to `grants/<project>.yml`".to_string()
    } else if let Some(stem) = name.strip_suffix(".yaml") {
        format!("rename it to `{GRANTS_DIR}/{stem}.yml` (a grant file is `grants/<project>.yml`)")
    } else {
        "a grant file is `grants/<project>.yml`: rename it so, or move it out of `grants/`"
            .to_string()
    };
    Some(
        Diagnostic::error(
            "grant-file-name",
            path,
            Span::UNKNOWN,
            format!(
                "`{path}` is not read as a grant: `grants/` holds only files named `<project>.yml`"
            ),
        )
        .with_help(help),
    )
}

impl Repo {
    /// For tests: a repository of `settings` (its `gatehouse.yml`) and `resources` (each a
    /// name and the rest of its file), which must load without an error.
    #[cfg(test)]
    pub(crate) fn of_resources(settings: &str, resources: &[(&str, &str)]) -> Repo {
        let mut files: Vec<(String, String)> = vec![("gatehouse.yml".into(), settings.into())];
        for (name, body) in resources {
            files.push((
                format!("resources/{name}.yml"),
                format!("name: {name}\n{body}"),
            ));
        }
        let repo = Repo::from_sources(files);
        assert!(repo.load_errors.is_empty(), "{:#?}", repo.load_errors);
        repo
    }

    /// Builds the repository from `(path, contents)` pairs. Paths that are not part of the
    /// access repository's layout are ignored, except in `grants/`, where anything but a grant
    /// file is reported (`grant-file-name`).
    pub fn from_sources<P, B>(sources: impl IntoIterator<Item = (P, B)>) -> Repo
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let mut repo = Repo::default();
        for (path, bytes) in sources {
            repo.add_source(path.as_ref(), bytes.as_ref());
        }
        repo.sort();
        repo
    }

    fn add_source(&mut self, path: &str, bytes: &[u8]) {
        let Some(kind) = kind_of(path) else {
            if let Some(d) = not_a_grant_file(path, false) {
                self.load_errors.push(d);
            }
            return;
        };
        let path = path.to_string();
        if matches!(kind, FileKind::Request)
            && let Some(action) = other_admin_action(bytes)
        {
            self.load_errors.push(
                Diagnostic::warning(
                    "not-an-access-request",
                    path.as_str(),
                    action.span,
                    format!(
                        "`action: {}` is not an access request; gatehouse leaves this file to admin-requests' own tools",
                        action.value
                    ),
                )
                .with_help(format!(
                    "access requests use `action: grant|revoke|renew` or one of {}",
                    crate::model::ADMIN_ACTIONS.join(", ")
                )),
            );
            return;
        }
        let result = match kind {
            FileKind::Settings => parse_yaml::<Settings>(&path, bytes).map(|value| {
                self.settings = Some(Loaded { path, value });
            }),
            FileKind::Resource => parse_yaml::<Resource>(&path, bytes).map(|value| {
                self.resources.push(Loaded { path, value });
            }),
            FileKind::Grant => parse_yaml::<GrantFile>(&path, bytes).map(|value| {
                self.grants.push(Loaded { path, value });
            }),
            FileKind::Pool => parse_yaml::<Pool>(&path, bytes).map(|value| {
                self.pools.push(Loaded { path, value });
            }),
            FileKind::Tos => {
                parse_yaml_limited::<TosList>(&path, bytes, MAX_TOS_BYTES).map(|value| {
                    self.tos = Some(Loaded { path, value });
                })
            }
            FileKind::Codeowners => match String::from_utf8(bytes.to_vec()) {
                Ok(value) => {
                    self.codeowners = Some(Loaded { path, value });
                    Ok(())
                }
                Err(_) => Err(Diagnostic::error(
                    "not-utf8",
                    path.as_str(),
                    Span::UNKNOWN,
                    "file is not valid UTF-8",
                )
                .with_help("regenerate it with `gatehouse ci codeowners`")),
            },
            FileKind::Request => parse_yaml::<RequestFile>(&path, bytes).map(|file| {
                let request = match file.normalize() {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.load_errors.push(
                            Diagnostic::error("invalid-request", path.as_str(), e.span, e.message)
                                .with_help(e.help),
                        );
                        None
                    }
                };
                self.requests.push(Loaded {
                    path,
                    value: RequestEntry { file, request },
                });
            }),
        };
        if let Err(d) = result {
            self.load_errors.push(d);
        }
    }

    fn sort(&mut self) {
        self.resources.sort_by(|a, b| a.path.cmp(&b.path));
        self.grants.sort_by(|a, b| a.path.cmp(&b.path));
        self.requests.sort_by(|a, b| a.path.cmp(&b.path));
        self.pools.sort_by(|a, b| a.path.cmp(&b.path));
    }

    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .map(|r| &r.value)
            .find(|r| r.name.value == name)
    }

    /// The longest a job of resource `name` may run, in minutes (its `max_job_minutes`).
    pub fn max_job_minutes(&self, name: &str) -> Option<u32> {
        self.resource(name)?
            .max_job_minutes
            .as_ref()
            .map(|m| m.value)
    }

    /// The account id a grant's user entry stands for: the one it writes out, or the one
    /// `people/tos.yml` gives its login (compared ignoring case). `None`: nothing resolves it,
    /// and it matches nobody.
    pub fn account_of(&self, user: &GrantUser) -> Option<i64> {
        if let Some(id) = user.id() {
            return Some(id);
        }
        let login = user.login();
        self.tos
            .iter()
            .flat_map(|t| t.value.iter())
            .find(|e| e.github.eq_ignore_ascii_case(login))
            .map(|e| e.id.value.0)
    }

    /// The grant file of `project`, whatever the case it is spelled in ([`same_project`]); the
    /// first in path order when `check` would find two (`duplicate-project`).
    pub fn grant_file(&self, project: &str) -> Option<&Loaded<GrantFile>> {
        self.grants
            .iter()
            .find(|f| same_project(&f.value.project, project))
    }

    /// Every grant in force on `today` ([`Grant::is_active`]), with the file that holds it,
    /// in file order.
    pub fn active_grants(&self, today: Date) -> impl Iterator<Item = (&GrantFile, &Grant)> {
        self.grants.iter().flat_map(move |f| {
            f.value
                .grants
                .iter()
                .filter(move |g| g.is_active(today))
                .map(move |g| (&f.value, g))
        })
    }
}

/// Why a directory could not be read as an access repository at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read the access repository")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a directory; pass the access repository's top folder")]
    NotADirectory(PathBuf),
}

/// Reads the access repository at `root`.
///
/// Only regular files are read: a symbolic link anywhere in the layout is reported and skipped,
/// so no file can make gatehouse read outside the repository. Files over 1 MiB are reported
/// without being read in full.
pub fn load_dir(root: &Path) -> Result<Repo, LoadError> {
    let io = |path: &Path, source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(root).map_err(|e| io(root, e))?;
    if !meta.is_dir() {
        return Err(LoadError::NotADirectory(root.to_path_buf()));
    }
    let mut sources: Vec<(String, Vec<u8>)> = Vec::new();
    let mut errors = Diagnostics::new();

    let mut candidates: Vec<String> = vec![
        SETTINGS_FILE.into(),
        TOS_FILE.into(),
        CODEOWNERS_FILE.into(),
    ];
    for dir in [RESOURCES_DIR, GRANTS_DIR, REQUESTS_DIR, POOLS_DIR] {
        let full = root.join(dir);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                errors.push(symlink_error(dir));
                continue;
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                errors.push(Diagnostic::error(
                    "not-a-directory",
                    dir,
                    Span::UNKNOWN,
                    format!("`{dir}` must be a directory"),
                ));
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&full, e)),
        }
        for entry in fs::read_dir(&full).map_err(|e| io(&full, e))? {
            let entry = entry.map_err(|e| io(&full, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                errors.push(Diagnostic::error(
                    "bad-file-name",
                    dir,
                    Span::UNKNOWN,
                    format!("a file name in `{dir}` is not valid UTF-8"),
                ));
                continue;
            };
            let path = format!("{dir}/{name}");
            if kind_of(&path).is_some() {
                candidates.push(path);
            } else {
                let folder = entry.file_type().is_ok_and(|t| t.is_dir());
                if let Some(d) = not_a_grant_file(&path, folder) {
                    errors.push(d);
                }
            }
        }
    }

    for rel in candidates {
        // A linked folder (`people/` pointing elsewhere) is as much an escape as a linked file.
        if let Some(problem) = parent_problem(root, &rel) {
            errors.push(problem);
            continue;
        }
        let full = root.join(&rel);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&full, e)),
        };
        if meta.file_type().is_symlink() {
            errors.push(symlink_error(&rel));
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let limit = if rel == TOS_FILE {
            MAX_TOS_BYTES
        } else {
            MAX_FILE_BYTES
        };
        if meta.len() > limit as u64 {
            errors.push(
                Diagnostic::error(
                    "file-too-large",
                    rel.as_str(),
                    Span::UNKNOWN,
                    format!(
                        "file is {} bytes; the limit is {limit} bytes ({} MiB)",
                        meta.len(),
                        limit / (1024 * 1024)
                    ),
                )
                .with_help("split it, or remove what does not belong in the access repository"),
            );
            continue;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        fs::File::open(&full)
            .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| io(&full, e))?;
        sources.push((rel, bytes));
    }

    let mut repo = Repo::from_sources(sources);
    repo.load_errors.extend(errors);
    Ok(repo)
}

/// A folder on the way to `rel` (inside `root`) that is a symbolic link or not a folder.
fn parent_problem(root: &Path, rel: &str) -> Option<Diagnostic> {
    let mut prefix = String::new();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        match fs::symlink_metadata(root.join(&prefix)) {
            Ok(m) if m.file_type().is_symlink() => return Some(symlink_error(&prefix)),
            Ok(m) if !m.is_dir() => {
                return Some(Diagnostic::error(
                    "not-a-directory",
                    prefix.as_str(),
                    Span::UNKNOWN,
                    format!("`{prefix}` must be a directory"),
                ));
            }
            _ => {}
        }
    }
    None
}

fn symlink_error(path: &str) -> Diagnostic {
    Diagnostic::error(
        "symlink",
        path,
        Span::UNKNOWN,
        "is a symbolic link; gatehouse reads only regular files, so that no file can point outside the repository",
    )
    .with_help("replace the link with the file itself")
}

/// The `action` of a request file when it is one of admin-requests' other actions
/// ([`crate::model::OTHER_ADMIN_ACTIONS`]); `None` for anything else, which is read as a request.
fn other_admin_action(bytes: &[u8]) -> Option<Spanned<String>> {
    let file = parse_yaml::<crate::model::ActionOnly>("", bytes).ok()?;
    file.action
        .filter(|a| crate::model::OTHER_ADMIN_ACTIONS.contains(&a.as_str()))
}
