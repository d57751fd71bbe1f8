//! Raw HTTP with curl, for requests stock git would never send.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

pub fn curl_post(url: &str, content_type: &str, body: &[u8], extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("body");
    std::fs::write(&input, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .args(extra)
        .arg("--data-binary")
        .arg(format!("@{}", input.display()))
        .arg(url)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (status, body)
}

/// A pkt-line.
pub fn pkt(line: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", line.len() + 4).into_bytes();
    v.extend_from_slice(line.as_bytes());
    v
}

/// The HTTP status of a GET of `url` (the path sent as is), with `token` as Basic password.
pub fn http_status(url: &str, token: Option<&str>) -> u16 {
    http_get_to(url, token, Path::new("/dev/null"))
}

/// GET `url` (the path sent as is) with `token` as Basic password, the body into `dest`; the
/// HTTP status.
pub fn http_get_to(url: &str, token: Option<&str>, dest: &Path) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o"])
        .arg(dest)
        .args(["-w", "%{http_code}", "--path-as-is"]);
    if let Some(t) = token {
        cmd.args(["-u", &format!("git:{t}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}
