//! Small, line-based edits of YAML text: add or remove one item of a top-level list, set or
//! remove one child of a top-level mapping.
//!
//! Used on other people's files (a project's `recipe/conda_build_config.yaml` and
//! `conda-forge.yml`), where a pull request must change only what it says: comments, key order,
//! quoting and conda-build's `# [linux]` selectors all stay as they were. Re-serialising the
//! document would lose them. So this only understands the plain block shapes these files use,
//! and refuses (with an error saying why) anything it could get wrong, such as a key that
//! appears twice under different selectors.
//!
//! Every edit returns `Ok(None)` when the text already says what is asked: no change, no
//! pull request.

use anyhow::{Context, bail};

/// A document as lines, remembering whether it ended with a newline and used CRLF.
struct Doc {
    lines: Vec<String>,
    crlf: bool,
}

impl Doc {
    fn parse(text: &str) -> Doc {
        let crlf = text.contains("\r\n");
        let mut lines: Vec<String> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .collect();
        // `a\nb\n` splits into ["a", "b", ""]: the last empty piece is the final newline.
        if lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        Doc { lines, crlf }
    }

    /// The text, always ending with a newline (the edited files are line-based configs).
    fn render(&self) -> String {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push_str(eol);
        }
        out
    }

    /// The line of top-level `key`, if any; an error if it appears more than once.
    fn find_key(&self, key: &str) -> anyhow::Result<Option<usize>> {
        let found: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| key_of(l).is_some_and(|(k, _)| k == key))
            .map(|(i, _)| i)
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => bail!(
                "`{key}` appears {} times (lines {}), probably under different selectors; \
                 gatehouse does not guess which to change: edit it by hand",
                many.len(),
                many.iter()
                    .map(|i| (i + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The lines that belong to the value of the key on line `at`: from the next line up to
    /// the next line at the same or a lower indentation that is not a list item of the key,
    /// without trailing blank and comment lines (those belong to what follows).
    fn block(&self, at: usize) -> std::ops::Range<usize> {
        let base = indent(&self.lines[at]);
        let mut end = at + 1;
        let mut last = at + 1;
        while end < self.lines.len() {
            let line = &self.lines[end];
            if is_blank_or_comment(line) {
                end += 1;
                continue;
            }
            let i = indent(line);
            // A list may sit at the key's own indentation (`key:\n- a`).
            if i < base || (i == base && !line[i..].starts_with('-')) {
                break;
            }
            end += 1;
            last = end;
        }
        at + 1..last
    }

    /// Removes lines `range` (a whole entry); when that leaves two blank lines in a row where
    /// the entry was, one goes too.
    fn remove_entry(&mut self, range: std::ops::Range<usize>) {
        let at = range.start;
        self.lines.drain(range);
        let blank = |l: Option<&String>| l.is_some_and(|l| l.trim().is_empty());
        if at > 0 && blank(self.lines.get(at - 1)) && blank(self.lines.get(at)) {
            self.lines.remove(at);
        }
    }

    /// The indentation of the block's entries (its least indented non-comment line).
    fn block_indent(&self, block: &std::ops::Range<usize>) -> Option<usize> {
        self.lines[block.clone()]
            .iter()
            .filter(|l| !is_blank_or_comment(l))
            .map(|l| indent(l))
            .min()
    }
}

/// `key` and the rest of the line, for a line that starts a mapping entry at column 0.
fn key_of(line: &str) -> Option<(&str, &str)> {
    child_key_of(line, 0)
}

/// The same at indentation `at`.
fn child_key_of(line: &str, at: usize) -> Option<(&str, &str)> {
    if indent(line) != at {
        return None;
    }
    let body = &line[at..];
    if body.starts_with(['-', '#', '"', '\'', '[', '{']) {
        return None;
    }
    let colon = body.find(':')?;
    let key = &body[..colon];
    let rest = &body[colon + 1..];
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (valid && (rest.is_empty() || rest.starts_with([' ', '\t']))).then_some((key, rest))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// Splits `value  # comment` into the value and the comment (with its `#`, without the space
/// before it). A `#` only starts a comment after whitespace and outside quotes.
fn split_comment(text: &str) -> (&str, Option<&str>) {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return (text[..i].trim(), Some(&text[i..])),
            _ => {}
        }
        prev_space = c == ' ' || c == '\t';
    }
    (text.trim(), None)
}

/// A plain or quoted scalar's text; `None` for anything else (a nested list, a mapping).
fn scalar(value: &str) -> Option<&str> {
    let v = value.trim();
    if v.is_empty() || v.starts_with(['[', '{', '-', '&', '*', '!', '|', '>']) {
        return None;
    }
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return Some(&v[1..v.len() - 1]);
        }
    }
    Some(v)
}

