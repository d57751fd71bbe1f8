//! `git-upload-archive`: what `git archive --remote=<url>` asks for, and the framing of the
//! answer.
//!
//! The client sends its command line as `argument <arg>` packets and a flush; the server
//! answers `ACK` (or `NACK <reason>`) and a flush, then the archive on side-band 1 (a fatal
//! error on band 3) and a flush. Over HTTP this is one POST to `git-upload-archive` after a
//! protocol v2 discovery. Only the options `git archive` lets a remote ask for are read
//! (`--format`, `--prefix`, compression levels); anything else is refused, as git's own
//! `upload-archive` refuses it.

use std::io::Read;

use crate::pktline::{write_flush, write_line, Packet, PktReader};
use crate::Error;

/// Arguments accepted at most, and their longest.
const MAX_ARGUMENTS: usize = 64;
const MAX_ARGUMENT: usize = 4096;

/// What a remote archive request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveRequest {
    /// `--format=` (`tar` when not given).
    pub format: Option<String>,
    /// `--prefix=`.
    pub prefix: Option<String>,
    /// The tree-ish: a revision, optionally `<rev>:<path>`.
    pub tree_ish: String,
    /// Paths limiting the archive.
    pub paths: Vec<String>,
}

/// Why a request is refused: sent back as `NACK <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl ArchiveRequest {
    /// Read the argument packets up to the flush.
    pub fn read<R: Read>(reader: &mut PktReader<R>) -> Result<Result<Self, Unsupported>, Error> {
        let mut args = Vec::new();
        loop {
            match reader.read_required()? {
                Packet::Flush => break,
                Packet::Data(data) => {
                    if args.len() == MAX_ARGUMENTS {
                        return Ok(Err(Unsupported(format!(
                            "at most {MAX_ARGUMENTS} arguments"
                        ))));
                    }
                    let line = data.strip_suffix(b"\n").unwrap_or(data);
                    let Some(arg) = line.strip_prefix(b"argument ") else {
                        return Ok(Err(Unsupported("expected an argument".into())));
                    };
                    if arg.len() > MAX_ARGUMENT {
                        return Ok(Err(Unsupported("an argument is too long".into())));
                    }
                    let Ok(arg) = std::str::from_utf8(arg) else {
                        return Ok(Err(Unsupported("an argument is not UTF-8".into())));
                    };
                    args.push(arg.to_owned());
                }
                _ => return Ok(Err(Unsupported("unexpected packet".into()))),
            }
        }
        Ok(Self::parse(&args))
    }

    /// Make sense of `git archive`'s arguments.
    pub fn parse(args: &[String]) -> Result<Self, Unsupported> {
        let mut out = ArchiveRequest::default();
        let mut rest = Vec::new();
        let mut options_done = false;
        for arg in args {
            if options_done || !arg.starts_with('-') {
                rest.push(arg.clone());
                continue;
            }
            if arg == "--" {
                options_done = true;
            } else if let Some(f) = arg.strip_prefix("--format=") {
                out.format = Some(f.to_owned());
            } else if let Some(p) = arg.strip_prefix("--prefix=") {
                out.prefix = Some(p.to_owned());
            } else if arg.len() == 2 && arg.as_bytes()[1].is_ascii_digit() {
                // A compression level: the server's own is used.
            } else {
                return Err(Unsupported(format!("unsupported option {arg:?}")));
            }
        }
        let mut rest = rest.into_iter();
        out.tree_ish = rest
            .next()
            .ok_or_else(|| Unsupported("name a tree-ish to archive".into()))?;
        out.paths = rest.collect();
        Ok(out)
    }
}

/// The acknowledgement before the archive: `ACK` and a flush.
pub fn write_ack(out: &mut Vec<u8>) {
    write_line(out, "ACK");
    write_flush(out);
}

/// A refusal: `NACK <reason>` and a flush.
pub fn write_nack(out: &mut Vec<u8>, reason: &str) {
    write_line(out, &format!("NACK {reason}"));
    write_flush(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for a in args {
            write_line(&mut out, &format!("argument {a}"));
        }
        write_flush(&mut out);
        out
    }

    #[test]
    fn reads_what_git_archive_sends() {
        let body = request(&["--format=zip", "--prefix=p/", "-9", "main", "dir", "file"]);
        let got = ArchiveRequest::read(&mut PktReader::new(&body[..]))
            .unwrap()
            .unwrap();
        assert_eq!(got.format.as_deref(), Some("zip"));
        assert_eq!(got.prefix.as_deref(), Some("p/"));
        assert_eq!(got.tree_ish, "main");
        assert_eq!(got.paths, vec!["dir", "file"]);
        let refused = |args: &[&str]| {
            ArchiveRequest::read(&mut PktReader::new(&request(args)[..]))
                .unwrap()
                .is_err()
        };
        assert!(refused(&["--output=/etc/passwd", "main"]));
        assert!(refused(&["--exec=sh", "main"]));
        assert!(refused(&["--format=tar"]));
        let many: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(&many));
        // Truncated: an error, not a request.
        assert!(ArchiveRequest::read(&mut PktReader::new(&b"0010argument ma"[..])).is_err());
    }
}
