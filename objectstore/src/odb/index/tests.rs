#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

const SHA1: gix_hash::Kind = gix_hash::Kind::Sha1;

use super::*;
use crate::fsck::MsgId;

fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "A")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    out.stdout
}

/// A repository with a few commits of slowly changing files (so packs hold deltas).
fn history(dir: &Path, commits: usize) {
    history_in(dir, commits, "sha1");
}

/// A history in a repository of `format` (`sha1`, `sha256`).
fn history_in(dir: &Path, commits: usize, format: &str) {
    let format = format!("--object-format={format}");
    git(dir, &["init", "-q", "-b", "main", &format]);
    let mut text = String::new();
    for i in 0..commits {
        for l in 0..50 {
            text.push_str(&format!("line {l} of version {i}\n"));
        }
        std::fs::write(dir.join("file.txt"), &text).unwrap();
        std::fs::write(
            dir.join(format!("f{}.txt", i % 3)),
            format!("{i}\n").repeat(100),
        )
        .unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
}

fn budget() -> Arc<MemoryBudget> {
    MemoryBudget::new(1 << 30)
}

fn index_bytes(
    pack: &[u8],
    staging: &Path,
    limits: &Limits,
    checks: Checks<'_>,
) -> Result<Indexed> {
    let budget = budget();
    let mut input = std::io::BufReader::new(pack);
    let received = receive(&mut input, staging, SHA1, limits, &budget, checks)?;
    let (threads, _r) = received
        .reserve_working_set(limits, &budget)
        .map_err(Refused::Busy)?;
    received.resolve(&mut |_| Ok(None), limits, checks, threads)
}

fn refused(result: Result<Indexed>) -> String {
    match result {
        Err(Error::Refused(r)) => r.to_string(),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the pack was accepted"),
    }
}

#[test]
fn the_index_equals_gits_own() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    history(&repo, 40);
    let pack = git_stdin(
        &repo,
        &["pack-objects", "--all", "--stdout", "--delta-base-offset"],
        b"",
    );
    for threads in [1, 2] {
        let limits = Limits {
            threads,
            base_cache_bytes: 64, // tiny: bases are evicted and derived again
            ..Limits::default()
        };
        let indexed =
            index_bytes(&pack, &dir.path().join("staging"), &limits, Checks::STRICT).unwrap();
        let (pack_path, idx_path) = indexed.paths().unwrap();
        // git's index of the same pack, byte for byte.
        let theirs = dir.path().join(format!("theirs-{threads}.pack"));
        std::fs::write(&theirs, &pack).unwrap();
        git(dir.path(), &["index-pack", theirs.to_str().unwrap()]);
        assert_eq!(
            std::fs::read(idx_path).unwrap(),
            std::fs::read(theirs.with_extension("idx")).unwrap()
        );
        assert_eq!(std::fs::read(pack_path).unwrap(), pack);
    }
    // REF deltas (no --delta-base-offset) resolve too.
    let pack = git_stdin(&repo, &["pack-objects", "--all", "--stdout"], b"");
    let indexed = index_bytes(
        &pack,
        &dir.path().join("staging"),
        &Limits::default(),
        Checks::STRICT,
    )
    .unwrap();
    let theirs = dir.path().join("ref.pack");
    std::fs::write(&theirs, &pack).unwrap();
    git(dir.path(), &["index-pack", theirs.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(indexed.paths().unwrap().1).unwrap(),
        std::fs::read(theirs.with_extension("idx")).unwrap()
    );
}

#[test]
fn a_sha256_pack_indexes_as_git_does_and_reads_back() {
    let sha256 = gix_hash::Kind::Sha256;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    history_in(&repo, 30, "sha256");
    // REF deltas: each names its base by a 32-byte id.
    let pack = git_stdin(&repo, &["pack-objects", "--all", "--stdout"], b"");
    let budget = budget();
    let limits = Limits::default();
    let received = receive(
        &mut &pack[..],
        &dir.path().join("staging"),
        sha256,
        &limits,
        &budget,
        Checks::STRICT,
    )
    .unwrap();
    let indexed = received
        .resolve(&mut |_| Ok(None), &limits, Checks::STRICT, 2)
        .unwrap();
    let (_, idx_path) = indexed.paths().unwrap();
    let theirs = dir.path().join("theirs.pack");
    std::fs::write(&theirs, &pack).unwrap();
    git(&repo, &["index-pack", theirs.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(idx_path).unwrap(),
        std::fs::read(theirs.with_extension("idx")).unwrap()
    );
    // Read back through the reader, deltas resolved: git's bytes for every object.
    let opened = indexed.open().unwrap().unwrap();
    assert_eq!(opened.object_hash(), sha256);
    let db = crate::ObjectDb::detached(vec![opened]);
    let all = String::from_utf8(git(&repo, &["rev-list", "--objects", "--all"])).unwrap();
    let mut buf = Vec::new();
    for line in all.lines() {
        let hex = &line[..64];
        let id = ObjectId::from_hex(hex.as_bytes()).unwrap();
        db.reader().read(&id, &mut buf).unwrap();
        let kind = String::from_utf8(git(&repo, &["cat-file", "-t", hex])).unwrap();
        assert_eq!(buf, git(&repo, &["cat-file", kind.trim(), hex]), "{hex}");
    }
}

#[test]
fn a_thin_pack_is_completed_from_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    history(&repo, 20);
    let old = String::from_utf8(git(&repo, &["rev-parse", "HEAD~5"])).unwrap();
    let thin = git_stdin(
        &repo,
        &[
            "pack-objects",
            "--revs",
            "--thin",
            "--stdout",
            "--delta-base-offset",
        ],
        format!("HEAD\n^{}", old.trim()).as_bytes(),
    );
    // The repository side: every object of the old history, read through git.
    let all = String::from_utf8(git(&repo, &["rev-list", "--objects", old.trim()])).unwrap();
    let stored: std::collections::HashSet<ObjectId> = all
        .lines()
        .map(|l| ObjectId::from_hex(&l.as_bytes()[..40]).unwrap())
        .collect();
    let mut asked = 0;
    let mut bases = |id: &gix_hash::oid| {
        if !stored.contains(id) {
            return Ok(None);
        }
        asked += 1;
        let hex = id.to_string();
        let kind = String::from_utf8(git(&repo, &["cat-file", "-t", &hex])).unwrap();
        let data = git(&repo, &["cat-file", kind.trim(), &hex]);
        Ok(Some((
            Kind::from_bytes(kind.trim().as_bytes()).unwrap(),
            data,
        )))
    };
    let budget = budget();
    let limits = Limits::default();
    let received = receive(
        &mut &thin[..],
        &dir.path().join("staging"),
        SHA1,
        &limits,
        &budget,
        Checks::STRICT,
    )
    .unwrap();
    let indexed = received
        .resolve(&mut bases, &limits, Checks::STRICT, 2)
        .unwrap();
    assert!(indexed.thin_bases > 0 && asked == indexed.thin_bases);
    let (pack_path, idx_path) = indexed.paths().unwrap();
    // The completed pack stands alone: git verifies it and its index.
    git(dir.path(), &["verify-pack", idx_path.to_str().unwrap()]);
    assert!(std::fs::metadata(pack_path).unwrap().len() > thin.len() as u64);
}

/// Build a pack from raw entries: (header, data to compress as is).
struct PackBytes(Vec<u8>, u32);

impl PackBytes {
    fn new() -> Self {
        PackBytes(Vec::new(), 0)
    }
    fn entry(mut self, header: gix_pack::data::entry::Header, declared: u64, data: &[u8]) -> Self {
        header.write_to(declared, &mut self.0).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        self.0.extend(z.finish().unwrap());
        self.1 += 1;
        self
    }
    fn object(self, kind: Kind, data: &[u8]) -> Self {
        self.entry(
            crate::odb::generate::object_header(kind),
            data.len() as u64,
            data,
        )
    }
    fn offset_of_entry(&self) -> u64 {
        self.0.len() as u64 + 12
    }
    fn finish(self) -> Vec<u8> {
        let mut out = gix_pack::data::header::encode(gix_pack::data::Version::V2, self.1).to_vec();
        out.extend(self.0);
        let mut hasher = gix_hash::hasher(SHA1);
        hasher.update(&out);
        let sum = hasher.try_finalize().unwrap();
        out.extend_from_slice(sum.as_slice());
        out
    }
}

fn delta_bytes(base_size: u64, result: &[u8], copies: &[(u32, u32)]) -> Vec<u8> {
    let mut d = Vec::new();
    let varint = |mut n: u64, d: &mut Vec<u8>| loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            d.push(b);
            break;
        }
        d.push(b | 0x80);
    };
    varint(base_size, &mut d);
    varint(
        result.len() as u64 + copies.iter().map(|c| u64::from(c.1)).sum::<u64>(),
        &mut d,
    );
    for (ofs, size) in copies {
        d.push(0x80 | 0x0f | 0x70);
        d.extend_from_slice(&ofs.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes()[..3]);
    }
    for chunk in result.chunks(127) {
        d.push(chunk.len() as u8);
        d.extend_from_slice(chunk);
    }
    d
}

