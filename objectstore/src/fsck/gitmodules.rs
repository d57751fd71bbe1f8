//! `.gitmodules` blobs: submodule names, URLs, paths and update commands that a client would
//! act on (git's `fsck_gitmodules_fn`, `check_submodule_name`, `check_submodule_url`).
//!
//! The file is git's config format; the parser here reads just enough of it (sections with
//! quoted subsections, `key = value` with quotes, escapes, comments and continuations) to find
//! `submodule.<name>.<key>` entries. As in git, a file that cannot be parsed is accepted, but
//! what was read before the error is checked.

use super::{finding, Finding, MsgId};

/// Check every submodule entry of a `.gitmodules` file.
pub(super) fn check(data: &[u8]) -> Result<(), Finding> {
    let mut result = Ok(());
    parse(data, &mut |section, subsection, key, value| {
        if result.is_err() || !section.eq_ignore_ascii_case(b"submodule") {
            return;
        }
        let Some(name) = subsection else { return };
        result = check_entry(name, key, value);
    });
    result
}

fn check_entry(name: &[u8], key: &[u8], value: Option<&[u8]>) -> Result<(), Finding> {
    let shown = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    if !submodule_name_ok(name) {
        return Err(finding(
            MsgId::GitmodulesName,
            format!("disallowed submodule name: {}", shown(name)),
        ));
    }
    let Some(value) = value else { return Ok(()) };
    if key.eq_ignore_ascii_case(b"url") && !submodule_url_ok(value) {
        return Err(finding(
            MsgId::GitmodulesUrl,
            format!("disallowed submodule url: {}", shown(value)),
        ));
    }
    if key.eq_ignore_ascii_case(b"path") && value.first() == Some(&b'-') {
        return Err(finding(
            MsgId::GitmodulesPath,
            format!("disallowed submodule path: {}", shown(value)),
        ));
    }
    if key.eq_ignore_ascii_case(b"update") && value.first() == Some(&b'!') {
        return Err(finding(
            MsgId::GitmodulesUpdate,
            format!("disallowed submodule update setting: {}", shown(value)),
        ));
    }
    Ok(())
}

fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Not empty, and no `..` component (with `/` or `\` as separators).
fn submodule_name_ok(name: &[u8]) -> bool {
    !name.is_empty() && !name.split(|b| is_sep(*b)).any(|c| c == b"..")
}

fn starts_with_dot_slash(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'.' && is_sep(s[1])
}

fn starts_with_dot_dot_slash(s: &[u8]) -> bool {
    s.len() >= 3 && s[0] == b'.' && s[1] == b'.' && is_sep(s[2])
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if s[i] == b'%' && i + 2 < s.len() + 1 {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|b| hex(*b)),
                s.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn submodule_url_ok(url: &[u8]) -> bool {
    if url.first() == Some(&b'-') {
        return false;
    }
    let relative = starts_with_dot_slash(url) || starts_with_dot_dot_slash(url);
    if relative || url.starts_with(b"git://") {
        if percent_decode(url).contains(&b'\n') {
            return false;
        }
        // `../` sequences that climb out of the root can rewrite the host of the superproject's
        // URL (CVE-2020-11008).
        let mut rest = url;
        let mut dotdots = 0;
        loop {
            if starts_with_dot_dot_slash(rest) {
                dotdots += 1;
                rest = &rest[3..];
            } else if starts_with_dot_slash(rest) {
                rest = &rest[2..];
            } else {
                break;
            }
        }
        return !(dotdots > 0 && matches!(rest.first(), Some(b':') | Some(b'/')));
    }
    for scheme in [&b"http://"[..], b"https://", b"ftp://", b"ftps://"] {
        if url.len() >= scheme.len() && url[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &url[scheme.len()..];
            let authority_end = rest
                .iter()
                .position(|b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            let host = match authority.iter().rposition(|b| *b == b'@') {
                Some(at) => &authority[at + 1..],
                None => authority,
            };
            // What git's url_normalize refuses: no host, or characters no host has.
            let host_ok = !host.is_empty()
                && host
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]%".contains(b));
            return host_ok && !percent_decode(url).contains(&b'\n');
        }
    }
    true
}

/// Call `entry(section, subsection, key, value)` for each variable of a git config file, until
/// the end or the first syntax error.
/// Called with (section, subsection, key, value) for each variable.
type OnVariable<'a> = &'a mut dyn FnMut(&[u8], Option<&[u8]>, &[u8], Option<&[u8]>);

fn parse(data: &[u8], entry: OnVariable<'_>) {
    let mut section: Vec<u8> = Vec::new();
    let mut subsection: Option<Vec<u8>> = None;
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < data.len() && matches!(data[*i], b' ' | b'\t' | b'\r') {
            *i += 1;
        }
    };
    let skip_line = |i: &mut usize| {
        while *i < data.len() && data[*i] != b'\n' {
            *i += 1;
        }
    };
    while i < data.len() {
        skip_space(&mut i);
        let Some(&c) = data.get(i) else { break };
        match c {
            b'\n' => i += 1,
            b'#' | b';' => skip_line(&mut i),
            b'[' => {
                i += 1;
                let start = i;
                while i < data.len()
                    && (data[i].is_ascii_alphanumeric() || data[i] == b'-' || data[i] == b'.')
                {
                    i += 1;
                }
                let name = &data[start..i];
                match data.get(i) {
                    Some(b']') => {
                        // `[section.sub]`: the old, lower-cased form.
                        match name.iter().position(|b| *b == b'.') {
                            Some(dot) => {
                                section = name[..dot].to_vec();
                                subsection = Some(name[dot + 1..].to_ascii_lowercase());
                            }
                            None => {
                                section = name.to_vec();
                                subsection = None;
                            }
                        }
                        i += 1;
                    }
                    Some(b' ') | Some(b'\t') => {
                        skip_space(&mut i);
                        if data.get(i) != Some(&b'"') {
                            return;
                        }
                        i += 1;
                        let mut sub = Vec::new();
                        loop {
                            match data.get(i) {
                                Some(b'"') => break,
                                Some(b'\\') => {
                                    match data.get(i + 1) {
                                        Some(b'\n') | None => return,
                                        Some(&e) => sub.push(e),
                                    }
                                    i += 2;
                                }
                                Some(b'\n') | None => return,
                                Some(&b) => {
                                    sub.push(b);
                                    i += 1;
                                }
                            }
                        }
                        if data.get(i + 1) != Some(&b']') {
                            return;
                        }
                        i += 2;
                        section = name.to_vec();
                        subsection = Some(sub);
                    }
                    _ => return,
                }
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < data.len() && (data[i].is_ascii_alphanumeric() || data[i] == b'-') {
                    i += 1;
                }
                let key = data[start..i].to_vec();
                skip_space(&mut i);
                let value = match data.get(i) {
                    None | Some(b'\n') | Some(b'#') | Some(b';') => None,
                    Some(b'=') => {
                        i += 1;
                        match parse_value(data, &mut i) {
                            Some(v) => Some(v),
                            None => return,
                        }
                    }
                    _ => return,
                };
                if section.is_empty() {
                    return;
                }
                entry(&section, subsection.as_deref(), &key, value.as_deref());
            }
            _ => return,
        }
    }
}

/// A value after `=`, up to the end of its (possibly continued) line; `None` on a syntax error.
fn parse_value(data: &[u8], i: &mut usize) -> Option<Vec<u8>> {
    let mut value = Vec::new();
    let mut quoted = false;
    // Trailing unquoted whitespace is dropped; leading whitespace is skipped.
    let mut pending_space = 0usize;
    let mut started = false;
    while let Some(&c) = data.get(*i) {
        *i += 1;
        match c {
            b'\n' if !quoted => return Some(value),
            b'\n' => return None,
            b' ' | b'\t' if !quoted => {
                if started {
                    pending_space += 1;
                }
            }
            b'#' | b';' if !quoted => {
                while *i < data.len() && data[*i] != b'\n' {
                    *i += 1;
                }
                return Some(value);
            }
            b'"' => {
                value.extend(std::iter::repeat_n(b' ', pending_space));
                pending_space = 0;
                started = true;
                quoted = !quoted;
            }
            b'\\' => {
                let e = *data.get(*i)?;
                *i += 1;
                let decoded = match e {
                    b'\n' => continue,
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'b' => 8,
                    b'\\' | b'"' => e,
                    _ => return None,
                };
                value.extend(std::iter::repeat_n(b' ', pending_space));
                pending_space = 0;
                started = true;
                value.push(decoded);
            }
            b'\r' if !quoted => {}
            _ => {
                value.extend(std::iter::repeat_n(b' ', pending_space));
                pending_space = 0;
                started = true;
                value.push(c);
            }
        }
    }
    if quoted {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(data: &str) -> Option<MsgId> {
        check(data.as_bytes()).err().map(|f| f.id)
    }

    #[test]
    fn good_files_pass() {
        let good = "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n\
                    [submodule \"rel\"] ; comment\n  path = \"deps/rel\"\n  url = ../rel.git # x\n\
                    [core]\n\tbare\n";
        assert_eq!(id_of(good), None);
        // Unparseable files are accepted, as in git.
        assert_eq!(id_of("[submodule \"x\"\n url = -bad"), None);
    }

    #[test]
    fn dangerous_entries_are_refused() {
        for (text, want) in [
            (
                "[submodule \"x\"]\n url = --upload-pack=touch /tmp/pwned\n",
                MsgId::GitmodulesUrl,
            ),
            (
                "[submodule \"x\"]\n url = \"-oProxyCommand=x\"\n",
                MsgId::GitmodulesUrl,
            ),
            (
                "[submodule \"x\"]\n url = ../../:evil\n",
                MsgId::GitmodulesUrl,
            ),
            ("[submodule \"x\"]\n url = ./a%0ab\n", MsgId::GitmodulesUrl),
            (
                "[submodule \"x\"]\n url = https:///example.com/x\n",
                MsgId::GitmodulesUrl,
            ),
            ("[submodule \"x\"]\n path = -x\n", MsgId::GitmodulesPath),
            (
                "[submodule \"x\"]\n update = !rm -rf /\n",
                MsgId::GitmodulesUpdate,
            ),
            (
                "[submodule \"../../modules/evil\"]\n path = a\n",
                MsgId::GitmodulesName,
            ),
            (
                "[submodule \"a\\\\..\"]\n path = a\n",
                MsgId::GitmodulesName,
            ),
            ("[submodule.x]\n url = -x\n", MsgId::GitmodulesUrl),
        ] {
            assert_eq!(id_of(text), Some(want), "{text:?}");
        }
    }
}
