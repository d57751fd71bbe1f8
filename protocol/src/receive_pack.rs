//! `git-receive-pack` requests (commands, push options) and the report-status answer.

use std::io::Read;

use crate::capabilities::ClientCapabilities;
use crate::pktline::{write_flush, write_line, Packet, PktReader};
use crate::sideband::{write_band, Mode, DATA};
use crate::{parse_oid, Error, ObjectId, Result};

/// Limits on the part of a push that precedes the pack, checked line by line as it is read,
/// so that nothing larger than a limit is ever held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Ref updates in one push.
    pub max_commands: usize,
    /// Bytes of one ref name.
    pub max_ref_name: usize,
    /// Bytes of all ref names together.
    pub max_command_bytes: usize,
    /// `shallow` lines (the client's shallow commits).
    pub max_shallow: usize,
    /// Push options, each at most one pkt-line.
    pub max_push_options: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_commands: 100_000,
            max_ref_name: 4096,
            max_command_bytes: 16 << 20,
            max_shallow: 100_000,
            max_push_options: 1_000,
        }
    }
}

/// One `<old> <new> <ref>` line of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCommand {
    /// The ref's current value as the client saw it (null to create).
    pub old: ObjectId,
    /// The value to set (null to delete).
    pub new: ObjectId,
    /// The full ref name.
    pub name: String,
}

impl RefCommand {
    /// The command deletes the ref.
    pub fn is_delete(&self) -> bool {
        self.new.is_null()
    }
    /// The command creates the ref.
    pub fn is_create(&self) -> bool {
        self.old.is_null()
    }
}

/// The part of a push that precedes the pack data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    /// The ref updates, in the order sent.
    pub commands: Vec<RefCommand>,
    /// Capabilities from the first command line.
    pub capabilities: ClientCapabilities,
    /// `shallow` lines: the client's repository is shallow at these commits.
    pub shallows: Vec<ObjectId>,
    /// `git push -o` options, when `push-options` was negotiated.
    pub push_options: Vec<String>,
}

impl PushRequest {
    /// Read commands (and push options, when negotiated) from `reader`, leaving the pack data
    /// unread in it. `None` when the client sent only a flush (nothing to do). Every line is
    /// checked against `limits` as it arrives.
    pub fn read<R: Read>(reader: &mut PktReader<R>, limits: &Limits) -> Result<Option<Self>> {
        let mut req = PushRequest::default();
        let mut name_bytes = 0usize;
        loop {
            let packet = reader.read_required()?;
            let line = match packet {
                Packet::Flush => break,
                Packet::Data(_) => packet.line().unwrap_or_default(),
                _ => return Err(Error::Protocol("unexpected delimiter in commands".into())),
            };
            if let Some(hex) = line.strip_prefix(b"shallow ") {
                if req.shallows.len() >= limits.max_shallow {
                    return Err(Error::Limit("shallow lines"));
                }
                req.shallows.push(parse_oid(hex)?);
                continue;
            }
            let (command, caps) = match line.iter().position(|b| *b == 0) {
                Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
                None => (line, None),
            };
            if let Some(caps) = caps {
                if req.commands.is_empty() {
                    req.capabilities = ClientCapabilities::parse(caps);
                }
            }
            if req.commands.len() >= limits.max_commands {
                return Err(Error::Limit("ref updates in one push"));
            }
            let name_len = command.len().saturating_sub(82);
            if name_len > limits.max_ref_name {
                return Err(Error::Limit("bytes in a ref name"));
            }
            name_bytes += name_len;
            if name_bytes > limits.max_command_bytes {
                return Err(Error::Limit("bytes of ref names in one push"));
            }
            req.commands.push(parse_command(command)?);
        }
        if req.commands.is_empty() {
            return Ok(None);
        }
        if req.capabilities.has("push-options") {
            loop {
                let packet = reader.read_required()?;
                match packet {
                    Packet::Flush => break,
                    Packet::Data(_) => {
                        if req.push_options.len() >= limits.max_push_options {
                            return Err(Error::Limit("push options"));
                        }
                        let line = packet.line().unwrap_or_default();
                        req.push_options
                            .push(String::from_utf8_lossy(line).into_owned());
                    }
                    _ => return Err(Error::Protocol("unexpected packet in push options".into())),
                }
            }
        }
        Ok(Some(req))
    }

    /// Whether a pack follows the commands (git sends none when every command is a delete).
    pub fn expects_pack(&self) -> bool {
        self.commands.iter().any(|c| !c.is_delete())
    }

    /// The side-band the report goes in.
    pub fn sideband(&self) -> Mode {
        if self.capabilities.has("side-band-64k") {
            Mode::Large
        } else {
            Mode::None
        }
    }
}

fn parse_command(line: &[u8]) -> Result<RefCommand> {
    let bad = || {
        let shown: String = String::from_utf8_lossy(line).chars().take(120).collect();
        Error::Protocol(format!("invalid ref update command {shown:?}"))
    };
    // `<old> <new> <name>`, ids of 40 (SHA-1) or 64 (SHA-256) digits, both of one format.
    let mut parts = line.splitn(3, |b| *b == b' ');
    let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if old.len() != new.len() || name.is_empty() {
        return Err(bad());
    }
    let old = parse_oid(old)?;
    let new = parse_oid(new)?;
    let name = std::str::from_utf8(name).map_err(|_| bad())?;
    Ok(RefCommand {
        old,
        new,
        name: name.to_owned(),
    })
}

