//! C git's `git http-backend` as a CGI of lighttpd, serving the bare repositories under one
//! directory (pushes allowed): the reference the benchmark compares against, and a second git
//! host for mirror tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::http::http_status;
use crate::process::eventually;

/// A running lighttpd with `git http-backend` at `{url}/<repo>.git`.
pub struct HttpBackend {
    child: Child,
    /// `http://127.0.0.1:<port>/git`.
    pub url: String,
    timings: Option<PathBuf>,
    _dir: TempDir,
}

impl HttpBackend {
    /// Serve the repositories under `root`.
    pub fn start(root: &Path) -> HttpBackend {
        HttpBackend::launch(root, false)
    }

    /// lighttpd serving the files under `root` as static files at `{url}/<name>` (the
    /// reference for serving files over HTTP).
    pub fn start_static(root: &Path) -> HttpBackend {
        let dir = TempDir::new().unwrap();
        let port = free_port();
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                "server.document-root = \"{}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n",
                root.display()
            ),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let child = run_lighttpd(&conf, &url);
        HttpBackend {
            child,
            url,
            timings: None,
            _dir: dir,
        }
    }

    /// Serve them with each CGI run measured by `/usr/bin/time` (see [`HttpBackend::take_usage`]).
    pub fn start_timed(root: &Path) -> HttpBackend {
        HttpBackend::launch(root, true)
    }

    fn launch(root: &Path, timed: bool) -> HttpBackend {
        let dir = TempDir::new().unwrap();
        let port = free_port();
        let backend = [
            "/usr/lib/git-core/git-http-backend",
            "/usr/local/libexec/git-core/git-http-backend",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("git-http-backend");
        let timings = timed.then(|| dir.path().join("timings"));
        let cgi = dir.path().join("git-http-backend.cgi");
        let exec = match &timings {
            Some(t) => format!(
                "exec /usr/bin/time -a -o {} -f '%U %S %M' {backend}",
                t.display()
            ),
            None => format!("exec {backend}"),
        };
        std::fs::write(&cgi, format!("#!/bin/sh\n{exec}\n")).unwrap();
        Command::new("chmod").arg("+x").arg(&cgi).status().unwrap();
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server.document-root = "{doc}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.max-request-size = 2097151
server.stream-request-body = 0
server.stream-response-body = 2
alias.url = ("/git/" => "{cgi}/")
cgi.assign = ("" => "")
setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1", "REMOTE_USER" => "tester")
"#,
                doc = dir.path().display(),
                cgi = cgi.display(),
                root = root.display(),
            ),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}/git");
        let child = run_lighttpd(&conf, &url);
        HttpBackend {
            child,
            url,
            timings,
            _dir: dir,
        }
    }

    /// CPU seconds and peak RSS (MiB) of the CGI runs since the last call (timed only).
    pub fn take_usage(&self) -> (f64, f64) {
        let Some(timings) = &self.timings else {
            return (0.0, 0.0);
        };
        let text = std::fs::read_to_string(timings).unwrap_or_default();
        let _ = std::fs::write(timings, "");
        let mut cpu = 0.0;
        let mut rss: f64 = 0.0;
        for line in text.lines() {
            let f: Vec<f64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if f.len() == 3 {
                cpu += f[0] + f[1];
                rss = rss.max(f[2] / 1024.0);
            }
        }
        (cpu, rss)
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// lighttpd with the configuration `conf`, once it answers at `url`.
fn run_lighttpd(conf: &Path, url: &str) -> std::process::Child {
    let child = Command::new("lighttpd")
        .args(["-D", "-f"])
        .arg(conf)
        .stdout(Stdio::null())
        .spawn()
        .expect("lighttpd (apt-get install lighttpd)");
    assert!(eventually(Duration::from_secs(10), || http_status(
        &format!("{url}/"),
        None
    ) != 0));
    child
}
