//! The `Name <email> <seconds> <+zone>` line of authors, committers and taggers (git's
//! `fsck_ident`).

use super::{finding, Finding, MsgId};

/// Check the identity at the start of `line` (after `author `, `committer ` or `tagger `);
/// returns what follows its newline.
pub(super) fn check(line: &[u8]) -> Result<&[u8], Finding> {
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let rest = line.get(end + 1..).unwrap_or_default();
    let ident = &line[..end];
    let bad = |id, what: &str| {
        Err(finding(
            id,
            format!("invalid author/committer line - {what}"),
        ))
    };
    if ident.first() == Some(&b'<') {
        return bad(MsgId::MissingNameBeforeEmail, "missing space before email");
    }
    let lt = ident.iter().position(|b| *b == b'<' || *b == b'>');
    let p = match lt {
        Some(p) if ident[p] == b'>' => return bad(MsgId::BadName, "bad name"),
        Some(p) => p,
        None => return bad(MsgId::MissingEmail, "missing email"),
    };
    if p == 0 || ident[p - 1] != b' ' {
        return bad(MsgId::MissingSpaceBeforeEmail, "missing space before email");
    }
    let after = &ident[p + 1..];
    let close = match after.iter().position(|b| *b == b'<' || *b == b'>') {
        Some(q) if after[q] == b'>' => q,
        _ => return bad(MsgId::BadEmail, "bad email"),
    };
    let after = &after[close + 1..];
    let Some(date) = after.strip_prefix(b" ") else {
        return bad(MsgId::MissingSpaceBeforeDate, "missing space before date");
    };
    if date.first() == Some(&b'0') && date.get(1) != Some(&b' ') {
        return bad(MsgId::ZeroPaddedDate, "zero-padded date");
    }
    let digits = date.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut seconds: u64 = 0;
    for d in &date[..digits] {
        match seconds
            .checked_mul(10)
            .and_then(|s| s.checked_add(u64::from(d - b'0')))
        {
            Some(s) => seconds = s,
            None => {
                return bad(MsgId::BadDateOverflow, "date causes integer overflow");
            }
        }
    }
    if seconds > i64::MAX as u64 {
        return bad(MsgId::BadDateOverflow, "date causes integer overflow");
    }
    if digits == 0 || date.get(digits) != Some(&b' ') {
        return bad(MsgId::BadDate, "bad date");
    }
    let zone = &date[digits + 1..];
    let zone_ok = zone.len() == 5
        && (zone[0] == b'+' || zone[0] == b'-')
        && zone[1..].iter().all(u8::is_ascii_digit);
    if !zone_ok {
        return bad(MsgId::BadTimezone, "bad time zone");
    }
    Ok(rest)
}
