//! Common-ancestor negotiation of upload-pack: which of the client's `have`s the server knows,
//! what to acknowledge, and when enough is known to send a pack ("ready").
//!
//! Over HTTP every round is a separate, stateless request that repeats the wants and the haves
//! already found common, so everything here is computed from one request alone.

use std::collections::{HashSet, VecDeque};

use crate::pktline::{write_delim, write_flush, write_line};
use crate::upload_pack::{FetchRequest, MultiAck};
use crate::{ObjectId, Result};

/// The view of the repository's history that negotiation needs.
pub trait History {
    /// Whether the repository has the object.
    fn has_object(&self, id: &ObjectId) -> Result<bool>;
    /// The commit time and parents of a commit; `None` when `id` is not a commit.
    fn commit(&self, id: &ObjectId) -> Result<Option<(i64, Vec<ObjectId>)>>;
    /// Follow annotated tags to the object they point at.
    fn peel(&self, id: &ObjectId) -> Result<ObjectId>;
}

/// What to do after the acknowledgements were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the pack now.
    SendPack,
    /// The round ends here; the client will send more haves.
    EndRound,
}

/// The haves the server has, and what they imply.
struct Common {
    /// Common haves, in the order the client sent them.
    acked: Vec<ObjectId>,
    /// Common commits and their parents: the client has all of these.
    they_have: HashSet<ObjectId>,
    oldest: Option<i64>,
}

impl Common {
    fn new() -> Self {
        Common {
            acked: Vec::new(),
            they_have: HashSet::new(),
            oldest: None,
        }
    }

    /// Record a have; `false` when the server does not have it.
    fn add(&mut self, history: &dyn History, id: &ObjectId) -> Result<bool> {
        if !history.has_object(id)? {
            return Ok(false);
        }
        if let Some((time, parents)) = history.commit(id)? {
            self.oldest = Some(self.oldest.map_or(time, |o| o.min(time)));
            self.they_have.insert(*id);
            self.they_have.extend(parents);
        }
        self.acked.push(*id);
        Ok(true)
    }

    /// Every want reaches something the client has, so a pack can be computed now.
    fn ready(&self, history: &dyn History, wants: &[ObjectId]) -> Result<bool> {
        if self.acked.is_empty() {
            return Ok(false);
        }
        let cutoff = self.oldest.unwrap_or(i64::MIN);
        for want in wants {
            let want = history.peel(want)?;
            if history.commit(&want)?.is_none() {
                continue;
            }
            if !self.reaches(history, want, cutoff)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn reaches(&self, history: &dyn History, from: ObjectId, cutoff: i64) -> Result<bool> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            if self.they_have.contains(&id) {
                return Ok(true);
            }
            if !seen.insert(id) {
                continue;
            }
            if let Some((time, parents)) = history.commit(&id)? {
                if time >= cutoff {
                    queue.extend(parents);
                }
            }
        }
        Ok(false)
    }
}

/// Process the haves of a stateless v0/v1 round and write the ACK/NAK lines git expects for
/// the negotiated multi-ack mode.
pub fn v0_acknowledge(
    req: &FetchRequest,
    history: &dyn History,
    out: &mut Vec<u8>,
) -> Result<Next> {
    let mode = req.options.multi_ack;
    let mut common = Common::new();
    let mut got_other = false;
    let mut sent_ready = false;
    let mut last: Option<ObjectId> = None;
    for have in &req.haves {
        if common.add(history, have)? {
            last = Some(*have);
            match mode {
                MultiAck::Detailed => write_line(out, &format!("ACK {have} common")),
                MultiAck::Basic => write_line(out, &format!("ACK {have} continue")),
                MultiAck::None if common.acked.len() == 1 => {
                    write_line(out, &format!("ACK {have}"))
                }
                MultiAck::None => {}
            }
        } else {
            got_other = true;
            if mode != MultiAck::None && common.ready(history, &req.wants)? {
                if mode == MultiAck::Detailed {
                    sent_ready = true;
                    write_line(out, &format!("ACK {have} ready"));
                } else {
                    write_line(out, &format!("ACK {have} continue"));
                }
            }
        }
    }
    if req.done {
        match (last, mode) {
            (Some(last), MultiAck::Basic | MultiAck::Detailed) => {
                write_line(out, &format!("ACK {last}"))
            }
            (Some(_), MultiAck::None) => {}
            (None, _) => write_line(out, "NAK"),
        }
        return Ok(Next::SendPack);
    }
    if let Some(last_id) = last {
        if mode == MultiAck::Detailed && !got_other && common.ready(history, &req.wants)? {
            sent_ready = true;
            write_line(out, &format!("ACK {last_id} ready"));
        }
    }
    if common.acked.is_empty() || mode != MultiAck::None {
        write_line(out, "NAK");
    }
    if req.options.no_done && sent_ready {
        if let Some(last) = last {
            write_line(out, &format!("ACK {last}"));
        }
        return Ok(Next::SendPack);
    }
    Ok(Next::EndRound)
}

