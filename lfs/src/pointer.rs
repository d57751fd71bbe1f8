//! Pointer files: what a Git LFS file is in git (`git lfs pointer`, the pointer spec).
//!
//! ```text
//! version https://git-lfs.github.com/spec/v1
//! oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
//! size 12345
//! ```
//!
//! Parsed strictly: at most [`MAX_POINTER_SIZE`] bytes (a larger blob is never read as one),
//! `version` first, the other keys in sorted order, each once, every line ending in `\n`,
//! `oid` a `sha256:` of 64 lowercase hex digits, `size` a decimal number without sign or
//! leading zeros.

use crate::Oid;

/// Blobs larger than this are not pointers (what `git lfs` reads at most).
pub const MAX_POINTER_SIZE: usize = 1024;

const VERSION: &str = "https://git-lfs.github.com/spec/v1";
/// The spec's pre-release name, which `git lfs` still reads.
const HAWSER: &str = "https://hawser.github.com/spec/v1";

/// A parsed pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The object's SHA-256.
    pub oid: Oid,
    /// The object's size in bytes.
    pub size: u64,
}

impl Pointer {
    /// Parse a blob as a pointer; `None` when it is not one.
    pub fn parse(data: &[u8]) -> Option<Pointer> {
        if data.len() > MAX_POINTER_SIZE || data.last() != Some(&b'\n') {
            return None;
        }
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text[..text.len() - 1].split('\n');
        let version = lines.next()?.strip_prefix("version ")?;
        if version != VERSION && version != HAWSER {
            return None;
        }
        let mut oid = None;
        let mut size = None;
        let mut previous_key = "";
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            let key_ok = !key.is_empty()
                && key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !key_ok || key <= previous_key || value.is_empty() {
                return None;
            }
            previous_key = key;
            match key {
                "oid" => oid = Some(Oid::parse(value.strip_prefix("sha256:")?)?),
                "size" => {
                    if value.starts_with('0') && value != "0" {
                        return None;
                    }
                    if !value.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    size = Some(value.parse().ok()?);
                }
                // Extensions (`ext-0-name sha256:...`) and future keys are allowed.
                _ => {}
            }
        }
        Some(Pointer {
            oid: oid?,
            size: size?,
        })
    }

    /// The pointer file's content.
    pub fn encode(&self) -> String {
        format!(
            "version {VERSION}\noid sha256:{}\nsize {}\n",
            self.oid, self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid() -> String {
        "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393".into()
    }

    #[test]
    fn strict_pointers() {
        let good = format!("version {VERSION}\noid sha256:{}\nsize 12345\n", oid());
        let p = Pointer::parse(good.as_bytes()).unwrap_or_else(|| panic!("valid"));
        assert_eq!((p.oid.as_str(), p.size), (oid().as_str(), 12345));
        assert_eq!(p.encode(), good);
        let ext = format!(
            "version {VERSION}\next-0-foo sha256:{}\noid sha256:{}\nsize 0\n",
            oid(),
            oid()
        );
        assert!(Pointer::parse(ext.as_bytes()).is_some());
        for bad in [
            format!("version {VERSION}\noid sha256:{}\nsize 12345", oid()),
            format!("version {VERSION}\nsize 12345\noid sha256:{}\n", oid()),
            format!("version {VERSION}\noid sha256:{}\nsize 012\n", oid()),
            format!("version {VERSION}\noid sha256:{}\nsize -1\n", oid()),
            format!(
                "version {VERSION}\noid sha256:{}\nsize 99999999999999999999999\n",
                oid()
            ),
            format!("version {VERSION}\noid sha256:{}\n", oid()),
            format!("version {VERSION}\noid md5:{}\nsize 1\n", oid()),
            format!(
                "version {VERSION}\noid sha256:{}\nsize 1\n",
                oid().to_uppercase()
            ),
            format!("version {VERSION}\r\noid sha256:{}\nsize 1\n", oid()),
            format!("version other\noid sha256:{}\nsize 1\n", oid()),
            format!("oid sha256:{}\nversion {VERSION}\nsize 1\n", oid()),
            format!(
                "version {VERSION}\noid sha256:{}\noid sha256:{}\nsize 1\n",
                oid(),
                oid()
            ),
            format!(
                "version {VERSION}\noid sha256:{}\nsize 1\n{}",
                oid(),
                "x".repeat(1024)
            ),
        ] {
            assert_eq!(Pointer::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
