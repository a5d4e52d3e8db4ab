//! Image write-back: edit a Kustomize `kustomization.yaml` `images:` entry or a Helm
//! values scalar (`image.tag`) in place, keeping comments, ordering, indentation and the
//! quoting style of the edited scalar, and commit the result (no commit when nothing
//! changes).
//!
//! The editor works on lines of block-style YAML, which is what these files are in
//! practice; flow collections, anchors, aliases, tags and block scalars on the edited
//! path are refused with [`WriteBackError::Unsupported`] rather than rewritten.

use std::fmt;

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteBackError {
    /// A construct the line editor does not rewrite.
    #[error("{file}:{line}: {reason}")]
    Unsupported {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is there.
        reason: &'static str,
    },
    /// The key path does not exist.
    #[error("{file}: key `{path}` not found")]
    KeyNotFound {
        /// The file.
        file: String,
        /// The dotted key path.
        path: String,
    },
    /// A value that cannot be written as a one-line scalar.
    #[error("value {value:?} for `{field}` contains a line break or is empty")]
    BadValue {
        /// The field.
        field: String,
        /// The value.
        value: String,
    },
    /// A quoted scalar is not closed on its line.
    #[error("{file}:{line}: unterminated quoted scalar")]
    Unterminated {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
    },
}

/// The new values for one Kustomize `images:` entry (`None`: leave as is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUpdate {
    /// `name`: the image to match (without tag or digest).
    pub name: String,
    /// `newName`.
    pub new_name: Option<String>,
    /// `newTag`.
    pub new_tag: Option<String>,
    /// `digest` (`sha256:...`).
    pub digest: Option<String>,
}

/// One changed value, for commit messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file.
    pub file: String,
    /// The field (`images[web].newTag`, `image.tag`).
    pub field: String,
    /// The old value (`None`: added).
    pub old: Option<String>,
    /// The new value.
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.old {
            Some(old) => write!(f, "{}: {} {} -> {}", self.file, self.field, old, self.new),
            None => write!(f, "{}: {} set to {}", self.file, self.field, self.new),
        }
    }
}

/// The result of an edit: the new text and what changed (empty: nothing to commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The edited document.
    pub text: String,
    /// The changes, in order.
    pub changes: Vec<Change>,
}

impl Edit {
    /// Whether anything changed.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}

struct Line<'a> {
    indent: usize,
    body: &'a str,
}

fn split_line(l: &str) -> Line<'_> {
    let indent = l.len() - l.trim_start_matches(' ').len();
    Line {
        indent,
        body: &l[indent..],
    }
}

fn is_blank_or_comment(body: &str) -> bool {
    body.is_empty() || body.starts_with('#')
}

/// The parsed value part of a `key: value  # comment` line.
struct Scalar {
    /// Byte range of the scalar (quotes included) within the line.
    start: usize,
    end: usize,
    /// The unquoted value.
    value: String,
    quote: Option<char>,
}

fn parse_scalar(file: &str, n: usize, line: &str, start: usize) -> Result<Scalar, WriteBackError> {
    let unsupported = |reason| WriteBackError::Unsupported {
        file: file.to_string(),
        line: n + 1,
        reason,
    };
    let rest = &line[start..];
    let lead = rest.len() - rest.trim_start().len();
    let s = start + lead;
    let text = &line[s..];
    match text.chars().next() {
        Some('"') | Some('\'') => {
            let q = text.chars().next().unwrap_or('"');
            let mut value = String::new();
            let mut chars = text.char_indices().skip(1).peekable();
            while let Some((i, c)) = chars.next() {
                if c == q {
                    if q == '\'' && chars.peek().map(|(_, c)| *c) == Some('\'') {
                        chars.next();
                        value.push('\'');
                        continue;
                    }
                    return Ok(Scalar {
                        start: s,
                        end: s + i + 1,
                        value,
                        quote: Some(q),
                    });
                }
                if q == '"' && c == '\\' {
                    match chars.next() {
                        Some((_, '"')) => value.push('"'),
                        Some((_, '\\')) => value.push('\\'),
                        _ => return Err(unsupported("escape sequence in a double-quoted scalar")),
                    }
                    continue;
                }
                value.push(c);
            }
            Err(WriteBackError::Unterminated {
                file: file.to_string(),
                line: n + 1,
            })
        }
        Some('&') | Some('*') => Err(unsupported("anchor or alias")),
        Some('!') => Err(unsupported("tagged scalar")),
        Some('[') | Some('{') => Err(unsupported("flow collection")),
        Some('|') | Some('>') => Err(unsupported("block scalar")),
        _ => {
            // Plain: up to ` #` or the end, trailing spaces excluded.
            let end_rel = text.find(" #").unwrap_or(text.len());
            let value = text[..end_rel].trim_end();
            Ok(Scalar {
                start: s,
                end: s + value.len(),
                value: value.to_string(),
                quote: None,
            })
        }
    }
}

