"""The real `huggingface_hub` client against artifact-git's Hub API.

Run by tests/tests/hub.rs with HF_ENDPOINT={server}/hf, HF_TOKEN, REPO_ID, SOURCE (a folder
to upload) and WORK (scratch space). It creates a repository, writes to it every way the
client can (upload_file, upload_folder with delete_patterns, create_commit with additions,
deletions and copies, delete_file), makes and removes branches and tags, reads it back every
way (repo_info, list_repo_files, list_repo_tree, get_paths_info, hf_hub_download by branch,
tag and commit, with a subfolder, resumed; snapshot_download with patterns; HfFileSystem),
checks the client's own exceptions, and prints what it saw as JSON for the Rust side to
compare with what git says of the same repository.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.utils import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

REPO = os.environ["REPO_ID"]
SOURCE = Path(os.environ["SOURCE"])
WORK = Path(os.environ["WORK"])
api = HfApi()
seen = {}


def sha(data):
    return hashlib.sha256(data).hexdigest()


def expect(error, f, *args, **kwargs):
    try:
        f(*args, **kwargs)
    except error:
        return
    raise AssertionError(f"{f.__name__}{args} did not raise {error.__name__}")


# Who the token is; a new private repository (again: exists; without exist_ok: 409).
seen["whoami"] = api.whoami()["name"]
url = api.create_repo(REPO, private=True)
assert url.repo_id == REPO, url
api.create_repo(REPO, exist_ok=True)
try:
    api.create_repo(REPO)
    raise AssertionError("a second create_repo succeeded")
except HfHubHTTPError as e:
    assert e.response.status_code == 409, e

# Writes: one file, then the whole folder, then a commit of every kind of operation.
first = api.upload_file(path_or_fileobj=b"# model card\n", path_in_repo="README.md", repo_id=REPO)
seen["first_commit"] = first.oid
folder = api.upload_folder(folder_path=str(SOURCE), repo_id=REPO, commit_message="the model")
seen["folder_commit"] = folder.oid
ops = [
    CommitOperationAdd(path_in_repo="notes/added.txt", path_or_fileobj=b"added by create_commit\n"),
    CommitOperationDelete(path_in_repo="data/b.txt"),
    CommitOperationCopy(src_path_in_repo="model.safetensors", path_in_repo="copies/model.safetensors"),
    CommitOperationCopy(src_path_in_repo="config.json", path_in_repo="copies/config.json"),
]
mixed = api.create_commit(REPO, operations=ops, commit_message="mixed", parent_commit=folder.oid)
seen["mixed_commit"] = mixed.oid
# A parent that is not the branch's commit any more is refused.
try:
    api.create_commit(REPO, operations=[CommitOperationDelete(path_in_repo="config.json")],
                      commit_message="stale", parent_commit=folder.oid)
    raise AssertionError("a commit on a stale parent succeeded")
except HfHubHTTPError as e:
    assert e.response.status_code in (409, 412), e
api.delete_file("notes/added.txt", REPO, commit_message="delete one")
expect(EntryNotFoundError, api.delete_file, "no/such/file.txt", REPO)
# upload_folder with delete_patterns: data/* is replaced by what the folder has now.
(WORK / "second").mkdir()
(WORK / "second" / "data").mkdir()
(WORK / "second" / "data" / "c.txt").write_bytes(b"c\n")
api.upload_folder(folder_path=str(WORK / "second"), repo_id=REPO, delete_patterns=["data/*"],
                  commit_message="replace data")

# Branches and tags.
api.create_branch(REPO, branch="dev", revision=folder.oid)
api.create_branch(REPO, branch="dev", exist_ok=True)
api.create_tag(REPO, tag="v1", revision=folder.oid, tag_message="first release")
api.create_tag(REPO, tag="light", revision="main")
api.create_branch(REPO, branch="gone")
api.delete_branch(REPO, branch="gone")
api.delete_tag(REPO, tag="light")
refs = api.list_repo_refs(REPO)
seen["branches"] = sorted((b.name, b.target_commit) for b in refs.branches)
seen["tags"] = sorted((t.name, t.target_commit) for t in refs.tags)
seen["commits"] = [c.commit_id for c in api.list_repo_commits(REPO)]
seen["commit_titles"] = [c.title for c in api.list_repo_commits(REPO)]

# Reads.
info = api.repo_info(REPO, files_metadata=True)
seen["sha"] = info.sha
assert info.private is True
seen["siblings"] = sorted(
    (s.rfilename, s.size, s.blob_id, s.lfs.sha256 if s.lfs else None) for s in info.siblings
)
seen["files"] = sorted(api.list_repo_files(REPO))
seen["files_at_v1"] = sorted(api.list_repo_files(REPO, revision="v1"))
tree = list(api.list_repo_tree(REPO, recursive=True, expand=True))
seen["tree"] = sorted(
    (e.path, type(e).__name__, getattr(e, "blob_id", None) or getattr(e, "tree_id", None),
     e.last_commit.oid if e.last_commit else None)
    for e in tree
)
paths = api.get_paths_info(REPO, ["config.json", "data", "model.safetensors", "nothing"], expand=True)
seen["paths_info"] = [
    (p.path, type(p).__name__, p.last_commit.oid if p.last_commit else None,
     p.lfs.sha256 if getattr(p, "lfs", None) else None)
    for p in paths
]

cache = WORK / "cache"
downloads = {}
for filename, revision in [
    ("config.json", None),
    ("model.safetensors", "main"),
    ("big.dat", folder.oid),
    ("README.md", "v1"),
    ("data/a.txt", "dev"),
]:
    path = hf_hub_download(REPO, filename, revision=revision, cache_dir=str(cache))
    downloads[f"{filename}@{revision}"] = sha(Path(path).read_bytes())
path = hf_hub_download(REPO, "a.txt", subfolder="data", revision="dev", cache_dir=str(cache))
downloads["data/a.txt (subfolder)"] = sha(Path(path).read_bytes())
seen["downloads"] = downloads
expect(RepositoryNotFoundError, hf_hub_download, "lab/no-such-repo", "x.txt", cache_dir=str(cache))
expect(RevisionNotFoundError, hf_hub_download, REPO, "config.json", revision="nope", cache_dir=str(cache))
expect(EntryNotFoundError, hf_hub_download, REPO, "nope.txt", cache_dir=str(cache))
expect(RepositoryNotFoundError, hf_hub_download, REPO, "config.json", cache_dir=str(WORK / "anon"), token=False)

# Resumed: a download cut halfway leaves `<etag>.incomplete`; the next asks for the rest
# only (the garbage half is kept, which proves the server honoured the range).
big = (SOURCE / "big.dat").read_bytes()
resume_cache = WORK / "resume"
blob_id = dict((s[0], s[2]) for s in seen["siblings"])["big.dat"]
blobs = resume_cache / ("models--" + REPO.replace("/", "--")) / "blobs"
blobs.mkdir(parents=True)
half = len(big) // 2
(blobs / f"{blob_id}.incomplete").write_bytes(b"\0" * half)
path = hf_hub_download(REPO, "big.dat", cache_dir=str(resume_cache))
resumed = Path(path).read_bytes()
assert resumed == b"\0" * half + big[half:], "the resumed download did not continue at the range"
seen["resumed"] = True

snap = snapshot_download(REPO, allow_patterns=["*.json", "data/*"], ignore_patterns=["copies/*"],
                         cache_dir=str(WORK / "snap"))
seen["snapshot"] = sorted(
    str(p.relative_to(snap)) for p in Path(snap).rglob("*") if p.is_file()
)
full = snapshot_download(REPO, cache_dir=str(WORK / "snap-all"))
seen["snapshot_all"] = sorted(
    (str(p.relative_to(full)), sha(p.read_bytes())) for p in Path(full).rglob("*") if p.is_file()
)

fs = HfFileSystem()
seen["fs_ls"] = sorted(e["name"] for e in fs.ls(REPO, detail=True))
seen["fs_glob"] = sorted(fs.glob(f"{REPO}/**/*.json"))
with fs.open(f"{REPO}/big.dat", "rb") as f:
    f.seek(1000)
    part = f.read(5000)
    f.seek(len(big) - 10)
    tail = f.read()
assert part == big[1000:6000], "HfFileSystem read the wrong bytes"
assert tail == big[-10:]
model = (SOURCE / "model.safetensors").read_bytes()
with fs.open(f"{REPO}/model.safetensors", "rb") as f:
    f.seek(123_456)
    assert f.read(1000) == model[123_456:124_456], "HfFileSystem read the wrong LFS bytes"
seen["fs_read"] = True

# Storage as the Hub manages it, on a repository of its own: LFS files listed and deleted,
# history squashed, the repository deleted (then "not found"; missing_ok takes that).
SCRATCH = REPO + "-scratch"
api.create_repo(SCRATCH)
api.upload_file(path_or_fileobj=b"\0" * 300_000, path_in_repo="old.bin", repo_id=SCRATCH)
api.upload_file(path_or_fileobj=b"\1" * 200_000, path_in_repo="new.bin", repo_id=SCRATCH)
api.delete_file("old.bin", SCRATCH)
lfs_files = list(api.list_lfs_files(SCRATCH))
seen["lfs_files"] = sorted((f.filename, f.size) for f in lfs_files)
unreferenced = [f for f in lfs_files if f.filename == ""]
api.permanently_delete_lfs_files(SCRATCH, unreferenced)
seen["lfs_files_after"] = sorted((f.filename, f.size) for f in api.list_lfs_files(SCRATCH))
before_squash = sorted(api.list_repo_files(SCRATCH))
api.super_squash_history(SCRATCH, branch="main", commit_message="squashed")
seen["squashed"] = [c.title for c in api.list_repo_commits(SCRATCH)]
assert sorted(api.list_repo_files(SCRATCH)) == before_squash, "a squash changed the files"
api.delete_repo(SCRATCH)
expect(RepositoryNotFoundError, api.repo_info, SCRATCH)
expect(RepositoryNotFoundError, api.delete_repo, SCRATCH)
api.delete_repo(SCRATCH, missing_ok=True)
seen["deleted"] = True

print(json.dumps(seen))
