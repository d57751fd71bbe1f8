//! `git-upload-pack` requests: the v0/v1 want/have exchange and the v2 command form.

use std::io::Read;

use crate::advertisement::LsRefsArgs;
use crate::capabilities::ClientCapabilities;
use crate::pktline::{Packet, PktReader};
use crate::sideband::Mode;
use crate::{parse_oid, Error, ObjectId, Result};

/// At most this many lines are accepted in one request: a bound on memory for a hostile client
/// while leaving room for the largest real negotiations (git sends at most a few thousand haves
/// per round).
pub const MAX_REQUEST_LINES: usize = 1_000_000;

/// How acknowledgements are sent in v0/v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiAck {
    #[default]
    /// Only the final ACK (or NAK).
    None,
    /// `multi_ack`: ACK `continue` for each common commit.
    Basic,
    /// `multi_ack_detailed`: ACK `common` and `ready`.
    Detailed,
}

/// What the client negotiated for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// How acknowledgements are sent (v0).
    pub multi_ack: MultiAck,
    /// `no-done`: the pack may follow a `ready` ACK without waiting for `done`.
    pub no_done: bool,
    /// `thin-pack`: deltas may use bases the client has and the pack lacks.
    pub thin_pack: bool,
    /// `ofs-delta`: deltas may name their base by offset.
    pub ofs_delta: bool,
    /// The side-band the pack goes in.
    pub sideband: Mode,
    /// `no-progress`: no messages on band 2.
    pub no_progress: bool,
    /// `include-tag`: send annotated tags of sent commits too.
    pub include_tag: bool,
    /// v2 `wait-for-done`: never send the pack before `done`.
    pub wait_for_done: bool,
    /// v2 `sideband-all`: every section in side-band packets.
    pub sideband_all: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            multi_ack: MultiAck::None,
            no_done: false,
            thin_pack: false,
            ofs_delta: false,
            sideband: Mode::None,
            no_progress: false,
            include_tag: false,
            wait_for_done: false,
            sideband_all: false,
        }
    }
}

/// A fetch (clone) request, in the same shape for every protocol version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// `want` lines: objects the client asks for.
    pub wants: Vec<ObjectId>,
    /// v2 `want-ref`: refs wanted by name, resolved by the server.
    pub want_refs: Vec<String>,
    /// `have` lines: commits the client has.
    pub haves: Vec<ObjectId>,
    /// Commits the client's repository is shallow at.
    pub shallows: Vec<ObjectId>,
    /// `deepen <n>`: history this many commits deep from the wants.
    pub depth: Option<u32>,
    /// `deepen-since <time>`: history newer than this (seconds since the epoch).
    pub deepen_since: Option<i64>,
    /// `deepen-not <ref>`: history not reachable from these refs.
    pub deepen_not: Vec<String>,
    /// `deepen-relative`: depth counted from the client's shallow boundary.
    pub deepen_relative: bool,
    /// `filter <spec>`: a partial clone's object filter.
    pub filter: Option<String>,
    /// The client has no more haves to send: the server must answer with a pack.
    pub done: bool,
    /// The v0 request had a have section (at least one flush after the wants).
    pub seen_haves: bool,
    /// How the answer is framed.
    pub options: FetchOptions,
    /// Every capability the client sent.
    pub capabilities: ClientCapabilities,
    /// v2 `packfile-uris <protocols>`: the URL schemes the client downloads packs over
    /// (at most [`MAX_URI_PROTOCOLS`]).
    pub packfile_uri_protocols: Vec<String>,
}

/// Schemes a client may name in `packfile-uris`.
pub const MAX_URI_PROTOCOLS: usize = 8;

impl FetchRequest {
    /// Whether the client asked for a shallow history or is shallow already.
    pub fn deepens(&self) -> bool {
        self.depth.is_some() || self.deepen_since.is_some() || !self.deepen_not.is_empty()
    }