fn needs_quotes(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    let special_word = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    );
    let numeric = v.parse::<f64>().is_ok() || v.starts_with("0x") || v.starts_with("0o");
    let first_special = v
        .chars()
        .next()
        .is_some_and(|c| "-?:,[]{}#&*!|>'\"%@`".contains(c));
    special_word
        || numeric
        || first_special
        || v.contains(": ")
        || v.contains(" #")
        || v.ends_with(':')
        || v.starts_with(' ')
        || v.ends_with(' ')
}

fn render_scalar(v: &str, quote: Option<char>) -> String {
    match quote {
        Some('\'') => format!("'{}'", v.replace('\'', "''")),
        Some(_) => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        None if needs_quotes(v) => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        None => v.to_string(),
    }
}

fn check_value(field: &str, v: &str) -> Result<(), WriteBackError> {
    if v.is_empty() || v.contains('\n') || v.contains('\r') {
        return Err(WriteBackError::BadValue {
            field: field.to_string(),
            value: v.to_string(),
        });
    }
    Ok(())
}

/// `key: rest` at the start of a mapping line body.
fn key_of(body: &str) -> Option<(&str, usize)> {
    let colon = body.find(':')?;
    let key = &body[..colon];
    if key.is_empty() || key.contains(' ') && !key.starts_with('"') {
        return None;
    }
    let after = &body[colon + 1..];
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some((key.trim_matches('"').trim_matches('\''), colon + 1))
}

fn joined(lines: &[String], trailing_newline: bool) -> String {
    let mut s = lines.join("\n");
    if trailing_newline {
        s.push('\n');
    }
    s
}

