//! The web view in a real browser (headless Chromium over WebDriver), on both backends: a
//! visitor signs in with a token, clicks from the workspace to a file, its history, a commit
//! and its diff, downloads a file and an archive (compared with git's bytes), pages through a
//! large folder and a long history, merges a pull request; script payloads in a README, file
//! names, commit messages, branch names and pushed SVG/HTML files run nothing; a private
//! repository is not visible without the cookie; cross-site form posts are refused.
//!
//! With `ARTIFACT_GIT_SCREENSHOTS=<folder>`, the pages the README shows are saved there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::json;

use artifact_git_e2e::*;

/// A 2×2 PNG (red, green / blue, white).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a,
    0x73, 0x00, 0x00, 0x00, 0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
    0xf0, 0x1f, 0x08, 0x19, 0x18, 0xfe, 0xff, 0xff, 0x0f, 0x00, 0x3c, 0xfa, 0x06, 0xfa, 0x2a, 0x9e,
    0x4c, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

const README: &str = "# Site\n\nHello **world**, see [the guide](docs/guide.md).\n\n\
<script>window.pwned=1</script>\n\n<img src=x onerror=\"window.pwned=2\">\n\n\
[click me](javascript:window.pwned=3)\n\n![logo](img/logo.png)\n";

const MAIN_RS: &str = "//! A tiny program.\n\nfn main() {\n    let greeting = \"hello\";\n    println!(\"{greeting}, world\");\n}\n";

const HOSTILE_FILE: &str = "<img src=x onerror=window.pwned=4>.txt";
const HOSTILE_BRANCH: &str = "x\"><svg/onload=window.pwned=6>";

/// Nothing a payload would set is set.
fn assert_inert(b: &Browser) {
    let seen = b.script("return typeof window.pwned;");
    assert_eq!(seen, json!("undefined"), "a payload ran on {}", b.url());
}

