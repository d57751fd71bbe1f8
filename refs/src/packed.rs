//! git's `packed-refs` format, peeled tags included.

use std::collections::BTreeMap;

use gix_hash::ObjectId;

use crate::{Error, Result};

const HEADER: &str = "# pack-refs with: peeled fully-peeled sorted \n";

/// A ref's value: its target and, for annotated tags, what the tag peels to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefValue {
    /// The object the ref names.
    pub target: ObjectId,
    /// For an annotated tag, the non-tag object it finally points at (git's `^` line).
    pub peeled: Option<ObjectId>,
}

/// Parse a `packed-refs` file. Anything that is not a header, a ref line or a peel line makes
/// the whole file an error.
pub fn parse_packed_refs(data: &[u8]) -> Result<BTreeMap<String, RefValue>> {
    let text =
        std::str::from_utf8(data).map_err(|_| Error::Corrupt("packed-refs is not UTF-8".into()))?;
    let mut refs = BTreeMap::new();
    let mut last: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let bad = || Error::Corrupt(format!("packed-refs line {} is malformed", n + 1));
        if line.starts_with('#') && n == 0 {
            continue;
        }
        if let Some(hex) = line.strip_prefix('^') {
            let peeled = ObjectId::from_hex(hex.as_bytes()).map_err(|_| bad())?;
            let name = last.as_ref().ok_or_else(bad)?;
            if let Some(v) = refs.get_mut(name) {
                let v: &mut RefValue = v;
                v.peeled = Some(peeled);
            }
            continue;
        }
        let (hex, name) = line.split_once(' ').ok_or_else(bad)?;
        if hex.len() != 40 || name.is_empty() {
            return Err(bad());
        }
        let target = ObjectId::from_hex(hex.as_bytes()).map_err(|_| bad())?;
        refs.insert(
            name.to_owned(),
            RefValue {
                target,
                peeled: None,
            },
        );
        last = Some(name.to_owned());
    }
    Ok(refs)
}

/// Serialise refs in git's sorted, fully-peeled form.
pub fn write_packed_refs(refs: &BTreeMap<String, RefValue>) -> Vec<u8> {
    let mut out = String::with_capacity(HEADER.len() + refs.len() * 64);
    out.push_str(HEADER);
    for (name, value) in refs {
        out.push_str(&format!("{} {}\n", value.target, name));
        if let Some(peeled) = value.peeled {
            out.push_str(&format!("^{peeled}\n"));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_peeled_tag() -> Result<()> {
        let a = ObjectId::from_bytes_or_panic(&[1; 20]);
        let b = ObjectId::from_bytes_or_panic(&[2; 20]);
        let mut refs = BTreeMap::new();
        refs.insert(
            "refs/heads/main".to_string(),
            RefValue {
                target: a,
                peeled: None,
            },
        );
        refs.insert(
            "refs/tags/v1".to_string(),
            RefValue {
                target: b,
                peeled: Some(a),
            },
        );
        let data = write_packed_refs(&refs);
        assert!(String::from_utf8_lossy(&data)
            .starts_with("# pack-refs with: peeled fully-peeled sorted"));
        assert_eq!(parse_packed_refs(&data)?, refs);
        Ok(())
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse_packed_refs(b"xyz refs/heads/main\n").is_err());
        assert!(parse_packed_refs(b"^1111111111111111111111111111111111111111\n").is_err());
        assert!(parse_packed_refs(&[0xff, 0xfe]).is_err());
    }
}