/// The outcome of one ref update, for report-status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// The ref.
    pub name: String,
    /// `None` when applied, or the reason git prints after `[remote rejected]`.
    pub error: Option<String>,
}

/// Write the report-status (v1 and v2 read the same lines for plain updates), wrapped in
/// side-band 1 when negotiated.
pub fn write_report(
    out: &mut Vec<u8>,
    sideband: Mode,
    unpack_error: Option<&str>,
    results: &[CommandResult],
) {
    let mut report = Vec::new();
    match unpack_error {
        None => write_line(&mut report, "unpack ok"),
        Some(e) => write_line(&mut report, &format!("unpack {}", one_line(e))),
    }
    for r in results {
        match &r.error {
            None => write_line(&mut report, &format!("ok {}", r.name)),
            Some(e) => write_line(&mut report, &format!("ng {} {}", r.name, one_line(e))),
        }
    }
    write_flush(&mut report);
    if sideband == Mode::None {
        out.extend_from_slice(&report);
    } else {
        write_band(out, sideband, DATA, &report);
        write_flush(out);
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::write_data;

    const A: &str = "1111111111111111111111111111111111111111";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn commands_caps_and_options() -> Result<()> {
        let mut body = Vec::new();
        write_data(
            &mut body,
            format!("{Z} {A} refs/heads/main\0report-status side-band-64k push-options\n")
                .as_bytes(),
        );
        write_line(&mut body, &format!("{A} {Z} refs/heads/old"));
        write_flush(&mut body);
        write_line(&mut body, "ci.skip");
        write_flush(&mut body);
        body.extend_from_slice(b"PACK");
        let mut reader = PktReader::new(&body[..]);
        let req = PushRequest::read(&mut reader, &Limits::default())?.ok_or(Error::Truncated)?;
        assert_eq!(req.commands.len(), 2);
        assert!(req.commands[0].is_create());
        assert!(req.commands[1].is_delete());
        assert_eq!(req.push_options, vec!["ci.skip".to_string()]);
        assert_eq!(req.sideband(), Mode::Large);
        let mut rest = Vec::new();
        reader.into_inner().read_to_end(&mut rest)?;
        assert_eq!(rest, b"PACK");
        Ok(())
    }

    #[test]
    fn sha256_commands_parse_and_mixed_lengths_do_not() {
        let (z, a) = ("0".repeat(64), "a".repeat(64));
        let read = |line: String| {
            let mut body = Vec::new();
            write_line(&mut body, &line);
            write_flush(&mut body);
            PushRequest::read(&mut PktReader::new(&body[..]), &Limits::default())
        };
        let req = read(format!(
            "{z} {a} refs/heads/main\0report-status object-format=sha256"
        ));
        let command = &req.ok().flatten().map(|r| r.commands).unwrap_or_default()[0];
        assert_eq!(command.new.kind(), gix_hash::Kind::Sha256);
        assert_eq!(command.name, "refs/heads/main");
        assert!(read(format!("{Z} {a} refs/heads/main")).is_err());
        assert!(read(format!("{} {} refs/heads/main", &z[1..], &a[1..])).is_err());
        assert!(read(format!("{z} {a} ")).is_err());
        assert!(read(format!("{z} {a}")).is_err());
    }

    #[test]
    fn rejects_malformed_command() {
        let mut body = Vec::new();
        write_line(&mut body, "not a command");
        write_flush(&mut body);
        assert!(PushRequest::read(&mut PktReader::new(&body[..]), &Limits::default()).is_err());
    }

    #[test]
    fn limits_are_checked_line_by_line() {
        let limits = Limits {
            max_commands: 2,
            max_ref_name: 20,
            max_command_bytes: 30,
            max_shallow: 1,
            max_push_options: 1,
        };
        let read = |lines: &[String]| {
            let mut body = Vec::new();
            for l in lines {
                write_line(&mut body, l);
            }
            write_flush(&mut body);
            PushRequest::read(&mut PktReader::new(&body[..]), &limits)
        };
        let cmd = |name: &str| format!("{Z} {A} {name}");
        assert!(read(&[cmd("refs/heads/a"), cmd("refs/heads/b")]).is_ok());
        let too_many = read(&[
            cmd("refs/heads/a"),
            cmd("refs/heads/b"),
            cmd("refs/heads/c"),
        ]);
        assert!(matches!(too_many, Err(Error::Limit(_))));
        assert!(matches!(
            read(&[cmd("refs/heads/a-very-long-name")]),
            Err(Error::Limit(_))
        ));
        assert!(matches!(
            read(&[cmd("refs/heads/abcdefghi"), cmd("refs/heads/jklmnopqr")]),
            Err(Error::Limit(_))
        ));
        let shallow = |n: u8| {
            format!(
                "shallow {}",
                std::iter::repeat_n(char::from(b'0' + n), 40).collect::<String>()
            )
        };
        assert!(matches!(
            read(&[shallow(1), shallow(2), cmd("refs/heads/a")]),
            Err(Error::Limit(_))
        ));
    }

    #[test]
    fn report_with_sideband() {
        let mut out = Vec::new();
        write_report(
            &mut out,
            Mode::Large,
            None,
            &[CommandResult {
                name: "refs/heads/main".into(),
                error: Some("fetch first".into()),
            }],
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("unpack ok"));
        assert!(text.contains("ng refs/heads/main fetch first"));
        assert!(text.ends_with("0000"));
    }
}