    /// Parse a stateless v0/v1 request: wants with capabilities, shallow/deepen lines, a flush,
    /// then haves, flushes and maybe `done`.
    pub fn parse_v0(body: impl Read) -> Result<Self> {
        let mut reader = PktReader::new(body);
        let mut req = FetchRequest::default();
        let mut lines = 0usize;
        loop {
            let packet = match reader.read()? {
                None => return Ok(req),
                Some(p) => p,
            };
            let line = match packet {
                Packet::Flush => break,
                Packet::Data(_) => packet.line().unwrap_or_default(),
                _ => return Err(Error::Protocol("unexpected delimiter in want list".into())),
            };
            lines += 1;
            if lines > MAX_REQUEST_LINES {
                return Err(Error::Limit("lines in one request"));
            }
            if let Some(rest) = line.strip_prefix(b"want ") {
                // The id, then (on the first want) a space and the capabilities.
                let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
                let (hex, caps) = rest.split_at(end);
                req.wants.push(parse_oid(hex)?);
                if req.wants.len() == 1 {
                    req.capabilities = ClientCapabilities::parse(caps);
                }
            } else {
                req.parse_shallow_arg(line)?
                    .then_some(())
                    .ok_or_else(|| unexpected("want list", line))?;
            }
        }
        req.options = options_from_v0(&req.capabilities);
        if req.capabilities.has("deepen-relative") {
            req.deepen_relative = true;
        }
        loop {
            let packet = match reader.read()? {
                None => break,
                Some(p) => p,
            };
            match packet {
                Packet::Flush => req.seen_haves = true,
                Packet::Data(_) => {
                    let line = packet.line().unwrap_or_default();
                    lines += 1;
                    if lines > MAX_REQUEST_LINES {
                        return Err(Error::Limit("lines in one request"));
                    }
                    if let Some(hex) = line.strip_prefix(b"have ") {
                        req.haves.push(parse_oid(hex)?);
                        req.seen_haves = true;
                    } else if line == b"done" {
                        req.done = true;
                        break;
                    } else {
                        return Err(unexpected("have list", line));
                    }
                }
                _ => return Err(Error::Protocol("unexpected delimiter in have list".into())),
            }
        }
        Ok(req)
    }

    /// Parse the arguments of a v2 `fetch` command.
    pub fn parse_v2(command: &Command) -> Result<Self> {
        let mut req = FetchRequest {
            capabilities: command.capabilities.clone(),
            options: FetchOptions {
                multi_ack: MultiAck::Detailed,
                sideband: Mode::Large,
                ..FetchOptions::default()
            },
            ..FetchRequest::default()
        };
        for arg in &command.args {
            let line = arg.as_slice();
            if let Some(hex) = line.strip_prefix(b"want ") {
                req.wants.push(parse_oid(hex)?);
            } else if let Some(name) = line.strip_prefix(b"want-ref ") {
                req.want_refs.push(utf8(name)?);
            } else if let Some(hex) = line.strip_prefix(b"have ") {
                req.haves.push(parse_oid(hex)?);
                req.seen_haves = true;
            } else if req.parse_shallow_arg(line)? {
            } else {
                match line {
                    b"done" => req.done = true,
                    b"thin-pack" => req.options.thin_pack = true,
                    b"no-progress" => req.options.no_progress = true,
                    b"include-tag" => req.options.include_tag = true,
                    b"ofs-delta" => req.options.ofs_delta = true,
                    b"deepen-relative" => req.deepen_relative = true,
                    b"wait-for-done" => req.options.wait_for_done = true,
                    b"sideband-all" => req.options.sideband_all = true,
                    _ if line.starts_with(b"packfile-uris ") => {
                        let list = std::str::from_utf8(&line[b"packfile-uris ".len()..])
                            .map_err(|_| unexpected("fetch arguments", line))?;
                        let protocols: Vec<String> = list
                            .split(',')
                            .filter(|p| !p.is_empty())
                            .map(str::to_owned)
                            .collect();
                        if protocols.len() > MAX_URI_PROTOCOLS
                            || protocols.iter().any(|p| {
                                p.len() > 16 || !p.bytes().all(|b| b.is_ascii_alphanumeric())
                            })
                        {
                            return Err(unexpected("fetch arguments", line));
                        }
                        req.packfile_uri_protocols = protocols;
                    }
                    _ => return Err(unexpected("fetch arguments", line)),
                }
            }
        }
        Ok(req)
    }