/// The comment of the key line when it is a conda-build selector (`# [linux]`): a line
/// added under that key must carry it too, or it would dangle where the key is left out.
fn selector(comment: Option<&str>) -> Option<&str> {
    let c = comment?.trim_start_matches('#').trim();
    (c.starts_with('[') && c.ends_with(']')).then_some(comment?)
}

/// What the value on a key's own line is.
enum Inline<'a> {
    /// Nothing (or `null`, `~`): the value is the block below, if any.
    Block,
    FlowList(Vec<&'a str>),
    EmptyMap,
    Other(&'a str),
}

fn inline(rest: &str) -> Inline<'_> {
    let (value, _) = split_comment(rest);
    match value {
        "" | "~" | "null" => Inline::Block,
        "{}" => Inline::EmptyMap,
        v if v.starts_with('[') && v.ends_with(']') => {
            let inner = v[1..v.len() - 1].trim();
            if inner.is_empty() {
                Inline::FlowList(Vec::new())
            } else {
                Inline::FlowList(inner.split(',').map(str::trim).collect())
            }
        }
        v => Inline::Other(v),
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The scalar items of top-level list `key` (empty when the key is absent).
pub fn list_items(text: &str, key: &str) -> anyhow::Result<Vec<String>> {
    let doc = Doc::parse(text);
    let Some(at) = doc.find_key(key)? else {
        return Ok(Vec::new());
    };
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    match inline(rest) {
        Inline::FlowList(items) => Ok(items
            .into_iter()
            .filter_map(scalar)
            .map(str::to_string)
            .collect()),
        Inline::Block => {
            let block = doc.block(at);
            let item_indent = doc.block_indent(&block).unwrap_or(0);
            Ok(doc.lines[block]
                .iter()
                .filter(|l| indent(l) == item_indent && l[item_indent..].starts_with('-'))
                .filter_map(|l| {
                    let (v, _) = split_comment(l[item_indent + 1..].trim_start());
                    scalar(v).map(str::to_string)
                })
                .collect())
        }
        _ => bail!("`{key}` is not a list"),
    }
}

/// Adds `item` to top-level list `key`, creating the key at the end when it is absent.
pub fn add_list_item(text: &str, key: &str, item: &str) -> anyhow::Result<Option<String>> {
    if list_items(text, key)?.iter().any(|i| same(i, item)) {
        return Ok(None);
    }
    let mut doc = Doc::parse(text);
    let Some(at) = doc.find_key(key)? else {
        doc.lines.push(format!("{key}:"));
        doc.lines.push(format!("- {item}"));
        return Ok(Some(doc.render()));
    };
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    let (_, comment) = split_comment(rest);
    let selector = selector(comment).map(str::to_string);
    let comment = comment.map(str::to_string);
    match inline(rest) {
        Inline::FlowList(items) => {
            let mut items: Vec<String> = items.into_iter().map(str::to_string).collect();
            items.push(item.to_string());
            doc.lines[at] = format!(
                "{key}: [{}]{}",
                items.join(", "),
                comment.map_or(String::new(), |c| format!("  {c}"))
            );
        }
        Inline::Block => {
            let block = doc.block(at);
            let item_indent = doc.block_indent(&block).unwrap_or(0);
            // `key: ~` becomes `key:` now that it has items.
            doc.lines[at] = format!(
                "{key}:{}",
                comment.as_ref().map_or(String::new(), |c| format!("  {c}"))
            );
            let line = format!(
                "{}- {item}{}",
                " ".repeat(item_indent),
                selector.map_or(String::new(), |s| format!("  {s}"))
            );
            doc.lines.insert(block.end, line);
        }
        Inline::Other(v) => bail!(
            "`{key}` is `{v}`, not a list, so `{item}` cannot be added to it: edit it by hand"
        ),
        Inline::EmptyMap => bail!("`{key}` is a mapping, not a list: edit it by hand"),
    }
    Ok(Some(doc.render()))
}

/// Removes every `item` from top-level list `key`; the key goes too when no item is left.
pub fn remove_list_item(text: &str, key: &str, item: &str) -> anyhow::Result<Option<String>> {
    if !list_items(text, key)?.iter().any(|i| same(i, item)) {
        return Ok(None);
    }
    let mut doc = Doc::parse(text);
    let at = doc.find_key(key)?.context("the key was just found")?;
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    let (_, comment) = split_comment(rest);
    let comment = comment.map(str::to_string);
    match inline(rest) {
        Inline::FlowList(items) => {
            let kept: Vec<&str> = items
                .into_iter()
                .filter(|i| !scalar(i).is_some_and(|s| same(s, item)))
                .collect();
            if kept.is_empty() {
                doc.lines.remove(at);
            } else {
                doc.lines[at] = format!(
                    "{key}: [{}]{}",
                    kept.join(", "),
                    comment.map_or(String::new(), |c| format!("  {c}"))
                );
            }
        }
        Inline::Block => {
            let block = doc.block(at);
            let item_indent = doc.block_indent(&block).unwrap_or(0);
            let is_item = |l: &str| indent(l) == item_indent && l[item_indent..].starts_with('-');
            let is_target = |l: &str| {
                is_item(l) && {
                    let (v, _) = split_comment(l[item_indent + 1..].trim_start());
                    scalar(v).is_some_and(|s| same(s, item))
                }
            };
            let remaining = doc.lines[block.clone()]
                .iter()
                .filter(|l| is_item(l) && !is_target(l))
                .count();
            if remaining == 0 {
                doc.remove_entry(at..block.end);
            } else {
                let mut i = block.end;
                while i > block.start {
                    i -= 1;
                    if is_target(&doc.lines[i]) {
                        doc.lines.remove(i);
                    }
                }
            }
        }
        _ => bail!("`{key}` is not a list"),
    }
    Ok(Some(doc.render()))
}

/// The child entries of top-level mapping `key`: (line, child indentation, block).
fn mapping(doc: &Doc, key: &str) -> anyhow::Result<Option<(usize, usize, std::ops::Range<usize>)>> {
    let Some(at) = doc.find_key(key)? else {
        return Ok(None);
    };
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    match inline(rest) {
        Inline::Block | Inline::EmptyMap => {}
        _ => bail!(
            "`{key}` is not a block mapping; gatehouse only edits `{key}:` followed by indented entries"
        ),
    }
    let block = doc.block(at);
    let child = doc.block_indent(&block).unwrap_or(2);
    if child == 0 {
        bail!("`{key}` holds a list, not a mapping");
    }
    Ok(Some((at, child, block)))
}

/// The line of child `child` of the mapping whose entries are `block` at indentation `ci`.
fn find_child(doc: &Doc, block: &std::ops::Range<usize>, ci: usize, child: &str) -> Option<usize> {
    block
        .clone()
        .find(|&i| child_key_of(&doc.lines[i], ci).is_some_and(|(k, _)| k == child))
}

/// Sets `key: { child: value }` (a plain scalar), keeping every other entry and comment.
pub fn set_child(
    text: &str,
    key: &str,
    child: &str,
    value: &str,
) -> anyhow::Result<Option<String>> {
    let mut doc = Doc::parse(text);
    let Some((at, ci, block)) = mapping(&doc, key)? else {
        doc.lines.push(format!("{key}:"));
        doc.lines.push(format!("  {child}: {value}"));
        return Ok(Some(doc.render()));
    };
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    let (_, key_comment) = split_comment(rest);
    if let Some(i) = find_child(&doc, &block, ci, child) {
        let (_, rest) = child_key_of(&doc.lines[i], ci).context("the child line")?;
        let (current, comment) = split_comment(rest);
        if scalar(current).is_some_and(|c| c == value) {
            return Ok(None);
        }
        let nested = doc
            .lines
            .get(i + 1)
            .is_some_and(|l| !is_blank_or_comment(l) && indent(l) > ci);
        if current.is_empty() && nested {
            bail!(
                "`{key}.{child}` holds a nested value; gatehouse will not replace it: edit it by hand"
            );
        }
        doc.lines[i] = format!(
            "{}{child}: {value}{}",
            " ".repeat(ci),
            comment.map_or(String::new(), |c| format!("  {c}"))
        );
    } else {
        // `key: {}` becomes a block.
        doc.lines[at] = format!(
            "{key}:{}",
            key_comment.map_or(String::new(), |c| format!("  {c}"))
        );
        doc.lines
            .insert(block.end, format!("{}{child}: {value}", " ".repeat(ci)));
    }
    Ok(Some(doc.render()))
}

/// Adds `key: { child: [items] }` when `child` is absent; an existing `child` is left as it is
/// (someone chose it).
pub fn add_child_list(
    text: &str,
    key: &str,
    child: &str,
    items: &[&str],
) -> anyhow::Result<Option<String>> {
    let mut doc = Doc::parse(text);
    let (at, ci, block) = match mapping(&doc, key)? {
        Some(found) => found,
        None => {
            doc.lines.push(format!("{key}:"));
            let at = doc.lines.len() - 1;
            (at, 2, at + 1..at + 1)
        }
    };
    if find_child(&doc, &block, ci, child).is_some() {
        return Ok(None);
    }
    let pad = " ".repeat(ci);
    let mut new = vec![format!("{pad}{child}:")];
    new.extend(items.iter().map(|i| format!("{pad}- {i}")));
    let (_, rest) = key_of(&doc.lines[at]).context("the key line")?;
    let (_, key_comment) = split_comment(rest);
    doc.lines[at] = format!(
        "{key}:{}",
        key_comment.map_or(String::new(), |c| format!("  {c}"))
    );
    doc.lines.splice(block.end..block.end, new);
    Ok(Some(doc.render()))
}

/// The scalar items of the list `key: { child: [...] }` in block style; `None` when `child` is
/// absent or not such a list.
pub fn child_list_items(text: &str, key: &str, child: &str) -> anyhow::Result<Option<Vec<String>>> {
    let doc = Doc::parse(text);
    let Some((_, ci, block)) = mapping(&doc, key)? else {
        return Ok(None);
    };
    let Some(i) = find_child(&doc, &block, ci, child) else {
        return Ok(None);
    };
    let (_, rest) = child_key_of(&doc.lines[i], ci).context("the child line")?;
    if !split_comment(rest).0.is_empty() {
        return Ok(None);
    }
    let mut items = Vec::new();
    for l in &doc.lines[i + 1..block.end] {
        if is_blank_or_comment(l) {
            continue;
        }
        let at = indent(l);
        if at < ci || (at == ci && !l[at..].starts_with('-')) {
            break;
        }
        if !l[at..].starts_with('-') {
            return Ok(None);
        }
        let (v, _) = split_comment(l[at + 1..].trim_start());
        match scalar(v) {
            Some(v) => items.push(v.to_string()),
            None => return Ok(None),
        }
    }
    Ok(Some(items))
}

/// Removes child `child` of top-level mapping `key` (with anything nested under it), only when
/// its value is `only_if` (when given); the key goes too when nothing is left in it.
pub fn remove_child(
    text: &str,
    key: &str,
    child: &str,
    only_if: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let mut doc = Doc::parse(text);
    let Some((at, ci, block)) = mapping(&doc, key)? else {
        return Ok(None);
    };
    let Some(i) = find_child(&doc, &block, ci, child) else {
        return Ok(None);
    };
    let (_, rest) = child_key_of(&doc.lines[i], ci).context("the child line")?;
    let (current, _) = split_comment(rest);
    if let Some(want) = only_if
        && scalar(current).is_none_or(|c| c != want)
    {
        return Ok(None);
    }
    // The child's own lines: itself and anything deeper (or a list at its indentation) below.
    let mut end = i + 1;
    while end < block.end {
        let l = &doc.lines[end];
        if !is_blank_or_comment(l)
            && (indent(l) < ci || (indent(l) == ci && !l[ci..].starts_with('-')))
        {
            break;
        }
        end += 1;
    }
    let others = doc.lines[block.clone()]
        .iter()
        .enumerate()
        .filter(|(j, l)| {
            let j = block.start + j;
            (j < i || j >= end) && child_key_of(l, ci).is_some()
        })
        .count();
    if others == 0 {
        doc.remove_entry(at..block.end);
    } else {
        doc.remove_entry(i..end);
    }
    Ok(Some(doc.render()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conda-forge/pytorch-cpu-feedstock's recipe/conda_build_config.yaml (shape), with
    /// selectors and comments that must survive.
    const PYTORCH_CBC: &str = "MACOSX_SDK_VERSION:         # [osx]\n- 12.3                      # [osx]\n\n# It seems that clang 16 might be a little too strict for\n# some pointer conversions\nc_compiler_version:         # [osx]\n- 15                        # [osx]\n\nblas_impl:\n- mkl                          # [x86 or x86_64]\n- generic\ngithub_actions_labels:\n- cirun-openstack-gpu-large\n- cirun-openstack-cpu-large\n";

    /// conda-forge/jaxlib-feedstock's conda-forge.yml (shape).
    const JAXLIB_CFG: &str = "build_platform:\n  osx_64: osx_arm64\nconda_build:\n  pkg_format: '2'\nconda_forge_output_validation: true\ngithub:\n  branch_name: main\n  tooling_branch_name: main\ngithub_actions:\n  timeout_minutes: 720\n  triggers:\n  - push\n  - pull_request\nprovider:\n  linux_64: azure  # the default\n  linux_aarch64: github_actions\ntest: native_and_emulated\n";

    #[test]
    fn an_item_is_added_after_the_others_and_nothing_else_moves() {
        let out = add_list_item(PYTORCH_CBC, "github_actions_labels", "cirun-gpu")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            PYTORCH_CBC.replace(
                "- cirun-openstack-cpu-large\n",
                "- cirun-openstack-cpu-large\n- cirun-gpu\n"
            )
        );
        assert_eq!(
            add_list_item(&out, "github_actions_labels", "CIRUN-GPU").unwrap(),
            None,
            "already there: no change"
        );
    }

    #[test]
    fn a_missing_list_is_created_at_the_end_and_a_missing_newline_added() {
        let text = "# jaxlib wants clang\nc_compiler:\n- clang\n- clang  # [linux]";
        let out = add_list_item(text, "github_actions_labels", "cirun-gpu")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "# jaxlib wants clang\nc_compiler:\n- clang\n- clang  # [linux]\ngithub_actions_labels:\n- cirun-gpu\n"
        );
        assert_eq!(add_list_item("", "k", "v").unwrap().unwrap(), "k:\n- v\n");
    }

    #[test]
    fn a_selector_on_the_key_goes_on_the_new_item_too() {
        let text = "github_actions_labels:  # [linux]\n  - cirun-a  # [linux]\nother:\n- x\n";
        let out = add_list_item(text, "github_actions_labels", "cirun-b")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "github_actions_labels:  # [linux]\n  - cirun-a  # [linux]\n  - cirun-b  # [linux]\nother:\n- x\n"
        );
    }

    #[test]
    fn flow_lists_and_quoted_items_are_understood() {
        let text = "github_actions_labels: ['cirun-a', \"cirun-b\"]  # gpu\n";
        assert_eq!(
            list_items(text, "github_actions_labels").unwrap(),
            ["cirun-a", "cirun-b"]
        );
        let out = add_list_item(text, "github_actions_labels", "cirun-c")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "github_actions_labels: ['cirun-a', \"cirun-b\", cirun-c]  # gpu\n"
        );
        let back = remove_list_item(&out, "github_actions_labels", "cirun-c")
            .unwrap()
            .unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn removing_the_last_item_removes_the_key_and_only_it() {
        let text = "blas_impl:\n- generic\n\ngithub_actions_labels:\n# the GPU runner\n- cirun-gpu  # [linux]\n\n# trailing comment about zlib\nzlib:\n- 1.3\n";
        let out = remove_list_item(text, "github_actions_labels", "cirun-gpu")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "blas_impl:\n- generic\n\n# trailing comment about zlib\nzlib:\n- 1.3\n"
        );
        let out = remove_list_item(
            PYTORCH_CBC,
            "github_actions_labels",
            "cirun-openstack-gpu-large",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            PYTORCH_CBC.replace("- cirun-openstack-gpu-large\n", "")
        );
        assert_eq!(
            remove_list_item(PYTORCH_CBC, "github_actions_labels", "not-there").unwrap(),
            None
        );
    }

    #[test]
    fn a_key_under_two_selectors_is_refused_not_guessed() {
        let text = "github_actions_labels:  # [linux]\n- cirun-a  # [linux]\ngithub_actions_labels:  # [osx]\n- hosted  # [osx]\n";
        let e = add_list_item(text, "github_actions_labels", "cirun-b").unwrap_err();
        assert!(
            e.to_string().contains("appears 2 times (lines 1, 3)"),
            "{e}"
        );
        let e = add_list_item(
            "github_actions_labels: hosted\n",
            "github_actions_labels",
            "x",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a list"), "{e}");
    }

    #[test]
    fn nested_items_are_kept_and_never_matched() {
        let text = "github_actions_labels:\n- - self-hosted\n  - custom-label\n- hosted\n";
        assert_eq!(
            list_items(text, "github_actions_labels").unwrap(),
            ["hosted"]
        );
        let out = add_list_item(text, "github_actions_labels", "cirun-gpu")
            .unwrap()
            .unwrap();
        assert_eq!(out, format!("{text}- cirun-gpu\n"));
    }

    #[test]
    fn a_child_is_set_in_place_or_added_at_the_end_of_its_mapping() {
        let out = set_child(JAXLIB_CFG, "provider", "linux_64", "github_actions")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            JAXLIB_CFG.replace(
                "linux_64: azure  # the default",
                "linux_64: github_actions  # the default"
            )
        );
        assert_eq!(
            set_child(&out, "provider", "linux_64", "github_actions").unwrap(),
            None
        );
        let out = set_child(JAXLIB_CFG, "github_actions", "self_hosted", "true")
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            JAXLIB_CFG.replace(
                "  - pull_request\n",
                "  - pull_request\n  self_hosted: true\n"
            )
        );
        // Absent: a new mapping at the end.
        let out = set_child(
            "conda_build:\n  pkg_format: '2'\n",
            "github_actions",
            "self_hosted",
            "true",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            "conda_build:\n  pkg_format: '2'\ngithub_actions:\n  self_hosted: true\n"
        );
        // `{}` becomes a block.
        let out = set_child("provider: {}\n", "provider", "linux_64", "github_actions")
            .unwrap()
            .unwrap();
        assert_eq!(out, "provider:\n  linux_64: github_actions\n");
    }

    #[test]
    fn a_child_list_is_added_only_when_absent() {
        assert_eq!(
            add_child_list(
                JAXLIB_CFG,
                "github_actions",
                "triggers",
                &["push", "pull_request"]
            )
            .unwrap(),
            None
        );
        let out = add_child_list(
            "github_actions:\n  self_hosted: true\nprovider:\n  linux_64: github_actions\n",
            "github_actions",
            "triggers",
            &["push", "pull_request"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            "github_actions:\n  self_hosted: true\n  triggers:\n  - push\n  - pull_request\nprovider:\n  linux_64: github_actions\n"
        );
    }

    #[test]
    fn removing_a_child_keeps_its_siblings_and_drops_an_emptied_mapping() {
        let text = "github_actions:\n  self_hosted: true\n  triggers:\n  - push\nprovider:\n  linux_64: github_actions\ntest: native\n";
        let out = remove_child(text, "github_actions", "triggers", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "github_actions:\n  self_hosted: true\nprovider:\n  linux_64: github_actions\ntest: native\n"
        );
        let out = remove_child(&out, "provider", "linux_64", Some("github_actions"))
            .unwrap()
            .unwrap();
        assert_eq!(out, "github_actions:\n  self_hosted: true\ntest: native\n");
        // A value other than the one asked for stays.
        assert_eq!(
            remove_child(JAXLIB_CFG, "provider", "linux_64", Some("github_actions")).unwrap(),
            None
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = "a:\r\n- x\r\n";
        let out = add_list_item(text, "a", "y").unwrap().unwrap();
        assert_eq!(out, "a:\r\n- x\r\n- y\r\n");
    }
}