/// Sets the fields of the `images:` entry named `update.name` in a kustomization,
/// adding the entry (or the `images:` list) when absent.
pub fn set_kustomize_image(
    file: &str,
    text: &str,
    update: &ImageUpdate,
) -> Result<Edit, WriteBackError> {
    check_value("name", &update.name)?;
    let fields: Vec<(&str, &String)> = [
        ("newName", update.new_name.as_ref()),
        ("newTag", update.new_tag.as_ref()),
        ("digest", update.digest.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    for (k, v) in &fields {
        check_value(k, v)?;
    }
    let trailing = text.ends_with('\n') || text.is_empty();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut changes = Vec::new();
    let field_name = |k: &str| format!("images[{}].{k}", update.name);

    let images_at = lines.iter().position(|l| {
        let sl = split_line(l);
        sl.indent == 0 && key_of(sl.body).is_some_and(|(k, _)| k == "images")
    });
    let Some(images_at) = images_at else {
        if fields.is_empty() {
            return Ok(Edit {
                text: text.to_string(),
                changes,
            });
        }
        lines.push("images:".to_string());
        lines.push(format!("- name: {}", render_scalar(&update.name, None)));
        for (k, v) in &fields {
            lines.push(format!("  {k}: {}", render_scalar(v, None)));
            changes.push(Change {
                file: file.to_string(),
                field: field_name(k),
                old: None,
                new: v.to_string(),
            });
        }
        return Ok(Edit {
            text: joined(&lines, trailing),
            changes,
        });
    };
    let (_, after_key) = key_of(&lines[images_at]).unwrap_or(("images", 7));
    let inline = lines[images_at][after_key..].trim();
    if !(inline.is_empty() || inline.starts_with('#')) {
        return Err(WriteBackError::Unsupported {
            file: file.to_string(),
            line: images_at + 1,
            reason: "`images:` is not a block sequence",
        });
    }
    // The extent of the sequence: until the next line at indent 0 that is not `- `.
    let mut end = images_at + 1;
    while end < lines.len() {
        let sl = split_line(&lines[end]);
        if !is_blank_or_comment(sl.body)
            && sl.indent == 0
            && !sl.body.starts_with("- ")
            && sl.body != "-"
        {
            break;
        }
        end += 1;
    }
    // Items: (start line, dash indent).
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut dash_indent = None;
    for (i, l) in lines.iter().enumerate().take(end).skip(images_at + 1) {
        let sl = split_line(l);
        if sl.body.starts_with("- ") || sl.body == "-" {
            let d = *dash_indent.get_or_insert(sl.indent);
            if sl.indent == d {
                items.push((i, d));
            }
        }
    }
    // Find the entry named `update.name`.
    let mut found: Option<(usize, usize, usize, usize)> = None; // (start, end, content indent, dash)
    for (idx, (start, dash)) in items.iter().enumerate() {
        let item_end = items.get(idx + 1).map_or(end, |(s, _)| *s);
        let content = dash + 2;
        for (i, l) in lines.iter().enumerate().take(item_end).skip(*start) {
            let body = if i == *start {
                &l[content.min(l.len())..]
            } else {
                let sl = split_line(l);
                if sl.indent != content {
                    continue;
                }
                sl.body
            };
            if let Some((key, after)) = key_of(body)
                && key == "name"
            {
                let off = l.len() - body.len();
                let sc = parse_scalar(file, i, l, off + after)?;
                if sc.value == update.name {
                    found = Some((*start, item_end, content, *dash));
                }
            }
        }
    }
    let Some((start, item_end, content, dash)) = found else {
        if fields.is_empty() {
            return Ok(Edit {
                text: text.to_string(),
                changes,
            });
        }
        // Append a new entry after the last non-blank line of the sequence.
        let mut at = end;
        while at > images_at + 1 && split_line(&lines[at - 1]).body.is_empty() {
            at -= 1;
        }
        let d = dash_indent.unwrap_or(0);
        let mut new = vec![format!(
            "{}- name: {}",
            " ".repeat(d),
            render_scalar(&update.name, None)
        )];
        for (k, v) in &fields {
            new.push(format!(
                "{}{k}: {}",
                " ".repeat(d + 2),
                render_scalar(v, None)
            ));
            changes.push(Change {
                file: file.to_string(),
                field: field_name(k),
                old: None,
                new: v.to_string(),
            });
        }
        lines.splice(at..at, new);
        return Ok(Edit {
            text: joined(&lines, trailing),
            changes,
        });
    };
    let mut last_field_line = start;
    let mut inserts = Vec::new();
    for (k, v) in &fields {
        let mut hit = false;
        #[allow(clippy::needless_range_loop)] // `lines[i]` is rewritten inside the loop
        for i in start..item_end {
            let l = lines[i].clone();
            let body = if i == start {
                &l[content.min(l.len())..]
            } else {
                let sl = split_line(&l);
                if sl.indent != content {
                    continue;
                }
                sl.body
            };
            if is_blank_or_comment(body) {
                continue;
            }
            last_field_line = last_field_line.max(i);
            if let Some((key, after)) = key_of(body)
                && key == *k
            {
                hit = true;
                let off = l.len() - body.len();
                let sc = parse_scalar(file, i, &l, off + after)?;
                if sc.value != **v {
                    let rendered = render_scalar(v, sc.quote);
                    let sep = if sc.start == off + after { " " } else { "" };
                    lines[i] = format!("{}{sep}{}{}", &l[..sc.start], rendered, &l[sc.end..]);
                    changes.push(Change {
                        file: file.to_string(),
                        field: field_name(k),
                        old: Some(sc.value),
                        new: v.to_string(),
                    });
                }
            }
        }
        if !hit {
            inserts.push(format!(
                "{}{k}: {}",
                " ".repeat(dash + 2),
                render_scalar(v, None)
            ));
            changes.push(Change {
                file: file.to_string(),
                field: field_name(k),
                old: None,
                new: v.to_string(),
            });
        }
    }
    let at = last_field_line + 1;
    lines.splice(at..at, inserts);
    Ok(Edit {
        text: joined(&lines, trailing),
        changes,
    })
}

/// Sets the scalar at a dotted key path (`image.tag`) of a Helm values file. The key
/// must exist (values files declare their keys); quoting style and comments are kept.
pub fn set_helm_value(
    file: &str,
    text: &str,
    path: &str,
    value: &str,
) -> Result<Edit, WriteBackError> {
    check_value(path, value)?;
    let trailing = text.ends_with('\n') || text.is_empty();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let keys: Vec<&str> = path.split('.').collect();
    let not_found = || WriteBackError::KeyNotFound {
        file: file.to_string(),
        path: path.to_string(),
    };
    let (mut from, mut to) = (0, lines.len());
    let mut indent: Option<usize> = Some(0);
    for (depth, key) in keys.iter().enumerate() {
        let mut hit = None;
        let mut level = indent;
        for (i, line) in lines.iter().enumerate().take(to).skip(from) {
            let sl = split_line(line);
            if is_blank_or_comment(sl.body) {
                continue;
            }
            let lvl = *level.get_or_insert(sl.indent);
            if sl.indent < lvl {
                break;
            }
            if sl.indent == lvl
                && let Some((k, after)) = key_of(sl.body)
                && k == *key
            {
                hit = Some((i, sl.indent + after, lvl));
                break;
            }
        }
        let (i, after, lvl) = hit.ok_or_else(not_found)?;
        if depth + 1 == keys.len() {
            let l = lines[i].clone();
            let sc = parse_scalar(file, i, &l, after)?;
            if sc.start >= l.len() || l[sc.start..].starts_with('#') {
                return Err(WriteBackError::Unsupported {
                    file: file.to_string(),
                    line: i + 1,
                    reason: "the key holds a mapping, not a scalar",
                });
            }
            if sc.value == value {
                return Ok(Edit {
                    text: text.to_string(),
                    changes: Vec::new(),
                });
            }
            lines[i] = format!(
                "{}{}{}",
                &l[..sc.start],
                render_scalar(value, sc.quote),
                &l[sc.end..]
            );
            return Ok(Edit {
                text: joined(&lines, trailing),
                changes: vec![Change {
                    file: file.to_string(),
                    field: path.to_string(),
                    old: Some(sc.value),
                    new: value.to_string(),
                }],
            });
        }
        // Descend: the children are the following lines indented deeper than `lvl`.
        let inline = lines[i][after..].trim();
        if !(inline.is_empty() || inline.starts_with('#')) {
            return Err(WriteBackError::Unsupported {
                file: file.to_string(),
                line: i + 1,
                reason: "expected a block mapping",
            });
        }
        let mut end = i + 1;
        while end < to {
            let sl = split_line(&lines[end]);
            if !is_blank_or_comment(sl.body) && sl.indent <= lvl {
                break;
            }
            end += 1;
        }
        from = i + 1;
        to = end;
        indent = None;
    }
    Err(not_found())
}

/// Renders a commit message template: `{{app}}` is the application name, `{{changes}}`
/// one line per change (`- file: field old -> new`).
pub fn commit_message(template: &str, app: &str, changes: &[Change]) -> String {
    let list: Vec<String> = changes.iter().map(|c| format!("- {c}")).collect();
    template
        .replace("{{app}}", app)
        .replace("{{changes}}", &list.join("\n"))
}

/// The default commit message template.
pub const DEFAULT_TEMPLATE: &str = "build: automatic update of {{app}}\n\n{{changes}}\n";

/// Reads `file` at the tip of `branch`, applies `edit`, commits the result on the branch
/// (compare-and-swap on the tip) with a message from `template`, and pushes the branch.
/// Returns `None` (no commit, no push) when the edit changes nothing.
#[cfg(feature = "git")]
pub fn write_back(
    repo: &crate::git::GitRepo,
    branch: &str,
    file: &str,
    edit: impl FnOnce(&str) -> Result<Edit, WriteBackError>,
    template: &str,
    app: &str,
    now: crate::tag::Stamp,
) -> Result<Option<crate::tag::CommitId>, WriteBackFailure> {
    let tip = repo.resolve(branch)?;
    let bytes = repo.read_file(&tip, file)?;
    let text = String::from_utf8(bytes).map_err(|_| WriteBackError::Unsupported {
        file: file.to_string(),
        line: 0,
        reason: "not UTF-8",
    })?;
    let edited = edit(&text)?;
    if edited.is_noop() {
        return Ok(None);
    }
    let message = commit_message(template, app, &edited.changes);
    let commit = repo.commit_files(
        branch,
        Some(&tip),
        &[(file.to_string(), edited.text.into_bytes())],
        &message,
        now,
    )?;
    if repo.remote().is_some() {
        repo.push_branch(branch)?;
    }
    Ok(Some(commit))
}

/// Why a write-back through git failed.
#[cfg(feature = "git")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteBackFailure {
    /// The edit was refused.
    #[error(transparent)]
    Edit(#[from] WriteBackError),
    /// Git failed (including a lost compare-and-swap or a refused push).
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUST: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml # the app
images:
  # the web frontend
  - name: web
    newName: registry.example.invalid/web
    newTag: \"1.2.3\" # bumped by CI
  - name: worker
    newTag: 1.0.0
namespace: shop
";

    fn tag(name: &str, t: &str) -> ImageUpdate {
        ImageUpdate {
            name: name.into(),
            new_tag: Some(t.into()),
            ..ImageUpdate::default()
        }
    }

    #[test]
    fn kustomize_edits_in_place() {
        let e = set_kustomize_image("k.yaml", KUST, &tag("web", "1.2.4")).unwrap();
        assert_eq!(
            e.text,
            KUST.replace("\"1.2.3\" # bumped", "\"1.2.4\" # bumped")
        );
        assert_eq!(e.changes[0].old.as_deref(), Some("1.2.3"));
        assert!(
            set_kustomize_image("k.yaml", KUST, &tag("web", "1.2.3"))
                .unwrap()
                .is_noop()
        );
        // Plain stays plain unless YAML would read it as something else.
        let e = set_kustomize_image("k.yaml", KUST, &tag("worker", "1.1.0")).unwrap();
        assert!(e.text.contains("    newTag: 1.1.0\nnamespace"));
        let e = set_kustomize_image("k.yaml", KUST, &tag("worker", "1.20")).unwrap();
        assert!(e.text.contains("newTag: \"1.20\""));
        // A missing field is inserted after the entry's last field.
        let e = set_kustomize_image(
            "k.yaml",
            KUST,
            &ImageUpdate {
                name: "worker".into(),
                digest: Some("sha256:abc".into()),
                ..ImageUpdate::default()
            },
        )
        .unwrap();
        assert!(
            e.text
                .contains("    newTag: 1.0.0\n    digest: sha256:abc\nnamespace")
        );
        // A missing entry is appended to the list.
        let e = set_kustomize_image("k.yaml", KUST, &tag("cron", "2")).unwrap();
        assert!(
            e.text
                .contains("    newTag: 1.0.0\n  - name: cron\n    newTag: \"2\"\nnamespace"),
            "{}",
            e.text
        );
        // No images: at all.
        let e = set_kustomize_image("k.yaml", "resources: []\n", &tag("web", "v1")).unwrap();
        assert_eq!(
            e.text,
            "resources: []\nimages:\n- name: web\n  newTag: v1\n"
        );
    }

    #[test]
    fn kustomize_refusals() {
        let flow = "images: [{name: web, newTag: v1}]\n";
        assert!(matches!(
            set_kustomize_image("k.yaml", flow, &tag("web", "v2")),
            Err(WriteBackError::Unsupported { line: 1, .. })
        ));
        let alias = "images:\n- name: web\n  newTag: *tag\n";
        assert!(matches!(
            set_kustomize_image("k.yaml", alias, &tag("web", "v2")),
            Err(WriteBackError::Unsupported { line: 3, .. })
        ));
        assert!(matches!(
            set_kustomize_image("k.yaml", KUST, &tag("web", "a\nb")),
            Err(WriteBackError::BadValue { .. })
        ));
    }

    #[test]
    fn helm_values() {
        let values = "\
# values for web
replicaCount: 2
image:
  repository: registry.example.invalid/web # where
  tag: '1.2.3'  # the tag
  pullPolicy: IfNotPresent
sidecar:
  image:
    tag: 0.9
";
        let e = set_helm_value("values.yaml", values, "image.tag", "1.2.4").unwrap();
        assert_eq!(e.text, values.replace("'1.2.3'  # the", "'1.2.4'  # the"));
        let e = set_helm_value("values.yaml", values, "sidecar.image.tag", "0.10").unwrap();
        assert!(e.text.ends_with("    tag: \"0.10\"\n"));
        assert!(
            set_helm_value("values.yaml", values, "image.tag", "1.2.3")
                .unwrap()
                .is_noop()
        );
        assert!(matches!(
            set_helm_value("values.yaml", values, "image.digest", "x"),
            Err(WriteBackError::KeyNotFound { .. })
        ));
        assert!(matches!(
            set_helm_value("values.yaml", values, "image", "x"),
            Err(WriteBackError::Unsupported { line: 3, .. })
        ));
        let msg = commit_message(DEFAULT_TEMPLATE, "web", &e.changes);
        assert_eq!(
            msg,
            "build: automatic update of web\n\n- values.yaml: sidecar.image.tag 0.9 -> 0.10\n"
        );
    }
}