/// The history pushed: files of every kind, payloads, a long history, branches and a tag.
fn build_source(git: &Git, src: &Path, rng: &mut Rng) -> Vec<u8> {
    let write = |path: &str, data: &[u8]| {
        let p = src.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    let binary = rng.bytes(100_000);
    write("README.md", README.as_bytes());
    write("docs/guide.md", b"# Guide\n\nRead me.\n");
    write("src/main.rs", MAIN_RS.as_bytes());
    write("img/logo.png", PNG);
    write("data.bin", &binary);
    write(HOSTILE_FILE, b"hi\n");
    write(
        "evil.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>window.pwned=7;parent.pwned=7</script></svg>",
    );
    write(
        "evil.html",
        b"<script>window.pwned=8;parent.pwned=8</script>",
    );
    for i in 0..1200 {
        write(&format!("many/f{i:04}.txt"), format!("{i}\n").as_bytes());
    }
    write(
        ".gitattributes",
        b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
    );
    write("model.safetensors", &rng.bytes(300_000));
    git.ok(src, &["add", "-A"]);
    git.ok(src, &["commit", "-q", "-m", "first"]);
    git.ok(src, &["tag", "v1.0"]);
    for i in 0..55 {
        commit_file(git, src, "log.txt", &format!("{i}\n"), &format!("log {i}"));
    }
    let changed = MAIN_RS.replace("hello", "hi there");
    write("src/main.rs", changed.as_bytes());
    git.ok(src, &["mv", "docs/guide.md", "docs/manual.md"]);
    git.ok(src, &["add", "-A"]);
    git.ok(
        src,
        &[
            "commit",
            "-q",
            "-m",
            "<script>window.pwned=5</script> change main",
        ],
    );
    git.ok(src, &["branch", HOSTILE_BRANCH]);
    git.ok(src, &["checkout", "-q", "-b", "feature/x"]);
    commit_file(git, src, "feature.txt", "new\n", "add a feature");
    git.ok(src, &["checkout", "-q", "main"]);
    binary
}

fn web_view(backend: &Backend) {
    let Scratch {
        server,
        git,
        work,
        src,
        ..
    } = Scratch::with_args(backend, "lab/site", &["--webhook-allow-private"]);
    let admin = server.token_for("lab", None, "a", Some("alice"));
    let receiver = Receiver::start();
    server.call(
        "lab",
        "add_webhook",
        json!({"artifact_id": "lab/site", "url": receiver.url, "secret": "hook-secret-x", "events": ["push"]}),
    );
    git.lfs_install();
    let mut rng = Rng::new(30);
    let binary = build_source(&git, &src, &mut rng);
    let url = server.url_with_token("lab/site", &admin);
    git.ok(&src, &["push", "-q", &url, "--all"]);
    git.ok(&src, &["push", "-q", &url, "--tags"]);
    server.call(
        "lab",
        "enable_git",
        json!({"artifact_id": "lab/open", "public": true, "import_existing_files": false}),
    );
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &server.url_with_token("lab/open", &admin),
            "main",
        ],
    );
    let shots = std::env::var_os("ARTIFACT_GIT_SCREENSHOTS").map(std::path::PathBuf::from);
    let shot = |b: &Browser, name: &str| {
        if let Some(dir) = &shots {
            std::fs::create_dir_all(dir).unwrap();
            b.screenshot(&dir.join(name));
        }
    };

    let b = Browser::start();
    let base = &server.url;
    let home = format!("{base}/lab/git/site");

    // Anonymous: the private repository is not there, the public one is.
    b.goto(&home);
    assert_eq!(b.text("#error-status"), "404");
    assert!(!b.exists("#files"));
    b.goto(&format!("{base}/lab"));
    assert!(b.exists("#repositories a[href='/lab/git/open']"));
    assert!(!b.exists("#repositories a[href='/lab/git/site']"));
    b.goto(&format!("{base}/lab/git/open"));
    assert!(b.exists("#files"), "a public repository needs no sign-in");

    // Sign in with a token, landing where the visitor was going.
    b.goto(&home);
    b.click("#sign-in-link");
    b.type_into("#token", "not a token");
    b.click("#sign-in");
    assert!(
        b.text("#message").contains("not valid"),
        "{}",
        b.text("#message")
    );
    b.type_into("#token", &admin);
    b.click("#sign-in");
    b.wait_for_url(&home);
    assert_eq!(b.text("#signed-in"), "alice");
    let cookies = b.cookies();
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "artifact_git_session")
        .unwrap_or_else(|| panic!("no session cookie: {cookies}"));
    assert_eq!(session["httpOnly"], json!(true), "{session}");
    assert_eq!(session["sameSite"], json!("Lax"), "{session}");
    let script_cookies = b.script("return document.cookie;");
    assert!(
        !script_cookies.as_str().unwrap().contains(&admin),
        "scripts can read the token"
    );
    assert!(!b.url().contains(&admin));

    // The home page: README rendered, its payloads inert, its image shown; the clone URL.
    assert_eq!(b.text("#readme h1"), "Site");
    assert!(b
        .text("#readme")
        .contains("<script>window.pwned=1</script>"));
    assert_inert(&b);
    let width = b.script("return document.querySelector('#readme img').naturalWidth;");
    assert_eq!(width, json!(2), "the README's image did not load");
    assert_eq!(
        b.attribute("#readme a[href*='guide']", "href").unwrap(),
        "/lab/git/site/-/blob/main/docs/guide.md"
    );
    let javascript_links = b.script(
        "return [...document.querySelectorAll('a')].filter(a => a.href.startsWith('javascript')).length;",
    );
    assert_eq!(javascript_links, json!(0));
    assert_eq!(b.attribute("#clone-url", "value").unwrap(), home);
    assert!(!b.text("body").contains(&admin), "the token is on the page");
    shot(&b, "home.png");

    // From the workspace to a file, its history, a commit, its diff.
    b.goto(&format!("{base}/lab"));
    b.click("#repositories a[href='/lab/git/site']");
    b.click_link("src");
    b.click_link("main.rs");
    let shown = b.text("pre.text");
    let current = git.ok(&src, &["show", "main:src/main.rs"]);
    assert_eq!(shown.trim_end(), current.trim_end());
    assert!(b.exists("pre.text span[class*='hl-']"), "no highlighting");
    assert!(b.exists("#L6"));
    shot(&b, "file.png");
    b.click("#file-history");
    let expected: Vec<String> = git
        .ok(&src, &["log", "--format=%s", "main", "--", "src/main.rs"])
        .lines()
        .map(str::to_owned)
        .collect();
    let listed = b.script(
        "return [...document.querySelectorAll('#commits .summary')].map(a => a.textContent);",
    );
    assert_eq!(listed, json!(expected));
    assert_inert(&b);
    b.click("#commits li:first-child .summary");
    let id = git.rev(&src, "main");
    assert_eq!(b.text("#commit-id"), id);
    assert_eq!(
        b.text("#commit-summary"),
        "<script>window.pwned=5</script> change main"
    );
    assert_inert(&b);
    let statuses = b.script(
        "return [...document.querySelectorAll('section.diff h3')].map(h => h.textContent.replace(/\\s+/g, ' ').trim());",
    );
    let statuses: Vec<String> = statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("renamed docs/guide.md → docs/manual.md")),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("modified src/main.rs +1 −1")),
        "{statuses:?}"
    );
    let added = b
        .script("return [...document.querySelectorAll('pre.lines .add')].map(s => s.textContent);");
    let git_added: Vec<String> = git
        .ok(&src, &["show", "--format=", "main", "--", "src/main.rs"])
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(str::to_owned)
        .collect();
    assert_eq!(added, json!(git_added));
    shot(&b, "commit.png");

    // Downloads: a binary file through the file route, an LFS file, the archive.
    b.goto(&format!("{home}/-/blob/main/data.bin"));
    assert!(b.exists("#binary"));
    b.click("#download");
    assert!(
        b.downloaded("data.bin") == binary,
        "the downloaded file differs"
    );
    b.goto(&format!("{home}/-/blob/main/model.safetensors"));
    assert!(
        b.text("#lfs").contains("292.97 KiB") || b.text("#lfs").contains("293.0 KiB"),
        "{}",
        b.text("#lfs")
    );
    b.click("#download");
    let model = std::fs::read(src.join("model.safetensors")).unwrap();
    assert!(
        b.downloaded("model.safetensors") == model,
        "the LFS file differs"
    );
    b.goto(&home);
    b.click("#download-archive");
    let zip = b.downloaded("site-main.zip");
    let checkout = work.path().join("checkout");
    git.ok(
        work.path(),
        &["clone", "-q", &url, checkout.to_str().unwrap()],
    );
    std::fs::remove_dir_all(checkout.join(".git")).unwrap();
    assert_eq!(archive_listing(&zip), tree_listing(&checkout));

    // Hostile names and pushed documents run nothing; the headers say so too.
    b.goto(&home);
    b.click_link(HOSTILE_FILE);
    assert_eq!(b.text("pre.text"), "hi");
    assert_inert(&b);
    b.goto(&format!("{home}/-/branches"));
    assert!(b.text("#branches").contains(HOSTILE_BRANCH));
    assert_inert(&b);
    b.click_link(HOSTILE_BRANCH);
    assert!(b.exists("#files"));
    assert_inert(&b);
    for file in ["evil.svg", "evil.html"] {
        b.goto(&format!("{home}/-/blob/main/{file}"));
        assert_inert(&b);
        b.goto(&format!("{home}/-/raw/main/{file}"));
        assert_inert(&b);
        b.goto(&format!("{home}/resolve/main/{file}"));
        assert_inert(&b);
    }
    let page = curl_get(&home, &["-H", &format!("Authorization: Bearer {admin}")]);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let raw = curl_get(
        &format!("{home}/-/raw/main/evil.svg"),
        &["-H", &format!("Authorization: Bearer {admin}")],
    );
    assert!(raw
        .header("content-security-policy")
        .unwrap()
        .contains("sandbox"));

    // A folder of 1,200 entries and a history of 57 commits come a page at a time.
    b.goto(&format!("{home}/-/tree/main/many"));
    let rows = b.script("return document.querySelectorAll('#files tr').length;");
    assert_eq!(rows, json!(500));
    b.click("#next-page");
    let first = b.script("return document.querySelector('#files tr a').textContent;");
    assert_eq!(first, json!("f0500.txt"));
    b.goto(&format!("{home}/-/commits/main"));
    let ids = |b: &Browser| -> Vec<String> {
        let v = b.script("return [...document.querySelectorAll('#commits .sha')].map(a => a.getAttribute('href').split('/').pop());");
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let mut seen = ids(&b);
    assert_eq!(seen.len(), 50);
    b.click("#next-page");
    seen.extend(ids(&b));
    let all: Vec<String> = git
        .ok(&src, &["rev-list", "main"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(seen, all);

    // Compare two revisions.
    b.goto(&format!("{home}/-/compare?from=v1.0&to=main"));
    let changed = git
        .ok(&src, &["diff", "-M", "--name-status", "v1.0", "main"])
        .lines()
        .count();
    assert!(
        b.text("#diff-stat")
            .starts_with(&format!("{changed} files changed")),
        "{}",
        b.text("#diff-stat")
    );

    // A pull request, merged from its page.
    let number = server.call(
        "lab",
        "create_pr",
        json!({"artifact_id": "lab/site", "title": "Add <b>a feature</b>", "source_branch": "feature/x"}),
    )["pr_number"]
        .as_u64()
        .unwrap();
    b.goto(&format!("{home}/-/pulls"));
    b.click("#pulls a");
    assert_eq!(b.text("#pull-state"), "open");
    assert!(b.text("#pull-title").starts_with("Add <b>a feature</b>"));
    assert!(b.text("section.diff h3").contains("feature.txt"));
    b.click("#merge");
    b.wait_for_url(&format!("{home}/-/pull/{number}"));
    assert_eq!(b.text("#pull-state"), "merged");
    let pr = server.call(
        "lab",
        "get_pr",
        json!({"artifact_id": "lab/site", "pr_number": number}),
    );
    let remote_main = git.ok(&src, &["ls-remote", &url, "refs/heads/main"]);
    assert!(
        remote_main.starts_with(pr["merged"]["sha"].as_str().unwrap()),
        "{remote_main} {pr}"
    );
    assert_eq!(b.url(), format!("{home}/-/pull/{number}"));

    // Settings, for admins.
    b.goto(&format!("{home}/-/settings"));
    let settings = b.text("main");
    assert!(
        settings.contains("private: a token is needed to read"),
        "{settings}"
    );
    assert!(
        settings.contains(&format!("Deliveries to {}", receiver.url)),
        "{settings}"
    );
    assert!(
        !settings.contains("hook-secret-x"),
        "a webhook secret is on the page"
    );

    // Cross-site posts are refused, with the cookie and without the form token.
    let cookie = format!("Cookie: artifact_git_session={admin}");
    let (status, _) = curl_post(
        &format!("{base}/-/signout"),
        "application/x-www-form-urlencoded",
        b"csrf=x",
        &["-H", &cookie, "-H", "Origin: http://evil.example"],
    );
    assert_eq!(status, 403);
    let (status, _) = curl_post(
        &format!("{home}/-/pull/{number}/merge"),
        "application/x-www-form-urlencoded",
        b"",
        &["-H", &cookie, "-H", &format!("Origin: {base}")],
    );
    assert_eq!(status, 403);
    let (status, _) = curl_post(
        &format!("{base}/-/signin"),
        "application/x-www-form-urlencoded",
        format!("token={admin}").as_bytes(),
        &["-H", "Origin: http://evil.example"],
    );
    assert_eq!(status, 403);
    // The cookie is never a token for the API or for pushes.
    let (status, body) = curl_post(&format!("{base}/rpc"), "application/json", json!({"jsonrpc": "2.0", "id": 1, "method": "list_prs", "params": {"artifact_id": "lab/site"}}).to_string().as_bytes(), &["-H", &cookie]);
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("\"error\""),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Sign out: the private repository is gone from view again.
    b.goto(&home);
    b.click("#sign-out");
    b.wait_for_url(&format!("{base}/"));
    b.goto(&home);
    assert_eq!(b.text("#error-status"), "404");

    // A sign-in link from the API: good once.
    let link = server.call(
        "lab",
        "create_signin_link",
        json!({"token": admin, "next": "/lab/git/site/-/branches"}),
    );
    let link_url = link["url"].as_str().unwrap();
    assert!(!link_url.contains(&admin));
    b.goto(link_url);
    b.wait_for_url(&format!("{home}/-/branches"));
    assert!(b.exists("#branches"));
    b.goto(link_url);
    assert!(b.text("#error-message").contains("used or has expired"));
    let bad = server.rpc(
        None,
        "create_signin_link",
        json!({"token": "forged.token.x"}),
    );
    assert_eq!(bad["error"]["code"], json!(-32001), "{bad}");
}

backend_tests!(web_view);
