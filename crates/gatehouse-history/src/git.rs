//! Every call gatehouse makes to git: the one place that runs it, for the ledger's history
//! (this crate), `apply`'s commit of the ledger and its look-up of where each request came
//! from (`gatehouse-apply`). Each function runs `git -C DIR ...` and says what git answered
//! when it fails.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// `git -C dir ARGS`, whatever its exit status.
pub fn run(dir: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")
}

/// `git log ARGS` in `dir`: its output, or an error with what git said.
pub fn log(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let log = run(dir, &[&["log"], args].concat())?;
    if !log.status.success() {
        bail!(
            "git log failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&log.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&log.stdout).into_owned())
}

/// The contents of each object (a blob id) through one `git cat-file --batch`; `None` for a
/// missing one.
pub fn cat_files(dir: &Path, names: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    use std::io::{BufRead, BufReader, Read, Write};
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running git cat-file (is git installed?)")?;
    let mut stdin = child.stdin.take().context("git cat-file has no input")?;
    let input: Vec<u8> = names
        .iter()
        .flat_map(|n| format!("{n}\n").into_bytes())
        .collect();
    // Written from another thread: git answers as it reads, and a full pipe would block both.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = BufReader::new(child.stdout.take().context("git cat-file has no output")?);
    let mut results = Vec::with_capacity(names.len());
    let mut line = String::new();
    for _ in names {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            bail!("git cat-file stopped early in {}", dir.display());
        }
        // `<oid> blob <size>` then the bytes and a newline, or `<name> missing`.
        let mut parts = line.trim_end().rsplitn(3, ' ');
        let size = parts.next().and_then(|n| n.parse::<usize>().ok());
        match (size, parts.next()) {
            (Some(size), Some(_kind)) => {
                let mut bytes = vec![0; size + 1];
                out.read_exact(&mut bytes)?;
                bytes.pop();
                results.push(Some(bytes));
            }
            _ => results.push(None),
        }
    }
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writing to git cat-file panicked"))?
        .context("writing to git cat-file")?;
    child.wait()?;
    Ok(results)
}

/// Whether `dir` is inside a git work tree.
pub fn is_checkout(dir: &Path) -> bool {
    run(dir, &["rev-parse", "--is-inside-work-tree"])
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"true"))
}

/// Fails unless `dir` is inside a git work tree: the ledger is recorded by a commit.
pub fn toplevel(dir: &Path) -> anyhow::Result<()> {
    let out = run(dir, &["rev-parse", "--show-toplevel"])?;
    if !out.status.success() {
        bail!(
            "{} is not a git repository; apply records every ledger change in a commit. \
             Run it in a clone of the access repository. Nothing was changed",
            dir.display()
        );
    }
    Ok(())
}

/// Commits what changed in `grants/`, `people/` (`tos.yml`, accepted with a request) and
/// `requests/` (nothing else); the new commit's id, or `None` when there was nothing to commit.
pub fn commit(dir: &Path, message: &str) -> anyhow::Result<Option<String>> {
    let paths: Vec<&str> = ["grants", "people", "requests"]
        .into_iter()
        .filter(|p| dir.join(p).is_dir())
        .collect();
    if paths.is_empty() {
        return Ok(None);
    }
    let checked = |args: &[&str]| -> anyhow::Result<std::process::Output> {
        let out = run(dir, args)?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    };
    let mut add = vec!["add", "-A", "--"];
    add.extend(&paths);
    checked(&add)?;
    // Only paths with staged changes: git refuses a path it has never tracked (an empty
    // `requests/`).
    let mut changed = Vec::new();
    for p in paths {
        if !run(dir, &["diff", "--cached", "--quiet", "--", p])?
            .status
            .success()
        {
            changed.push(p);
        }
    }
    if changed.is_empty() {
        return Ok(None);
    }
    // CI checkouts often have no identity configured; a commit must not fail for that.
    let mut args: Vec<&str> = Vec::new();
    if !run(dir, &["var", "GIT_COMMITTER_IDENT"])?.status.success() {
        args.extend([
            "-c",
            "user.name=gatehouse",
            "-c",
            "user.email=gatehouse@localhost",
        ]);
    }
    args.extend(["commit", "-q", "-m", message, "--"]);
    args.extend(&changed);
    checked(&args)?;
    let sha = checked(&["rev-parse", "--short", "HEAD"])?;
    Ok(Some(
        String::from_utf8_lossy(&sha.stdout).trim().to_string(),
    ))
}

/// Request path -> the last commit that touched it; paths with uncommitted changes are left out.
pub fn last_commits(dir: &Path) -> anyhow::Result<HashMap<String, String>> {
    let log = run(
        dir,
        &["log", "--format=commit %H", "--name-only", "--", "requests"],
    )?;
    if !log.status.success() {
        bail!(
            "git log failed: {}",
            String::from_utf8_lossy(&log.stderr).trim()
        );
    }
    let mut out = HashMap::new();
    let mut sha = String::new();
    for line in String::from_utf8_lossy(&log.stdout).lines() {
        if let Some(s) = line.strip_prefix("commit ") {
            sha = s.trim().to_string();
        } else if !line.trim().is_empty() && !sha.is_empty() {
            out.entry(line.trim().to_string())
                .or_insert_with(|| sha.clone());
        }
    }
    let status = run(
        dir,
        &[
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            "requests",
        ],
    )?;
    for line in String::from_utf8_lossy(&status.stdout).lines() {
        if let Some(path) = line.get(3..) {
            out.remove(path.trim());
        }
    }
    Ok(out)
}

/// The files under `paths` as they were at commit `sha`: path -> contents; `None` when the
/// commit is not in the clone (a shallow checkout).
pub fn files_at(
    dir: &Path,
    sha: &str,
    paths: &[&str],
) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
    let exists = run(dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")])?;
    if !exists.status.success() {
        return Ok(None);
    }
    let mut args = vec!["ls-tree", "-r", "-z", "--name-only", sha, "--"];
    args.extend_from_slice(paths);
    let listed = run(dir, &args)?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for path in String::from_utf8_lossy(&listed.stdout).split('\0') {
        if path.is_empty() {
            continue;
        }
        let shown = run(dir, &["show", &format!("{sha}:{path}")])?;
        if !shown.status.success() {
            bail!(
                "reading {path} at {}: git show failed",
                sha.get(..7).unwrap_or(sha)
            );
        }
        files.insert(path.to_string(), shown.stdout);
    }
    Ok(Some(files))
}