#[test]
fn declared_sizes_are_checked_before_anything_is_inflated() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let limits = Limits {
        max_object_bytes: 1 << 20,
        ..Limits::default()
    };
    // A 3 GiB blob that is not even there: refused on the header alone.
    let mut pack = gix_pack::data::header::encode(gix_pack::data::Version::V2, 1).to_vec();
    gix_pack::data::entry::Header::Blob
        .write_to(3 << 30, &mut pack)
        .unwrap();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(
        msg.contains("exceeds the limit") && msg.contains("Git LFS"),
        "{msg}"
    );
    // A delta that promises 3 GiB.
    let base = b"base object".to_vec();
    let p = PackBytes::new().object(Kind::Blob, &base);
    let at = p.offset_of_entry();
    let mut d = vec![base.len() as u8];
    d.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x0c]);
    d.extend_from_slice(&[0x91, 0, 11]);
    let pack = p
        .entry(
            gix_pack::data::entry::Header::OfsDelta {
                base_distance: at - 12,
            },
            d.len() as u64,
            &d,
        )
        .finish();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(msg.contains("3221225472 bytes exceeds"), "{msg}");
    // A zlib bomb: declares 1 KiB, inflates to 1 GiB of zeros; stops at the declared size.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        z.write_all(&zeros).unwrap();
    }
    let bomb = z.finish().unwrap();
    let mut pack = gix_pack::data::header::encode(gix_pack::data::Version::V2, 1).to_vec();
    gix_pack::data::entry::Header::Blob
        .write_to(1024, &mut pack)
        .unwrap();
    pack.extend(bomb);
    let started = std::time::Instant::now();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(msg.contains("more than the 1024 bytes"), "{msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // More objects than allowed.
    let pack = PackBytes::new()
        .object(Kind::Blob, b"a")
        .object(Kind::Blob, b"b")
        .finish();
    let small = Limits {
        max_objects: 1,
        ..Limits::default()
    };
    assert!(
        refused(index_bytes(&pack, &staging, &small, Checks::STRICT))
            .contains("more than the limit of 1")
    );
}

