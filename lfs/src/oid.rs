//! Object ids: the SHA-256 of a file, as 64 lowercase hex digits.

use sha2::Digest;

/// An LFS object id. Only ever built from 64 lowercase hex digits, so it is safe in a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(String);

impl Oid {
    /// Check `s` is an oid as the LFS spec writes it.
    pub fn parse(s: &str) -> Option<Oid> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Oid(s.to_owned()))
    }

    /// The id of `data`.
    pub fn of(data: &[u8]) -> Oid {
        Oid(hex::encode(sha2::Sha256::digest(data)))
    }

    /// The id a finished hasher computed.
    pub fn from_hasher(hasher: sha2::Sha256) -> Oid {
        Oid(hex::encode(hasher.finalize()))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_hex_of_64_digits() {
        let empty = Oid::of(b"");
        assert_eq!(
            empty.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Oid::parse(empty.as_str()), Some(empty.clone()));
        for bad in [
            "",
            "abc",
            &empty.as_str().to_uppercase(),
            &format!("{}0", empty),
            "../../../etc/passwd/../../../../../../../../../../../../../x",
        ] {
            assert_eq!(Oid::parse(bad), None, "{bad}");
        }
    }
}
