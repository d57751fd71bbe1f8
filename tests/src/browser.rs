//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`): start a
//! browser, go to pages, find and click elements, read what a visitor sees, run a script in
//! the page, take screenshots and wait for downloads. The WebDriver protocol is JSON over
//! HTTP, spoken here with curl like the rest of the harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

/// The browser and driver binaries.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session.
pub struct Browser {
    driver: Child,
    endpoint: String,
    session: String,
    downloads: TempDir,
    _profile: TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn request(method: &str, url: &str, body: Option<&Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-X",
        method,
        url,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(body) = body {
        cmd.args(["--data-binary", &body.to_string()]);
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

impl Browser {
    /// Whether the browser and its driver are installed (`.ci/run` installs them).
    pub fn available() -> bool {
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
    }

    /// Start chromedriver and a headless browser session with a fresh profile, downloads
    /// going to a folder of its own.
    pub fn start() -> Browser {
        assert!(
            Browser::available(),
            "{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while request("GET", &format!("{endpoint}/status"), None)["value"]["ready"] != json!(true) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (downloads, profile) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads.path().to_str().unwrap(),
                    "download.prompt_for_download": false,
                    "safebrowsing.enabled": false,
                },
            },
        }}});
        let answer = request("POST", &format!("{endpoint}/session"), Some(&caps));
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_owned();
        let browser = Browser {
            driver,
            endpoint,
            session,
            downloads,
            _profile: profile,
        };
        // Downloads without asking, into the folder, in headless mode too.
        browser.call(
            "POST",
            "goog/cdp/execute",
            Some(json!({"cmd": "Browser.setDownloadBehavior", "params": {
                "behavior": "allow",
                "downloadPath": browser.downloads.path().to_str().unwrap(),
            }})),
        );
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}/{path}", self.endpoint, self.session);
        let answer = request(method, &url, Some(&body.unwrap_or(json!({}))));
        answer["value"].clone()
    }

    fn checked(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let value = self.call(method, path, body);
        assert!(
            value.get("error").is_none(),
            "webdriver {path}: {value} (on {})",
            self.url()
        );
        value
    }

    /// Go to `url` and wait for the page to load.
    pub fn goto(&self, url: &str) {
        self.checked("POST", "url", Some(json!({"url": url})));
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        let url = format!("{}/session/{}/url", self.endpoint, self.session);
        request("GET", &url, None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.checked("GET", "title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn element(&self, css: &str) -> Option<String> {
        let value = self.call(
            "POST",
            "element",
            Some(json!({"using": "css selector", "value": css})),
        );
        value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|_| value.get("error").is_none())
    }

    /// Whether an element matches `css`.
    pub fn exists(&self, css: &str) -> bool {
        self.element(css).is_some()
    }

    /// The element `css`, waited for (a click may still be loading the page that has it).
    fn must(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.element(css) {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css:?} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the page's URL is `url` (a form's redirect may still be under way).
    pub fn wait_for_url(&self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.url() != url {
            assert!(
                Instant::now() < deadline,
                "still on {}, not {url}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Click the element `css` (and wait for a page it loads).
    pub fn click(&self, css: &str) {
        let id = self.must(css);
        self.checked("POST", &format!("element/{id}/click"), None);
    }

    /// Click the link whose text is exactly `text`.
    pub fn click_link(&self, text: &str) {
        let value = self.checked(
            "POST",
            "element",
            Some(json!({"using": "link text", "value": text})),
        );
        let id = value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        self.checked("POST", &format!("element/{id}/click"), None);
    }

    /// The visible text of the element `css`.
    pub fn text(&self, css: &str) -> String {
        let id = self.must(css);
        self.checked("GET", &format!("element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute of the element `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let id = self.must(css);
        self.checked("GET", &format!("element/{id}/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Type `text` into the element `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.must(css);
        self.checked(
            "POST",
            &format!("element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Run `script` (a function body; `return` gives the value) in the page.
    pub fn script(&self, script: &str) -> Value {
        self.checked(
            "POST",
            "execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The browser's cookies for the page's site.
    pub fn cookies(&self) -> Value {
        self.checked("GET", "cookie", None)
    }

    /// Save a screenshot of the page as PNG at `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self.checked("GET", "screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The folder downloads go to.
    pub fn downloads(&self) -> &Path {
        self.downloads.path()
    }

    /// Wait for the download `name` to finish; its bytes.
    pub fn downloaded(&self, name: &str) -> Vec<u8> {
        let path: PathBuf = self.downloads.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let partial = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".crdownload"));
            if path.exists() && !partial {
                return std::fs::read(&path).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "{name} was not downloaded (folder: {:?})",
                std::fs::read_dir(self.downloads.path())
                    .unwrap()
                    .filter_map(Result::ok)
                    .map(|e| e.file_name())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.endpoint, self.session);
        request("DELETE", &url, None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