#[test]
fn broken_packs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let limits = Limits::default();
    let good = PackBytes::new().object(Kind::Blob, b"hello").finish();
    assert!(index_bytes(&good, &staging, &limits, Checks::STRICT).is_ok());
    let mut bad_sum = good.clone();
    let n = bad_sum.len();
    bad_sum[n - 1] ^= 1;
    assert!(refused(index_bytes(&bad_sum, &staging, &limits, Checks::STRICT)).contains("checksum"));
    assert!(refused(index_bytes(
        &good[..good.len() - 5],
        &staging,
        &limits,
        Checks::STRICT
    ))
    .contains("ends"));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(
        refused(index_bytes(&trailing, &staging, &limits, Checks::STRICT))
            .contains("after the pack")
    );
    assert!(refused(index_bytes(
        b"PACK\0\0\0\x09\0\0\0\0",
        &staging,
        &limits,
        Checks::STRICT
    ))
    .contains("header"));
    // Two REF deltas that are each other's base: never resolvable.
    let a = ObjectId::from_bytes_or_panic(&[1; 20]);
    let b = ObjectId::from_bytes_or_panic(&[2; 20]);
    let d = delta_bytes(5, b"xyz", &[]);
    let cycle = PackBytes::new()
        .entry(
            gix_pack::data::entry::Header::RefDelta { base_id: a },
            d.len() as u64,
            &d,
        )
        .entry(
            gix_pack::data::entry::Header::RefDelta { base_id: b },
            d.len() as u64,
            &d,
        )
        .finish();
    assert!(
        refused(index_bytes(&cycle, &staging, &limits, Checks::STRICT))
            .contains("neither the pack nor the repository")
    );
    // The same object twice.
    let twice = PackBytes::new()
        .object(Kind::Blob, b"x")
        .object(Kind::Blob, b"x")
        .finish();
    assert!(refused(index_bytes(&twice, &staging, &limits, Checks::STRICT)).contains("twice"));
}