    /// The lines shared by v0 and v2: shallow, deepen, deepen-since, deepen-not, filter.
    fn parse_shallow_arg(&mut self, line: &[u8]) -> Result<bool> {
        if let Some(hex) = line.strip_prefix(b"shallow ") {
            self.shallows.push(parse_oid(hex)?);
        } else if let Some(n) = line.strip_prefix(b"deepen ") {
            let depth: u32 = utf8(n)?
                .parse()
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| unexpected("deepen", line))?;
            self.depth = Some(depth);
        } else if let Some(ts) = line.strip_prefix(b"deepen-since ") {
            let ts: i64 = utf8(ts)?
                .parse()
                .ok()
                .filter(|t| *t != 0 && *t != -1)
                .ok_or_else(|| unexpected("deepen-since", line))?;
            self.deepen_since = Some(ts);
        } else if let Some(name) = line.strip_prefix(b"deepen-not ") {
            self.deepen_not.push(utf8(name)?);
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            self.filter = Some(utf8(spec)?);
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

fn options_from_v0(caps: &ClientCapabilities) -> FetchOptions {
    FetchOptions {
        multi_ack: if caps.has("multi_ack_detailed") {
            MultiAck::Detailed
        } else if caps.has("multi_ack") {
            MultiAck::Basic
        } else {
            MultiAck::None
        },
        no_done: caps.has("no-done"),
        thin_pack: caps.has("thin-pack"),
        ofs_delta: caps.has("ofs-delta"),
        sideband: if caps.has("side-band-64k") {
            Mode::Large
        } else if caps.has("side-band") {
            Mode::Small
        } else {
            Mode::None
        },
        no_progress: caps.has("no-progress"),
        include_tag: caps.has("include-tag"),
        wait_for_done: false,
        sideband_all: false,
    }
}

/// A protocol v2 command: `command=<name>`, capabilities, a delimiter, then arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// `command=<name>`.
    pub name: String,
    /// The capability lines before the delimiter.
    pub capabilities: ClientCapabilities,
    /// The argument lines after it.
    pub args: Vec<Vec<u8>>,
}

impl Command {
    /// Read one v2 command; `None` when the client sent nothing (or just a flush).
    pub fn read(body: impl Read) -> Result<Option<Self>> {
        let mut reader = PktReader::new(body);
        let mut command = Command::default();
        let mut in_args = false;
        let mut lines = 0usize;
        loop {
            let packet = match reader.read()? {
                None if command.name.is_empty() => return Ok(None),
                None => return Err(Error::Truncated),
                Some(p) => p,
            };
            match packet {
                Packet::Flush if command.name.is_empty() => return Ok(None),
                Packet::Flush => return Ok(Some(command)),
                Packet::Delim if !in_args => in_args = true,
                Packet::Data(_) => {
                    let line = packet.line().unwrap_or_default();
                    lines += 1;
                    if lines > MAX_REQUEST_LINES {
                        return Err(Error::Limit("lines in one request"));
                    }
                    if in_args {
                        command.args.push(line.to_vec());
                    } else if let Some(name) = line.strip_prefix(b"command=") {
                        command.name = utf8(name)?;
                    } else {
                        command.capabilities.push(&utf8(line)?);
                    }
                }
                _ => return Err(Error::Protocol("unexpected packet in command".into())),
            }
        }
    }

    /// The arguments of an `ls-refs` command; unknown ones are refused.
    pub fn ls_refs_args(&self) -> Result<LsRefsArgs> {
        let mut args = LsRefsArgs::default();
        for arg in &self.args {
            match arg.as_slice() {
                b"symrefs" => args.symrefs = true,
                b"peel" => args.peel = true,
                b"unborn" => args.unborn = true,
                line => {
                    if let Some(prefix) = line.strip_prefix(b"ref-prefix ") {
                        args.prefixes.push(utf8(prefix)?);
                    } else {
                        return Err(unexpected("ls-refs arguments", line));
                    }
                }
            }
        }
        Ok(args)
    }

