//! git's delta format: the base's size, the result's size, then copy and insert instructions.
//!
//! gix-pack has an applier but keeps it crate-private; this one is as strict: every copy must
//! lie inside the base, and the result must be exactly the declared size. Used by the indexer
//! on received packs (where a bad delta is the client's fault) and by the reader on stored
//! packs (where it is corruption), so it names what is wrong and lets each caller say whose.

/// What is wrong with a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DeltaError(pub(crate) &'static str);

type Result<T> = std::result::Result<T, DeltaError>;

fn invalid(message: &'static str) -> DeltaError {
    DeltaError(message)
}

/// A varint of the delta header, and the bytes it took.
fn varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The (base size, result size) a delta declares, and where its instructions start.
fn header(delta: &[u8]) -> Result<(u64, u64, usize)> {
    let bad = || invalid("a delta's header is truncated or malformed");
    let (base, n) = varint(delta).ok_or_else(bad)?;
    let (result, m) = varint(&delta[n..]).ok_or_else(bad)?;
    Ok((base, result, n + m))
}

/// The (base size, result size) a delta declares, from its first bytes.
pub(crate) fn sizes(delta: &[u8]) -> Result<(u64, u64)> {
    let (base, result, _) = header(delta)?;
    Ok((base, result))
}

/// Apply `delta` to `base`, writing the result into `out` (cleared first; its capacity must
/// already be the declared result size, so nothing is allocated here).
pub(crate) fn apply(base: &[u8], delta: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (base_size, result_size, start) = header(delta)?;
    if base_size != base.len() as u64 {
        return Err(invalid(
            "a delta's base has another size than the delta declares",
        ));
    }
    out.clear();
    let mut i = start;
    let bad_copy = || invalid("a delta copies from outside its base");
    while let Some(&cmd) = delta.get(i) {
        i += 1;
        if cmd & 0x80 != 0 {
            let mut offset = 0u64;
            let mut size = 0u64;
            for bit in 0..4 {
                if cmd & (1 << bit) != 0 {
                    offset |= u64::from(*delta.get(i).ok_or_else(bad_copy)?) << (8 * bit);
                    i += 1;
                }
            }
            for bit in 0..3 {
                if cmd & (0x10 << bit) != 0 {
                    size |= u64::from(*delta.get(i).ok_or_else(bad_copy)?) << (8 * bit);
                    i += 1;
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset.checked_add(size).ok_or_else(bad_copy)?;
            let piece = base
                .get(offset as usize..end as usize)
                .ok_or_else(bad_copy)?;
            if (out.len() + piece.len()) as u64 > result_size {
                return Err(invalid("a delta produces more than its declared size"));
            }
            out.extend_from_slice(piece);
        } else if cmd != 0 {
            let piece = delta
                .get(i..i + cmd as usize)
                .ok_or_else(|| invalid("a delta's inserted data is truncated"))?;
            i += cmd as usize;
            if (out.len() + piece.len()) as u64 > result_size {
                return Err(invalid("a delta produces more than its declared size"));
            }
            out.extend_from_slice(piece);
        } else {
            return Err(invalid("a delta uses the reserved instruction 0"));
        }
    }
    if out.len() as u64 != result_size {
        return Err(invalid("a delta produces less than its declared size"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_copies_and_inserts_strictly() {
        let base = b"hello world";
        // base 11, result 10: copy "hello" (offset 0, size 5), insert " you!".
        let delta = [11, 10, 0x90, 5, 5, b' ', b'y', b'o', b'u', b'!'];
        let mut out = Vec::with_capacity(10);
        assert!(apply(base, &delta, &mut out).is_ok());
        assert_eq!(out, b"hello you!");
        assert_eq!(sizes(&delta).ok(), Some((11, 10)));
        // Copy past the base's end.
        assert!(apply(base, &[11, 5, 0x91, 8, 5], &mut out).is_err());
        // More than declared.
        assert!(apply(base, &[11, 2, 0x90, 5], &mut out).is_err());
        // Less than declared.
        assert!(apply(base, &[11, 6, 0x90, 5], &mut out).is_err());
        // Wrong base size.
        assert!(apply(base, &[3, 5, 0x90, 5], &mut out).is_err());
        // Reserved instruction and truncations.
        assert!(apply(base, &[11, 1, 0], &mut out).is_err());
        assert!(apply(base, &[11, 3, 5, b'a'], &mut out).is_err());
        assert!(sizes(&[0x80, 0x80]).is_err());
        assert!(sizes(&[0xff; 12]).is_err());
    }
}