/// 64 KiB objects, each a delta of the previous one, 300 deep, and a leaf delta of every level
/// placed at the end of the pack, so every level still has a delta to apply after the deeper
/// ones: each base stays needed while everything below it is resolved.
fn bushy_chain() -> Vec<u8> {
    let mut p = PackBytes::new();
    let base: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut levels = vec![p.offset_of_entry()];
    p = p.object(Kind::Blob, &base);
    for i in 0..300u32 {
        let d = delta_bytes(65536, &i.to_le_bytes(), &[(0, 65532)]);
        let at = p.offset_of_entry();
        let prev = levels[levels.len() - 1];
        p = p.entry(
            gix_pack::data::entry::Header::OfsDelta {
                base_distance: at - prev,
            },
            d.len() as u64,
            &d,
        );
        levels.push(at);
    }
    for (i, level) in levels.iter().enumerate().skip(1) {
        let leaf = delta_bytes(65536, format!("leaf {i}").as_bytes(), &[(8, 65528)]);
        let at = p.offset_of_entry();
        let header = gix_pack::data::entry::Header::OfsDelta {
            base_distance: at - level,
        };
        let declared = leaf.len() as u64;
        p = p.entry(header, declared, &leaf);
        let _ = declared;
    }
    p.finish()
}

#[test]
fn delta_chains_are_bounded_in_depth_memory_and_work() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let pack = bushy_chain();
    let shallow = Limits {
        max_delta_depth: 100,
        ..Limits::default()
    };
    assert!(
        refused(index_bytes(&pack, &staging, &shallow, Checks::STRICT))
            .contains("longer than the limit of 100")
    );
    // The default cache holds the 19 MiB of bases this tree keeps needing; the working set
    // reserved is the cache and three objects per thread, not the tree.
    let limits = Limits::default();
    let budget = budget();
    let received = receive(
        &mut &pack[..],
        &staging,
        SHA1,
        &limits,
        &budget,
        Checks::STRICT,
    )
    .unwrap();
    let (threads, working) = received.reserve_working_set(&limits, &budget).unwrap();
    assert!(
        working.bytes() <= threads as u64 * (34 << 20),
        "working set {}",
        working.bytes()
    );
    let indexed = received
        .resolve(&mut |_| Ok(None), &limits, Checks::STRICT, threads)
        .unwrap();
    assert_eq!(indexed.num_objects, 601);
    let idx = indexed.paths().unwrap().1.to_owned();
    git(dir.path(), &["verify-pack", idx.to_str().unwrap()]);
    // A cache far too small for it: evicted bases are derived again from the root, quadratic
    // work that is stopped rather than done.
    let tiny = Limits {
        base_cache_bytes: 256 << 10,
        ..Limits::default()
    };
    let msg = refused(index_bytes(&pack, &staging, &tiny, Checks::STRICT));
    assert!(msg.contains("more work than allowed"), "{msg}");
    // With a cache of a quarter of the tree, re-deriving stays within the allowance.
    let quarter = Limits {
        base_cache_bytes: 5 << 20,
        ..Limits::default()
    };
    assert!(index_bytes(&pack, &staging, &quarter, Checks::STRICT).is_ok());
}

