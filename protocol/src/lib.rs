//! The git wire protocol, as spoken over Smart HTTP, with no I/O policy and no storage.
//!
//! A git conversation is a stream of [`pktline`] packets. Discovery answers with a ref
//! [`advertisement`]; `git-upload-pack` requests are parsed into an [`upload_pack::FetchRequest`]
//! (v0/v1 and v2 alike) and negotiated by [`negotiate`]; `git-receive-pack` requests are parsed
//! into [`receive_pack::PushRequest`] and answered with a report-status. Large payloads are
//! multiplexed on [`sideband`] channels. Everything here works on byte slices or `std::io`
//! readers, so the server decides where bytes come from and go to.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod advertisement;
pub mod capabilities;
pub mod negotiate;
pub mod pktline;
pub mod receive_pack;
pub mod sideband;
pub mod upload_archive;
pub mod upload_pack;

pub use gix_hash::ObjectId;

/// Everything that can go wrong while reading a client's request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error while reading the request: {0}")]
    /// Reading the request body failed.
    Io(#[from] std::io::Error),
    #[error("invalid pkt-line length header {0:?}")]
    /// A pkt-line length header that is not four hex digits (or is 0002/0003).
    InvalidLength([u8; 4]),
    #[error("pkt-line of {0} bytes exceeds the maximum of 65520")]
    /// A pkt-line longer than the protocol allows.
    TooLong(usize),
    #[error("the request ended in the middle of a pkt-line")]
    /// The body ended inside a pkt-line or before the request's end.
    Truncated,
    #[error("protocol error: {0}")]
    /// A request that breaks the protocol; the text says how.
    Protocol(String),
    #[error("the request exceeds the server's limit on {0}")]
    /// A request over one of the server's limits, named.
    Limit(&'static str),
    #[error("could not read the repository: {0}")]
    /// The repository could not be read while answering.
    Storage(String),
}

/// The result of reading a request.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Refuse `ids` that are not of the repository's object format `expected` (a SHA-1 id sent
/// to a SHA-256 repository, or the reverse), in the words git's own parser uses.
pub fn check_object_format<'a>(
    expected: gix_hash::Kind,
    ids: impl IntoIterator<Item = &'a ObjectId>,
) -> Result<()> {
    match ids.into_iter().find(|id| id.kind() != expected) {
        None => Ok(()),
        Some(id) => Err(Error::Protocol(format!(
            "expected to get a {expected} object id, not '{id}'"
        ))),
    }
}

/// Parse an object id written in hex, as every id on the wire is: 40 digits for SHA-1, 64
/// for SHA-256. Whether it is of the repository's format is for the caller to check (the
/// parsers here know no repository): see [`check_object_format`].
pub fn parse_oid(hex: &[u8]) -> Result<ObjectId> {
    if hex.len() != 40 && hex.len() != 64 {
        return Err(Error::Protocol(format!(
            "expected an object id of 40 or 64 hex digits, got {:?}",
            String::from_utf8_lossy(hex.get(..80).unwrap_or(hex))
        )));
    }
    ObjectId::from_hex(hex).map_err(|_| {
        Error::Protocol(format!(
            "invalid object id {:?}",
            String::from_utf8_lossy(hex)
        ))
    })
}
