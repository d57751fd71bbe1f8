//! A webhook receiver on loopback: records every request and answers as told (a status, after
//! a delay if asked), so tests can check payloads, signatures, retries and timeouts.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Answer this status at once.
    Status(u16),
    /// Wait, then answer this status.
    After(Duration, u16),
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path.
    pub path: String,
    /// Header names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    plan: VecDeque<Reply>,
}

/// The receiver.
pub struct Receiver {
    /// Where it listens: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Listen on a free port; every request is answered 200 unless [`Receiver::plan`] says
    /// otherwise.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Receiver { url, state }
    }

    /// Answer the next requests with `replies`, in order (then 200 again).
    pub fn plan(&self, replies: &[Reply]) {
        self.state
            .lock()
            .unwrap()
            .plan
            .extend(replies.iter().copied());
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests of one event kind (`X-GitHub-Event`).
    pub fn of_event(&self, event: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.header("x-github-event") == event)
            .collect()
    }

    /// Wait until `n` requests of `event` arrived; whether they did within `max`.
    pub fn wait_for(&self, event: &str, n: usize, max: Duration) -> bool {
        crate::process::eventually(max, || self.of_event(event).len() >= n)
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = {
            let mut s = state.lock().unwrap();
            s.received.push(Received {
                path,
                headers,
                body,
                at: Instant::now(),
            });
            s.plan.pop_front().unwrap_or(Reply::Status(200))
        };
        let status = match reply {
            Reply::Status(s) => s,
            Reply::After(wait, s) => {
                std::thread::sleep(wait);
                s
            }
        };
        let mut out = stream.try_clone().unwrap();
        let text = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"
        );
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// HMAC-SHA256 of `parts` under `key`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Both signature schemes, checked as receivers check them.
pub fn assert_signed(r: &Received, secret: &str) {
    let expected: String = hmac(secret.as_bytes(), &[&r.body])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        r.header("x-hub-signature-256"),
        format!("sha256={expected}")
    );
    if let Some(encoded) = secret.strip_prefix("whsec_") {
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let (id, ts) = (r.header("webhook-id"), r.header("webhook-timestamp"));
        assert_eq!(id, r.header("x-github-delivery"));
        let mac = hmac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", &r.body]);
        let sig = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        );
        assert_eq!(r.header("webhook-signature"), sig);
        let age = ts.parse::<i64>().unwrap()
            - std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
        assert!(age.abs() < 600, "timestamp {ts}");
    } else {
        assert_eq!(r.header("webhook-signature"), "");
    }
    assert_eq!(r.header("content-type"), "application/json");
}