    /// The ids an `object-info` command asks about, and whether it wants sizes.
    pub fn object_info_args(&self) -> Result<(bool, Vec<ObjectId>)> {
        let mut size = false;
        let mut ids = Vec::new();
        for arg in &self.args {
            match arg.as_slice() {
                b"size" => size = true,
                line => match line.strip_prefix(b"oid ") {
                    Some(hex) => ids.push(parse_oid(hex)?),
                    None => return Err(unexpected("object-info arguments", line)),
                },
            }
        }
        Ok((size, ids))
    }
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::Protocol("a request line is not valid UTF-8".into()))
}

fn unexpected(context: &str, line: &[u8]) -> Error {
    let shown: String = String::from_utf8_lossy(line).chars().take(80).collect();
    Error::Protocol(format!("unexpected line in {context}: {shown:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{write_data, write_delim, write_flush, write_line};

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn v0_request_with_caps_shallow_and_done() -> Result<()> {
        let mut body = Vec::new();
        write_data(
            &mut body,
            format!("want {A} multi_ack_detailed side-band-64k thin-pack ofs-delta no-done\n")
                .as_bytes(),
        );
        write_line(&mut body, &format!("shallow {B}"));
        write_line(&mut body, "deepen 3");
        write_flush(&mut body);
        write_line(&mut body, &format!("have {B}"));
        write_flush(&mut body);
        write_line(&mut body, "done");
        let req = FetchRequest::parse_v0(&body[..])?;
        assert_eq!(req.wants.len(), 1);
        assert_eq!(req.haves.len(), 1);
        assert_eq!(req.shallows.len(), 1);
        assert_eq!(req.depth, Some(3));
        assert!(req.done);
        assert_eq!(req.options.multi_ack, MultiAck::Detailed);
        assert_eq!(req.options.sideband, Mode::Large);
        assert!(req.options.no_done && req.options.thin_pack && req.options.ofs_delta);
        Ok(())
    }

    #[test]
    fn v0_rejects_garbage() {
        let mut body = Vec::new();
        write_line(&mut body, "wont 123");
        assert!(FetchRequest::parse_v0(&body[..]).is_err());
        let mut body = Vec::new();
        write_line(&mut body, "deepen -1");
        assert!(FetchRequest::parse_v0(&body[..]).is_err());
    }

    #[test]
    fn v2_fetch_command() -> Result<()> {
        let mut body = Vec::new();
        write_line(&mut body, "command=fetch");
        write_line(&mut body, "agent=git/2.47");
        write_delim(&mut body);
        write_line(&mut body, "thin-pack");
        write_line(&mut body, "ofs-delta");
        write_line(&mut body, &format!("want {A}"));
        write_line(&mut body, "deepen-since 1700000000");
        write_line(&mut body, "deepen-not refs/heads/old");
        write_line(&mut body, "done");
        write_flush(&mut body);
        let cmd = Command::read(&body[..])?.ok_or(Error::Truncated)?;
        assert_eq!(cmd.name, "fetch");
        let req = FetchRequest::parse_v2(&cmd)?;
        assert!(req.done && req.options.thin_pack && req.options.ofs_delta);
        assert_eq!(req.deepen_since, Some(1700000000));
        assert_eq!(req.deepen_not, vec!["refs/heads/old".to_string()]);
        Ok(())
    }

    #[test]
    fn packfile_uri_protocols() -> Result<()> {
        let fetch = |arg: &str| -> Result<FetchRequest> {
            let mut body = Vec::new();
            write_line(&mut body, "command=fetch");
            write_delim(&mut body);
            write_line(&mut body, &format!("want {A}"));
            write_line(&mut body, arg);
            write_flush(&mut body);
            let cmd = Command::read(&body[..])?.ok_or(Error::Truncated)?;
            FetchRequest::parse_v2(&cmd)
        };
        assert_eq!(
            fetch("packfile-uris https,http")?.packfile_uri_protocols,
            ["https", "http"]
        );
        assert!(fetch("packfile-uris ht tp").is_err());
        assert!(fetch(&format!("packfile-uris {}", "a,".repeat(9))).is_err());
        assert!(fetch(&format!("packfile-uris {}", "x".repeat(17))).is_err());
        Ok(())
    }
}
