"""Edit parsing, the apply cascade, did-you-mean feedback and the path policy."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.edits import apply_edits, check_path, matches_any, parse_edits

SCOPE = ["src/**"]
PROTECTED = ["**/conftest.py", "src/locked/**"]
ORIGINAL = "def f(x):\n    y = x + 1\n    return y\n\n\ndef g(x):\n    return x\n"


@pytest.fixture
def tree(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/mod.py").write_text(ORIGINAL)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"],
        cwd=tmp_path,
        check=True,
    )
    return tmp_path


def block(path, search, replace):
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def apply(tree, text):
    return apply_edits(tree, parse_edits(text), SCOPE, PROTECTED)


def test_exact_match(tree):
    report = apply(tree, block("src/mod.py", "    y = x + 1\n", "    y = x + 2\n"))
    assert report.ok and report.results[0].method == "exact"
    assert "y = x + 2" in (tree / "src/mod.py").read_text()


def test_whitespace_tolerant_match_reindents(tree):
    report = apply(tree, block("src/mod.py", "y = x + 1\nreturn y\n", "y = x * 3\nreturn y\n"))
    assert report.ok and report.results[0].method == "whitespace"
    assert "    y = x * 3\n    return y\n" in (tree / "src/mod.py").read_text()


def test_not_found_says_did_you_mean_with_line_numbers(tree):
    report = apply(tree, block("src/mod.py", "    y = x + 10\n    return y\n", "pass\n"))
    assert not report.ok
    feedback = report.feedback()
    assert "did you mean lines 2-3" in feedback and "    2 |     y = x + 1" in feedback
    assert "'y = x + 10'" in feedback
    assert (tree / "src/mod.py").read_text() == ORIGINAL


def test_ambiguous_match_and_create(tree):
    report = apply(tree, block("src/mod.py", "(x):\n", "(x, z):\n"))
    assert not report.ok and "matches" in report.feedback()
    report = apply(tree, block("src/new/thing.py", "", "X = 1\n"))
    assert report.ok and (tree / "src/new/thing.py").read_text() == "X = 1\n"


def test_unified_diff_cascade(tree):
    diff = (
        "```diff\n--- a/src/mod.py\n+++ b/src/mod.py\n@@ -1,3 +1,3 @@\n def f(x):\n"
        "-    y = x + 1\n+    y = x - 1\n     return y\n```\n"
    )
    report = apply(tree, diff)
    assert report.ok and report.results[0].method == "git-apply"
    assert "x - 1" in (tree / "src/mod.py").read_text()


def test_unified_diff_whitespace_fallback_and_failure_hint(tree):
    diff = (
        "```diff\n--- a/src/mod.py\n+++ b/src/mod.py\n@@ -1,3 +1,3 @@\n def f(x):\n"
        "-      y = x + 1\n+      y = x - 5\n     return y\n```\n"
    )
    report = apply(tree, diff)
    assert report.ok and report.results[0].method in ("git-apply-ws", "git-apply-3way")
    bad = (
        "```diff\n--- a/src/mod.py\n+++ b/src/mod.py\n@@ -1,3 +1,3 @@\n def f(x):\n"
        "-    y = x + 100\n+    y = 0\n     return y\n```\n"
    )
    report = apply(tree, bad)
    assert not report.ok
    assert "diff did not apply" in report.feedback() and "did you mean" in report.feedback()


def test_malformed_and_missing_edits(tree):
    report = apply(tree, "src/mod.py\n<<<<<<< SEARCH\nfoo\n>>>>>>> REPLACE\n")
    assert not report.ok and "no '=======' divider" in report.feedback()
    report = apply(tree, "I think we should refactor everything.")
    assert not report.ok and "No edits found" in report.feedback()


def test_scope_and_protected_rejections(tree):
    text = (
        block("docs/readme.md", "", "hi\n")
        + block("src/conftest.py", "", "x\n")
        + block("src/../../etc/passwd", "", "x\n")
        + block("/etc/passwd", "", "x\n")
    )
    report = apply(tree, text)
    statuses = [(r.status, r.message.split(" ")[0]) for r in report.results]
    assert all(s == "rejected" for s, _ in statuses)
    messages = [r.message for r in report.results]
    assert "outside the goal's scope" in messages[0]
    assert "PROTECTED" in messages[1]
    assert "'..'" in messages[2] and "absolute" in messages[3]
    assert not (tree / "docs").exists() and not (tree / "src/conftest.py").exists()


def test_symlinks_rejected(tree, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    os.symlink(outside, tree / "src" / "link")
    assert "symlink" in check_path(tree, "src/link/evil.py", SCOPE, PROTECTED)
    diff = (
        "```diff\ndiff --git a/src/l b/src/l\nnew file mode 120000\n--- /dev/null\n"
        "+++ b/src/l\n@@ -0,0 +1 @@\n+/etc/passwd\n```\n"
    )
    report = apply(tree, diff)
    assert report.results[0].status == "rejected" and "symlink" in report.results[0].message
    assert list(outside.iterdir()) == []


def test_glob_semantics():
    assert matches_any("runtime/csrc/ops/a.cpp", ["runtime/csrc/**"])
    assert matches_any("a/b/conftest.py", ["**/conftest.py"]) and matches_any(
        "conftest.py", ["**/conftest.py"]
    )
    assert not matches_any("runtime/csrc/ops/a.cpp", ["runtime/*.cpp"])
