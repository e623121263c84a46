"""The tree check: what is on disk, against the base tree, whatever git would ignore."""

from __future__ import annotations

import os

from harness.tree import REGULAR, Entry, Policy, StatCache, blob_sha, compare, scan, violations

POLICY = Policy(scope=["pkg/**"], protected=["pkg/locked/**"], import_roots=["pkg"])


def test_every_kind_of_change_is_seen_and_judged(tmp_path):
    (tmp_path / ".git").write_text("gitdir: elsewhere\n")  # the worktree's own: skipped
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    (tmp_path / "pkg/mod").mkdir(parents=True)
    (tmp_path / "pkg/mod/a.py").write_text("a = 1\n")
    base = {
        ".gitignore": Entry(REGULAR, blob_sha(b"*.pyc\n")),
        "pkg/mod/a.py": Entry(REGULAR, blob_sha(b"a = 0\n")),
        "pkg/mod/gone.py": Entry(REGULAR, blob_sha(b"")),
    }
    (tmp_path / "pkg/mod/b.py").write_text("b = 1\n")
    (tmp_path / "pkg/mod/stale.pyc").write_bytes(b"\xa7\r\r\n")  # ignored by git, seen here
    (tmp_path / "pkg/mod/run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "pkg/mod/run.sh").chmod(0o755)
    os.symlink("/etc", tmp_path / "pkg/mod/link")
    os.mkfifo(tmp_path / "pkg/mod/pipe")
    (tmp_path / "pkg/mod/nested/.git").mkdir(parents=True)
    (tmp_path / "pkg/newtop").mkdir()
    (tmp_path / "pkg/newtop/__init__.py").write_text("")
    (tmp_path / "pkg/locked").mkdir()
    (tmp_path / "pkg/locked/x.py").write_text("")
    (tmp_path / "outside.py").write_text("")
    changes = compare(base, scan(tmp_path, [], StatCache()), tmp_path)
    kinds = {c.path: c.kind for c in changes}
    assert kinds == {
        "pkg/mod/a.py": "modified",
        "pkg/mod/gone.py": "deleted",
        "pkg/mod/b.py": "added",
        "pkg/mod/stale.pyc": "binary",
        "pkg/mod/run.sh": "mode",
        "pkg/mod/link": "symlink",
        "pkg/mod/pipe": "special",
        "pkg/mod/nested/.git": "nested-git",
        "pkg/newtop/__init__.py": "added",
        "pkg/locked/x.py": "added",
        "outside.py": "added",
    }
    problems = "\n".join(violations(changes, POLICY, set(base)))
    for path in ("stale.pyc", "run.sh", "link", "pipe", "nested/.git", "locked/x.py",
                 "outside.py", "newtop"):  # fmt: skip
        assert path in problems, path
    for path in ("pkg/mod/a.py:", "pkg/mod/b.py:", "pkg/mod/gone.py:"):
        assert path not in problems


def test_cleaning_build_outputs_never_follows_a_symlink(fixture_repo, tmp_path):
    from harness.workspace import Workspace

    ws = Workspace(fixture_repo.root, "triple", "run")
    try:
        base = ws.repo.head.commit.hexsha
        ws.prepare(base)
        decoy = tmp_path / "decoy"
        decoy.mkdir()
        (decoy / "_C.decoy.so").write_text("not ours\n")
        package = ws.worktree / "runtime/python/ember"
        package.rename(package.with_name("moved"))
        package.symlink_to(decoy)  # what a hostile stage can leave behind
        assert ws.outputs() == []
        ws.mark_untrusted()
        ws.prepare(base)  # wipes the build state, then restores the tree
        assert (decoy / "_C.decoy.so").exists()
        assert package.is_dir() and not package.is_symlink()
    finally:
        ws.close()


def test_reports_written_by_sandboxed_code_are_read_without_following_symlinks(tmp_path):
    from harness.grading import read_junit, read_report

    secret = tmp_path / "host-file.xml"
    secret.write_text('<testsuite><testcase classname="a" name="b"/></testsuite>')
    (tmp_path / "junit.xml").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo.xml")
    assert (
        read_report(tmp_path / "junit.xml") is None and read_junit(tmp_path / "junit.xml") is None
    )
    assert read_report(tmp_path / "fifo.xml") is None  # and it does not block
    assert read_junit(secret) == {"a::b": "passed"}
