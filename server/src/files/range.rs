//! `Range`, `If-None-Match` and `If-Range` as RFC 9110 reads them, for one representation
//! with a strong entity tag.
//!
//! Only single byte ranges are served: a request for several gets the whole file, which the
//! RFC allows and which keeps a request for thousands of tiny ranges from costing more than
//! the file.

/// The part of a file an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All of it (`200`).
    Whole,
    /// `len` bytes from `start` (`206`).
    Range {
        /// The first byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// A range that starts past the end (`416`).
    Unsatisfiable,
}

/// Which part of a file of `size` bytes a `Range` header asks for; a header this server does
/// not serve (another unit, several ranges, a malformed one) asks for the whole file.
pub fn part(range: Option<&str>, size: u64) -> Part {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Part::Whole;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Part::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // A suffix: the last N bytes.
        (true, _, Some(n)) => match (n, size) {
            (0, _) | (_, 0) => Part::Unsatisfiable,
            (n, size) => {
                let len = n.min(size);
                Part::Range {
                    start: size - len,
                    len,
                }
            }
        },
        (false, Some(start), None) if last.trim().is_empty() => match start < size {
            true => Part::Range {
                start,
                len: size - start,
            },
            false => Part::Unsatisfiable,
        },
        (false, Some(start), Some(end)) if start <= end => match start < size {
            true => Part::Range {
                start,
                len: end.min(size - 1) - start + 1,
            },
            false => Part::Unsatisfiable,
        },
        _ => Part::Whole,
    }
}

/// The entity tags of an `If-None-Match` or `If-Range` value, weak marks dropped.
fn tags(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|t| t.trim())
        .map(|t| t.strip_prefix("W/").unwrap_or(t))
}

/// `If-None-Match` holds `etag` (or `*`): the client has this representation (`304`).
pub fn none_match(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|v| v.trim() == "*" || tags(v).any(|t| t == etag))
}

/// Whether a `Range` is to be honoured under `If-Range`: with no `If-Range`, or one naming
/// this very representation by its (strong) tag. A date never matches: there is none.
pub fn range_applies(if_range: Option<&str>, etag: &str) -> bool {
    match if_range {
        None => true,
        Some(v) => v.trim() == etag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        let r = |start, len| Part::Range { start, len };
        assert_eq!(part(None, 10), Part::Whole);
        assert_eq!(part(Some("bytes=0-3"), 10), r(0, 4));
        assert_eq!(part(Some("bytes=5-"), 10), r(5, 5));
        assert_eq!(part(Some("bytes=5-100"), 10), r(5, 5));
        assert_eq!(part(Some("bytes=-3"), 10), r(7, 3));
        assert_eq!(part(Some("bytes=-30"), 10), r(0, 10));
        assert_eq!(part(Some("bytes=10-"), 10), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=10-20"), 10), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=-0"), 10), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=0-"), 0), Part::Unsatisfiable);
        // Not served as ranges: the whole file.
        assert_eq!(part(Some("bytes=0-1,3-4"), 10), Part::Whole);
        assert_eq!(part(Some("bytes=5-2"), 10), Part::Whole);
        assert_eq!(part(Some("bytes=-5-3"), 10), Part::Whole);
        assert_eq!(part(Some("bytes=a-b"), 10), Part::Whole);
        assert_eq!(part(Some("items=0-3"), 10), Part::Whole);
        assert_eq!(
            part(Some("bytes=99999999999999999999999-"), 10),
            Part::Whole
        );
        assert_eq!(
            part(Some("bytes=18446744073709551615-"), 10),
            Part::Unsatisfiable
        );
    }

    #[test]
    fn validators() {
        assert!(none_match(Some("\"a\", W/\"b\""), "\"b\""));
        assert!(none_match(Some("*"), "\"b\""));
        assert!(!none_match(Some("\"a\""), "\"b\""));
        assert!(!none_match(None, "\"b\""));
        assert!(range_applies(None, "\"b\""));
        assert!(range_applies(Some("\"b\""), "\"b\""));
        assert!(!range_applies(Some("W/\"b\""), "\"b\""));
        assert!(!range_applies(
            Some("Sat, 01 Jan 2000 00:00:00 GMT"),
            "\"b\""
        ));
    }
}