/// Process the haves of a v2 `fetch` and write its `acknowledgments` section when needed.
pub fn v2_acknowledge(
    req: &FetchRequest,
    history: &dyn History,
    out: &mut Vec<u8>,
) -> Result<Next> {
    if !req.seen_haves {
        return Ok(Next::SendPack);
    }
    let mut common = Common::new();
    for have in &req.haves {
        common.add(history, have)?;
    }
    if req.done {
        return Ok(Next::SendPack);
    }
    write_line(out, "acknowledgments");
    if common.acked.is_empty() {
        write_line(out, "NAK");
    }
    for id in &common.acked {
        write_line(out, &format!("ACK {id}"));
    }
    if !req.options.wait_for_done && common.ready(history, &req.wants)? {
        write_line(out, "ready");
        write_delim(out);
        return Ok(Next::SendPack);
    }
    write_flush(out);
    Ok(Next::EndRound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A linear history 1 <- 2 <- 3 with commit times equal to the ids' first byte.
    struct Line(HashMap<ObjectId, (i64, Vec<ObjectId>)>);

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    impl Line {
        fn new() -> Self {
            Line(HashMap::from([
                (id(1), (1, vec![])),
                (id(2), (2, vec![id(1)])),
                (id(3), (3, vec![id(2)])),
            ]))
        }
    }

    impl History for Line {
        fn has_object(&self, i: &ObjectId) -> Result<bool> {
            Ok(self.0.contains_key(i))
        }
        fn commit(&self, i: &ObjectId) -> Result<Option<(i64, Vec<ObjectId>)>> {
            Ok(self.0.get(i).cloned())
        }
        fn peel(&self, i: &ObjectId) -> Result<ObjectId> {
            Ok(*i)
        }
    }

    fn request(haves: Vec<ObjectId>, done: bool, mode: MultiAck) -> FetchRequest {
        let mut req = FetchRequest {
            wants: vec![id(3)],
            haves,
            done,
            seen_haves: true,
            ..FetchRequest::default()
        };
        req.options.multi_ack = mode;
        req.options.no_done = true;
        req
    }

    #[test]
    fn detailed_ready_with_no_done_sends_pack() -> Result<()> {
        let mut out = Vec::new();
        let next = v0_acknowledge(
            &request(vec![id(2)], false, MultiAck::Detailed),
            &Line::new(),
            &mut out,
        )?;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(&format!("ACK {} common", id(2))));
        assert!(text.contains(&format!("ACK {} ready", id(2))));
        assert!(text.contains("NAK"));
        assert_eq!(next, Next::SendPack);
        Ok(())
    }

    #[test]
    fn unknown_haves_end_the_round_with_nak() -> Result<()> {
        let mut out = Vec::new();
        let next = v0_acknowledge(
            &request(vec![id(9)], false, MultiAck::Detailed),
            &Line::new(),
            &mut out,
        )?;
        assert_eq!(String::from_utf8_lossy(&out), "0008NAK\n");
        assert_eq!(next, Next::EndRound);
        Ok(())
    }

    #[test]
    fn v2_acks_and_ready() -> Result<()> {
        let mut out = Vec::new();
        let next = v2_acknowledge(
            &request(vec![id(9), id(1)], false, MultiAck::Detailed),
            &Line::new(),
            &mut out,
        )?;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("acknowledgments"));
        assert!(text.contains(&format!("ACK {}", id(1))));
        assert!(text.contains("ready"));
        assert!(text.ends_with("0001"));
        assert_eq!(next, Next::SendPack);
        Ok(())
    }
}
