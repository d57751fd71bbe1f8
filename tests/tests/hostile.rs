//! What a hostile or broken client can send, with nothing more than a push token: the server
//! stays up and within its memory, the client gets a clear error, and nothing stored changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use artifact_git_e2e::packs::{self, copy_delta, push_request, PackWriter, REF_DELTA, ZERO};
use artifact_git_e2e::*;

/// What the default settings promise: a 512 MiB container is enough.
const MEMORY_LIMIT_KIB: u64 = 512 * 1024;

const RECEIVE: &str = "application/x-git-receive-pack-request";

/// The 20 bytes of a hex object id.
fn hex(id: &str) -> Vec<u8> {
    (0..id.len() / 2)
        .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// A 1.7 KB delta chain whose twelve objects are 90 MiB blobs: about 1 GiB once expanded.
fn expanding_chain() -> Vec<u8> {
    let mut p = PackWriter::new();
    let base: Vec<u8> = (0..1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut at = p.next_offset();
    p.blob(&base);
    let mut size: u64 = 1024;
    for level in 0..12 {
        let target: u64 = match level {
            0 => 64 << 10,
            1 => 4 << 20,
            _ => 90 << 20,
        };
        // Copies of the whole base (or 15 MiB of it) until the target size, and the level's
        // number, so that no two objects are the same.
        let piece = size.min(15 << 20);
        let mut copies = Vec::new();
        let mut made = 0;
        while made + 1 < target {
            let n = piece.min(target - 1 - made);
            copies.push((0u32, n as u32));
            made += n;
        }
        let delta = copy_delta(size, &copies, &[level as u8]);
        let next = p.next_offset();
        p.ofs_delta(at, &delta);
        at = next;
        size = target;
    }
    p.finish()
}

fn hostile_packs_stay_within_memory(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/hostile", 20, 9);
    let receive = format!("{}/git-receive-pack", f.url);
    let tip = f
        .git
        .ok(&f.source, &["rev-parse", "main"])
        .trim()
        .to_owned();
    let blob = f
        .git
        .ok(&f.source, &["rev-parse", "main:file0.txt"])
        .trim()
        .to_owned();
    let blob_size: u64 = f
        .git
        .ok(&f.source, &["cat-file", "-s", &blob])
        .trim()
        .parse()
        .unwrap();
    let before = f.remote_refs();

    // A 40-byte pack: one delta against a stored blob that promises a 3 GiB result.
    let mut d = Vec::new();
    let mut n = blob_size;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            d.push(b);
            break;
        }
        d.push(b | 0x80);
    }
    d.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x0c]); // 3 GiB
    let mut p = PackWriter::new();
    p.header(REF_DELTA, d.len() as u64)
        .raw(&hex(&blob))
        .deflated(&d);
    let three_gib_delta = p.finish();
    assert!(
        three_gib_delta.len() < 100,
        "{} bytes",
        three_gib_delta.len()
    );

    // A deflate stream of 1 GiB of zeros, declared as such, and declared as 64 KiB.
    let zeros = packs::zlib_zeros(1 << 30);
    let mut p = PackWriter::new();
    p.header(packs::BLOB, 1 << 30).raw(&zeros);
    let declared_bomb = p.finish();
    let mut p = PackWriter::new();
    p.header(packs::BLOB, 64 << 10).raw(&zeros);
    let hidden_bomb = p.finish();

    // A gzip request body of a few KB carrying a 2 GiB object.
    let mut p = PackWriter::new();
    p.header(packs::BLOB, 2 << 30)
        .raw(&packs::zlib_zeros(2 << 30));
    let gzip_body = packs::gzip(&push_request(&tip, &tip, "refs/heads/gz", &p.finish()));
    assert!(gzip_body.len() < 64 << 10, "{} bytes", gzip_body.len());

    let chain = expanding_chain();
    assert!(chain.len() < 2048, "{} bytes", chain.len());

    let pid = f.server.pid();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>, &str)> = vec![
        (
            "3 GiB delta",
            push_request(&ZERO, &tip, "refs/heads/a", &three_gib_delta),
            vec![],
            "exceeds the limit",
        ),
        (
            "declared bomb",
            push_request(&ZERO, &tip, "refs/heads/b", &declared_bomb),
            vec![],
            "exceeds the limit",
        ),
        (
            "hidden bomb",
            push_request(&ZERO, &tip, "refs/heads/c", &hidden_bomb),
            vec![],
            "inflates to more than",
        ),
        (
            "gzip body",
            gzip_body,
            vec!["-H", "Content-Encoding: gzip"],
            "exceeds the limit",
        ),
        // Indexed within the budget (one at a time), then refused: nothing names a commit.
        (
            "chain 1",
            push_request(&ZERO, &"1".repeat(hex_len()), "refs/heads/d", &chain),
            vec![],
            "missing necessary objects",
        ),
        (
            "chain 2",
            push_request(&ZERO, &"2".repeat(hex_len()), "refs/heads/e", &chain),
            vec![],
            "missing necessary objects",
        ),
    ];
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(what, body, extra, needle)| {
                let receive = &receive;
                scope.spawn(move || {
                    let (status, reply) = curl_post(receive, RECEIVE, body, extra);
                    let text = String::from_utf8_lossy(&reply);
                    assert_eq!(status, 200, "{what}: {text}");
                    assert!(
                        text.contains(needle),
                        "{what}: expected {needle:?} in {text:?}"
                    );
                    if *needle == "exceeds the limit" {
                        assert!(text.contains("Git LFS"), "{what}: {text}");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let peak = peak_rss_kib(pid);
    eprintln!(
        "hostile packs: refused in {:.1} s, server peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak / 1024
    );
    assert!(peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB", peak / 1024);
    assert_eq!(f.remote_refs(), before, "nothing changed");
    f.fresh_clone("after-hostile", false);
}

/// Write `count` push commands of `name_len`-byte names (or shallow lines) into a gzip stream,
/// without holding them.
fn gzip_lines(count: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..count {
        z.write_all(&pkt(&line(i))).unwrap();
    }
    z.write_all(b"0000").unwrap();
    z.finish().unwrap()
}

fn push_commands_are_checked_as_they_arrive(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/commands", 5, 3);
    let receive = format!("{}/git-receive-pack", f.url);
    let tip = f
        .git
        .ok(&f.source, &["rev-parse", "main"])
        .trim()
        .to_owned();
    let before = f.remote_refs();
    let pid = f.server.pid();
    let (zero, caps) = (null_id(), v0_format_caps());
    let gz = ["-H", "Content-Encoding: gzip"];
    let cases = [
        (
            "20,000 commands with 65 KB names",
            gzip_lines(20_000, |i| {
                format!(
                    "{zero} {tip} refs/heads/{i}{}\0report-status{caps}\n",
                    "x".repeat(65_000)
                )
            }),
            "bytes in a ref name",
        ),
        (
            "20,000 commands with 4 KB names",
            gzip_lines(20_000, |i| {
                format!("{zero} {tip} refs/heads/{i}{}\n", "y".repeat(4_000))
            }),
            "bytes of ref names",
        ),
        (
            "200,000 commands",
            gzip_lines(200_000, |i| format!("{zero} {tip} refs/heads/n{i}\n")),
            "ref updates in one push",
        ),
        (
            "20 million shallow lines",
            gzip_lines(20_000_000, |_| format!("shallow {tip}\n")),
            "shallow lines",
        ),
    ];
    for (what, body, needle) in cases {
        let started = Instant::now();
        let (status, reply) = curl_post(&receive, RECEIVE, &body, &gz);
        let text = String::from_utf8_lossy(&reply);
        assert_eq!(status, 200, "{what}");
        assert!(
            text.contains("ERR") && text.contains(needle),
            "{what}: {text:?}"
        );
        eprintln!(
            "{what}: refused in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    let peak = peak_rss_kib(pid);
    eprintln!("push commands: server peak RSS {} MiB", peak / 1024);
    assert!(peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB", peak / 1024);
    assert_eq!(f.remote_refs(), before);
}

/// Open a connection and send `bytes` of a request that never completes.
fn stall(url: &str, bytes: &[u8]) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    s
}

/// How long until the server closes `stream` (reading what it answers first).
fn closed_within(mut stream: TcpStream, max: Duration) -> bool {
    stream.set_read_timeout(Some(max)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed() < max,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn stalled_clients_do_not_hold_the_server() {
    let f = Fixture::new(
        &Backend::Fs,
        &[
            "--max-concurrent",
            "4",
            "--header-timeout",
            "2s",
            "--body-idle-timeout",
            "3s",
            "--request-timeout",
            "3s",
        ],
        "lab/stall",
        30,
        5,
    );
    let token = f.server.token("lab", None, "rw");
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("git:{token}"))
    };
    let tip = f
        .git
        .ok(&f.source, &["rev-parse", "main"])
        .trim()
        .to_owned();
    let mut stalled = Vec::new();
    // Half a request head.
    for _ in 0..16 {
        stalled.push(stall(
            &f.server.url,
            b"GET /lab/git/stall/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n",
        ));
    }
    // Upload-pack requests whose body never ends.
    for _ in 0..24 {
        let head = format!(
            "POST /lab/git/stall/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: 100000\r\n\r\n{}",
            String::from_utf8_lossy(&pkt(&format!("want {tip}\n")))
        );
        stalled.push(stall(&f.server.url, head.as_bytes()));
    }
    // Pushes that stop in the middle of their pack.
    for i in 0..24 {
        let mut body = push_request(
            &ZERO,
            &tip,
            &format!("refs/heads/stalled{i}"),
            b"PACK\0\0\0\x02\0\0\0\x05",
        );
        body.extend_from_slice(&[0x30, 0x78]);
        let mut head = format!(
            "POST /lab/git/stall/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nContent-Type: {RECEIVE}\r\nContent-Length: 10000000\r\n\r\n"
        )
        .into_bytes();
        head.extend_from_slice(&body);
        stalled.push(stall(&f.server.url, &head));
    }
    assert_eq!(stalled.len(), 64);
    std::thread::sleep(Duration::from_millis(300));
    // Everybody else is served meanwhile: clones, fetches and pushes, more than --max-concurrent.
    let started = Instant::now();
    for i in 0..6 {
        f.fresh_clone(&format!("while-stalled-{i}"), false);
    }
    commit_file(&f.git, &f.source, "meanwhile.txt", "served\n", "meanwhile");
    f.git.ok(&f.source, &["push", "-q", "origin", "main"]);
    eprintln!(
        "served during 64 stalled requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // And the stalled ones are let go within their timeouts.
    for s in stalled {
        assert!(
            closed_within(s, Duration::from_secs(15)),
            "a stalled connection stays open"
        );
    }
}

#[test]
fn accept_errors_back_off_instead_of_spinning() {
    let dir = TempDir::new().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_launched(
        &[],
        &Launch {
            max_open_files: Some(64),
            log_file: Some(log.clone()),
            ..Launch::default()
        },
    );
    server.init("lab/fd");
    let pid = server.pid();
    let addr = server.url.trim_start_matches("http://").to_owned();
    let conns: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(
        conns.len() > 64,
        "the kernel's backlog takes the connections the server cannot"
    );
    let cpu_before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(pid) - cpu_before;
    drop(conns);
    let log_bytes = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    eprintln!("out of file descriptors for 3 s: {cpu:.2} s of CPU, {log_bytes} bytes of log");
    assert!(cpu < 0.5, "the accept loop spun: {cpu:.2} s of CPU in 3 s");
    assert!(log_bytes < 64 << 10, "{log_bytes} bytes of log");
    // Once the connections are gone, the server serves again.
    assert!(eventually(Duration::from_secs(10), || http_status(
        &format!("{}/health", server.url),
        None
    ) == 200));
    let git = Git::default();
    let work = TempDir::new().unwrap();
    git.ok(work.path(), &["ls-remote", &server.repo_url("lab/fd")]);
}

/// Out of descriptors, idle connections go first: 300 clients that sent half a request head
/// to a server allowed 256 descriptors do not keep `/health` (or a clone) out while they stay
/// open.
#[test]
fn idle_connections_are_shed_when_descriptors_run_short() {
    let server = Server::start_launched(
        &[],
        &Launch {
            max_open_files: Some(256),
            ..Launch::default()
        },
    );
    server.init("lab/shed");
    let addr = server.url.trim_start_matches("http://").to_owned();
    let half_heads: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .map(|mut s| {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Half: ");
            s
        })
        .collect();
    assert!(half_heads.len() > 256);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let health = || {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    };
    assert!(
        health(),
        "/health did not answer within 3 s while idle connections held the descriptors"
    );
    eprintln!(
        "/health answered after {} ms",
        started.elapsed().as_millis()
    );
    let git = Git::default();
    let work = TempDir::new().unwrap();
    git.ok(work.path(), &["ls-remote", &server.repo_url("lab/shed")]);
    drop(half_heads);
}

fn conflicting_ref_updates_are_refused(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/df", 5, 7);
    let receive = format!("{}/git-receive-pack", f.url);
    // A ref and a ref below it in one push: the first is created, the second refused.
    let err = f.git.fails(
        &f.source,
        &["push", "origin", "main:refs/heads/x", "main:refs/heads/x/y"],
    );
    assert!(
        err.contains("'refs/heads/x' exists; cannot create 'refs/heads/x/y'"),
        "{err}"
    );
    // And against a stored ref, in both directions.
    let err = f
        .git
        .fails(&f.source, &["push", "origin", "main:refs/heads/main/sub"]);
    assert!(err.contains("'refs/heads/main' exists"), "{err}");
    f.git.ok(
        &f.source,
        &["push", "-q", "origin", "main:refs/heads/dir/file"],
    );
    let err = f
        .git
        .fails(&f.source, &["push", "origin", "main:refs/heads/dir"]);
    assert!(err.contains("'refs/heads/dir/file' exists"), "{err}");
    // Two updates of one ref in one push (git itself never sends that).
    let tip = f
        .git
        .ok(&f.source, &["rev-parse", "main"])
        .trim()
        .to_owned();
    let (zero, caps) = (null_id(), v0_format_caps());
    let mut body = pkt(&format!(
        "{zero} {tip} refs/heads/twice\0report-status{caps}\n"
    ));
    body.extend(pkt(&format!("{zero} {tip} refs/heads/twice\n")));
    body.extend_from_slice(b"0000");
    body.extend(PackWriter::new().finish());
    let (_, reply) = curl_post(&receive, RECEIVE, &body, &[]);
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(
        text.matches("ng refs/heads/twice multiple updates for ref 'refs/heads/twice' not allowed")
            .count(),
        2,
        "{text}"
    );
    let refs = f.remote_refs();
    assert!(refs.contains("refs/heads/x\n") && !refs.contains("refs/heads/x/y"));
    assert!(!refs.contains("refs/heads/twice") && !refs.contains("refs/heads/dir\n"));
    // Every clone still works.
    f.fresh_clone("after-df", true);
}

/// Write a raw object with `git hash-object --literally` (git's own checks off).
fn literal(git: &Git, dir: &std::path::Path, kind: &str, data: &[u8]) -> String {
    let mut child = git
        .command(dir)
        .args(["hash-object", "-w", "--literally", "-t", kind, "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn tree_with(git: &Git, dir: &std::path::Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        data.extend(hex(id));
    }
    literal(git, dir, "tree", &data)
}

fn objects_breaking_fsck_rules_are_refused(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/fsck", 5, 11);
    let (git, dir) = (&f.git, f.source.as_path());
    let before = f.remote_refs();
    let blob = literal(git, dir, "blob", b"content\n");
    let gitmodules = literal(
        git,
        dir,
        "blob",
        b"[submodule \"evil\"]\n\tpath = evil\n\turl = --upload-pack=touch${IFS}/tmp/pwned\n",
    );
    let good_tree = tree_with(git, dir, &[("100644", b"a.txt", &blob)]);
    let commit = |tree: &str| {
        literal(
            git,
            dir,
            "commit",
            format!("tree {tree}\nauthor A <a@example.com> 1 +0000\ncommitter A <a@example.com> 1 +0000\n\nbad\n").as_bytes(),
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a commit without an author",
            literal(
                git,
                dir,
                "commit",
                format!("tree {good_tree}\ncommitter A <a@example.com> 1 +0000\n\nx\n").as_bytes(),
            ),
            "missingAuthor",
        ),
        (
            "a .git entry",
            commit(&tree_with(git, dir, &[("100644", b".git", &blob)])),
            "hasDotgit",
        ),
        (
            "a .GIT directory",
            commit(&tree_with(git, dir, &[("40000", b".GIT", &good_tree)])),
            "hasDotgit",
        ),
        (
            "an NTFS short name",
            commit(&tree_with(git, dir, &[("40000", b"GIT~1", &good_tree)])),
            "hasDotgit",
        ),
        (
            "an HFS+ .git",
            commit(&tree_with(
                git,
                dir,
                &[("40000", ".g\u{200c}it".as_bytes(), &good_tree)],
            )),
            "hasDotgit",
        ),
        (
            "a .. entry",
            commit(&tree_with(git, dir, &[("40000", b"..", &good_tree)])),
            "hasDotdot",
        ),
        (
            "a / in a name",
            commit(&tree_with(git, dir, &[("100644", b"a/b", &blob)])),
            "fullPathname",
        ),
        (
            "entries out of order",
            commit(&tree_with(
                git,
                dir,
                &[("100644", b"b", &blob), ("100644", b"a", &blob)],
            )),
            "treeNotSorted",
        ),
        (
            "a .gitmodules URL that is an option",
            commit(&tree_with(
                git,
                dir,
                &[("100644", b".gitmodules", &gitmodules)],
            )),
            "gitmodulesUrl",
        ),
    ];
    for (what, id, rule) in &cases {
        let err = git.fails(dir, &["push", "origin", &format!("{id}:refs/heads/bad")]);
        assert!(err.contains(rule), "{what}: expected {rule} in {err}");
        assert!(
            err.contains(&id[..7]) || err.contains("object "),
            "{what}: names the object: {err}"
        );
    }
    // A mode git never writes is one of git's warnings, which real histories carry: accepted
    // (as receive.fsckObjects does; `--fsck-strict` refuses it, see fsck_rules.rs).
    let odd_mode = commit(&tree_with(git, dir, &[("100600", b"a", &blob)]));
    git.ok(
        dir,
        &["push", "origin", &format!("{odd_mode}:refs/heads/odd-mode")],
    );
    git.ok(dir, &["push", "origin", ":refs/heads/odd-mode"]);
    // A branch may only name a commit.
    let err = git.fails(dir, &["push", "origin", &format!("{blob}:refs/heads/blob")]);
    assert!(err.contains("non-commit object"), "{err}");
    // A tag may name anything.
    git.ok(
        dir,
        &[
            "push",
            "-q",
            "origin",
            &format!("{blob}:refs/tags/blob-tag"),
        ],
    );
    let after = f.remote_refs();
    assert_eq!(
        after.replace(&format!("{blob}\trefs/tags/blob-tag\n"), ""),
        before
    );
    f.fresh_clone("after-fsck", true);
}

fn deleted_branches_do_not_leak(backend: &Backend) {
    let f = Fixture::new(
        backend,
        &["--maintain-after-packs", "0"],
        "lab/leak",
        10,
        13,
    );
    let (git, dir) = (&f.git, f.source.as_path());
    git.ok(dir, &["checkout", "-q", "-b", "secret"]);
    commit_file(
        git,
        dir,
        "secret.txt",
        "the password is hunter2\n",
        "secret",
    );
    let secret = git
        .ok(dir, &["rev-parse", "HEAD:secret.txt"])
        .trim()
        .to_owned();
    git.ok(dir, &["push", "-q", "origin", "secret"]);
    git.ok(dir, &["checkout", "-q", "main"]);
    git.ok(dir, &["push", "-q", "origin", "--delete", "secret"]);
    let absent = |clone: &std::path::Path| {
        !git.run(clone, &["cat-file", "-e", &secret])
            .status
            .success()
    };
    // Before maintenance: the pack that holds it is left out.
    let mirror = f.fresh_clone("mirror-before", true);
    assert!(absent(&mirror), "the deleted branch's blob was sent");
    let plain = f.fresh_clone("clone-before", false);
    assert!(absent(&plain));
    // After maintenance (the secret is young: kept apart), clones stream the reachable pack.
    f.server
        .maintain(&f.repo, &["--delete-replaced-after", "0s"]);
    // The server lists a repository's packs at most every 2 s.
    std::thread::sleep(Duration::from_millis(2100));
    let verbatim = f.server.metric("artifact_git_clones_verbatim_total");
    let mirror = f.fresh_clone("mirror-after", true);
    assert!(
        absent(&mirror),
        "the deleted branch's blob was sent after maintenance"
    );
    assert_eq!(
        f.server.metric("artifact_git_clones_verbatim_total"),
        verbatim + 1
    );
    // A push after that, then a clone: still not sent.
    commit_file(git, dir, "later.txt", "later\n", "later");
    git.ok(dir, &["push", "-q", "origin", "main"]);
    let plain = f.fresh_clone("clone-after-push", false);
    assert!(absent(&plain));
}

/// Send a whole request as git does (all of the body, then read the answer): the answer's
/// status line, or why the exchange broke.
fn send_whole(server: &Server, path: &str, headers: &str, body: &[u8]) -> Result<String, String> {
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("sending the head: {e}"))?;
    for chunk in body.chunks(1 << 16) {
        s.write_all(chunk)
            .map_err(|e| format!("sending the body: {e}"))?;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    Ok(text)
}

/// A request over a limit is refused with an answer the client reads: the server reads what
/// the client sends (a bounded amount) before it answers, instead of cutting it off mid-body.
fn oversized_requests_get_a_readable_refusal(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/big-requests", 3, 5);
    let tip = f.git.rev(&f.source, "main");
    let token = f.server.token("lab", None, "r");
    let auth = format!("Authorization: Bearer {token}\r\n");
    let path = "/lab/git/big-requests/git-upload-pack";
    // A million `have` lines (50 MB, over the 16 MiB request limit).
    let mut haves = pkt(&format!("want {tip}\n")).to_vec();
    haves.extend(b"0000");
    for i in 0..1_000_000u32 {
        haves.extend(pkt(&format!("have {:040x}\n", i)));
    }
    haves.extend(pkt("done\n"));
    let headers = format!("{auth}Content-Type: application/x-git-upload-pack-request\r\n");
    let answer = send_whole(&f.server, path, &headers, &haves).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    // 300,000 `ref-prefix` lines of a v2 `ls-refs`.
    let mut ls = pkt("command=ls-refs\n").to_vec();
    ls.extend(b"0001");
    for i in 0..300_000u32 {
        ls.extend(pkt(&format!("ref-prefix refs/heads/{i}\n")));
    }
    ls.extend(b"0000");
    let headers = format!(
        "{auth}Git-Protocol: version=2\r\nContent-Type: application/x-git-upload-pack-request\r\n"
    );
    let answer = send_whole(&f.server, path, &headers, &ls).unwrap();
    // Answered (refused, or listed: the prefixes are within the request limit), and read.
    let status = answer.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 4") || status.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
}

backend_tests!(
    oversized_requests_get_a_readable_refusal,
    hostile_packs_stay_within_memory,
    push_commands_are_checked_as_they_arrive,
    conflicting_ref_updates_are_refused,
    objects_breaking_fsck_rules_are_refused,
    deleted_branches_do_not_leak,
);