#[test]
fn objects_breaking_fsck_rules_are_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let limits = Limits::default();
    let tree = {
        let mut t = b"100644 .git\0".to_vec();
        t.extend_from_slice(&[7; 20]);
        t
    };
    let pack = PackBytes::new().object(Kind::Tree, &tree).finish();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(msg.contains("hasDotgit"), "{msg}");
    let commit =
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter C <c@x> 1 +0000\n\nno author\n";
    let pack = PackBytes::new().object(Kind::Commit, commit).finish();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(msg.contains("missingAuthor"), "{msg}");
    // A bad commit that arrives as a delta is caught when resolved.
    let good = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1 +0000\n\nmsg\n";
    let p = PackBytes::new().object(Kind::Commit, good);
    let at = p.offset_of_entry();
    let d = delta_bytes(good.len() as u64, b"\n\nno author\n", &[(0, 46)]);
    let pack = p
        .entry(
            gix_pack::data::entry::Header::OfsDelta {
                base_distance: at - 12,
            },
            d.len() as u64,
            &d,
        )
        .finish();
    let msg = refused(index_bytes(&pack, &staging, &limits, Checks::STRICT));
    assert!(msg.contains("missingAuthor"), "{msg}");
    assert!(index_bytes(&pack, &staging, &limits, Checks::NONE).is_ok());
    if let Err(Error::Refused(Refused::Fsck(e))) =
        index_bytes(&pack, &staging, &limits, Checks::STRICT)
    {
        assert_eq!(e.finding.id, MsgId::MissingAuthor);
    }
}

/// Every object of `repo` as git reads it: id → (kind, content).
fn objects_as_git_reads_them(repo: &Path) -> Vec<(ObjectId, Kind, Vec<u8>)> {
    let out = git_stdin(repo, &["cat-file", "--batch-all-objects", "--batch"], b"");
    let mut objects = Vec::new();
    let mut rest = &out[..];
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let line = std::str::from_utf8(&rest[..nl]).unwrap();
        let mut words = line.split(' ');
        let id = ObjectId::from_hex(words.next().unwrap().as_bytes()).unwrap();
        let kind = Kind::from_bytes(words.next().unwrap().as_bytes()).unwrap();
        let size: usize = words.next().unwrap().parse().unwrap();
        objects.push((id, kind, rest[nl + 1..nl + 1 + size].to_vec()));
        rest = &rest[nl + 1 + size + 1..];
    }
    objects
}

/// A repository of `commits` commits in `dir/repo`, and its objects as git reads them.
fn repo_with_history(
    dir: &Path,
    commits: usize,
) -> (std::path::PathBuf, Vec<(ObjectId, Kind, Vec<u8>)>) {
    let repo = dir.join("repo");
    std::fs::create_dir(&repo).unwrap();
    history(&repo, commits);
    let objects = objects_as_git_reads_them(&repo);
    (repo, objects)
}

