"""Drive a git client library against a server, for the client matrix in tests/tests/clients.rs.

    client.py <pygit2|dulwich> clone <url> <token> <dest>
    client.py <pygit2|dulwich> fetch <url> <token> <repo>      # into refs/remotes/origin/*
    client.py <pygit2|dulwich> push  <url> <token> <repo> <branch>

The token goes as the password of HTTP Basic (user `git`), never into the repository's config.
Prints the library's version first; exits non-zero with the error on failure.
"""
import sys


def pygit2_client(op, url, token, path, branch=None):
    import pygit2

    print(f"pygit2 {pygit2.__version__} libgit2 {pygit2.LIBGIT2_VERSION}")
    callbacks = pygit2.RemoteCallbacks(credentials=pygit2.UserPass("git", token))
    if op == "clone":
        pygit2.clone_repository(url, path, callbacks=callbacks)
    elif op == "fetch":
        repo = pygit2.Repository(path)
        remote = repo.remotes.create_anonymous(url)
        remote.fetch(["+refs/heads/*:refs/remotes/origin/*"], callbacks=callbacks)
    elif op == "push":
        repo = pygit2.Repository(path)
        remote = repo.remotes.create_anonymous(url)
        failures = []

        def rejected(refname, message):
            if message:
                failures.append(f"{refname}: {message}")

        callbacks.push_update_reference = rejected
        remote.push([f"refs/heads/{branch}:refs/heads/{branch}"], callbacks=callbacks)
        if failures:
            raise SystemExit("push rejected: " + "; ".join(failures))
    else:
        raise SystemExit(f"unknown operation {op}")


def dulwich_client(op, url, token, path, branch=None):
    import dulwich
    from dulwich import porcelain

    print(f"dulwich {'.'.join(map(str, dulwich.__version__))}")
    auth = {"username": "git", "password": token}
    if op == "clone":
        porcelain.clone(url, path, **auth).close()
    elif op == "fetch":
        with porcelain.open_repo_closing(path) as repo:
            result = porcelain.fetch(repo, url, **auth)
            for name, sha in result.refs.items():
                if name.startswith(b"refs/heads/"):
                    repo.refs[b"refs/remotes/origin/" + name[len(b"refs/heads/"):]] = sha
    elif op == "push":
        ref = f"refs/heads/{branch}".encode()
        porcelain.push(path, url, [ref + b":" + ref], **auth)
    else:
        raise SystemExit(f"unknown operation {op}")


if __name__ == "__main__":
    client, op, url, token, path, *rest = sys.argv[1:]
    {"pygit2": pygit2_client, "dulwich": dulwich_client}[client](op, url, token, path, *rest)