/// Index `pack` with the default limits and strict checks.
fn index_default(pack: &[u8], dir: &Path) -> Indexed {
    index_bytes(
        pack,
        &dir.join("staging"),
        &Limits::default(),
        Checks::STRICT,
    )
    .unwrap()
}

fn db_of(pack: Arc<Pack>) -> crate::odb::ObjectDb {
    crate::odb::ObjectDb::detached(vec![pack])
}

#[test]
fn stored_packs_read_back_as_git_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, expected) = repo_with_history(dir.path(), 40);
    // OFS deltas, REF deltas, and long chains (depth up to 250, as `git gc --aggressive`).
    for args in [
        &["pack-objects", "--all", "--stdout", "--delta-base-offset"][..],
        &["pack-objects", "--all", "--stdout"][..],
        &[
            "pack-objects",
            "--all",
            "--stdout",
            "--depth=250",
            "--window=50",
        ][..],
    ] {
        let pack = git_stdin(&repo, args, b"");
        let indexed = index_default(&pack, dir.path());
        let db = db_of(indexed.open().unwrap().unwrap());
        let reader = db.reader();
        let mut buf = Vec::new();
        let mut deltas = 0;
        for (id, kind, content) in &expected {
            assert_eq!(reader.read(id, &mut buf).unwrap(), *kind, "{id} ({args:?})");
            assert_eq!(&buf, content, "{id} ({args:?})");
            assert_eq!(
                reader.header(id).unwrap(),
                Some((*kind, content.len() as u64)),
                "{id} ({args:?})"
            );
            let pack = &db.packs()[0];
            deltas += usize::from(
                pack.data
                    .entry(pack.lookup(id).unwrap())
                    .unwrap()
                    .header
                    .is_delta(),
            );
        }
        assert!(deltas > 30, "the pack holds deltas ({deltas})");
        // Read twice more, in reverse: through the cache of bases this time.
        for (id, _, content) in expected.iter().rev() {
            reader.read(id, &mut buf).unwrap();
            assert_eq!(&buf, content);
        }
    }
}

#[test]
fn a_corrupt_stored_pack_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, expected) = repo_with_history(dir.path(), 20);
    let pack = git_stdin(
        &repo,
        &["pack-objects", "--all", "--stdout", "--delta-base-offset"],
        b"",
    );
    let indexed = index_default(&pack, dir.path());
    let (pack_path, idx_path) = indexed.paths().unwrap();
    let good = std::fs::read(pack_path).unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut errors = 0;
    for round in 0..40 {
        let mut bad = good.clone();
        match round % 4 {
            // Bytes changed anywhere among the entries (headers, sizes, compressed data).
            0..=2 => {
                for _ in 0..1 + round % 5 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let at = 12 + (rng as usize) % (bad.len() - 32);
                    bad[at] ^= (rng >> 32) as u8 | 1;
                }
            }
            // Cut short: the index names entries past the end of the file.
            _ => bad.truncate(good.len() / (2 + round % 3)),
        }
        let path = dir.path().join(format!("bad-{round}.pack"));
        std::fs::write(&path, &bad).unwrap();
        let Ok(opened) = Pack::open("bad", idx_path, &path, Reach::Unknown, SHA1) else {
            errors += 1;
            continue;
        };
        let db = db_of(Arc::new(opened));
        let reader = db.reader();
        let mut buf = Vec::new();
        for (id, _, _) in &expected {
            // An error or an object, never a panic. (A changed delta base offset may point
            // at another object of the same size and read back wrong content: git reads
            // packs the same way, and it is what `fsck` and the checksum are for.)
            match reader.read(id, &mut buf) {
                Ok(_) => {}
                Err(Error::Corrupt { .. }) | Err(Error::Io(_)) => errors += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
            let _ = reader.header(id);
        }
    }
    assert!(errors > 40, "corruption was noticed ({errors} errors)");
}
