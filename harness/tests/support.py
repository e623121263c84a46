"""Test support: a tiny fake-runtime git repo and loopback OpenAI/Anthropic servers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REAL_REPO = Path(__file__).resolve().parents[2]

FAKE_EMBER = '''\
"""Stand-in for ember in the harness tests: numpy arrays with just enough autograd (no torch:
the harness's ember child cannot import it)."""
import numpy as np


class dtype(str):
    is_floating_point = property(lambda self: self.startswith("float"))


float32, float64 = dtype("float32"), dtype("float64")


class Tensor:
    def __init__(self, data, parents=()):
        self.data, self.parents, self.grad = np.asarray(data), parents, None
        self.requires_grad = any(p.requires_grad for p, _ in parents)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: dtype(self.data.dtype.name))

    def requires_grad_(self, flag=True):
        self.requires_grad = flag
        return self

    def detach(self):
        return Tensor(self.data)

    def cpu(self):
        return self

    def numpy(self):
        return self.data

    def to(self, kind):
        return Tensor(self.data.astype(str(kind)))

    def backward(self, grad, retain_graph=False):
        order, seen = [], set()

        def visit(t):
            if id(t) not in seen:
                seen.add(id(t))
                for parent, _ in t.parents:
                    visit(parent)
                order.append(t)

        visit(self)
        grads = {id(self): grad.data}
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t.requires_grad and not t.parents:
                t.grad = Tensor(g if t.grad is None else t.grad.data + g)
            for parent, vjp in t.parents:
                if parent.requires_grad:
                    grads[id(parent)] = grads.get(id(parent), 0) + vjp(g)

    def __mul__(self, other):
        if not isinstance(other, Tensor):
            return Tensor(self.data * other, [(self, lambda g: g * other)])
        return Tensor(self.data * other.data, [(self, lambda g: g * other.data), (other, lambda g: g * self.data)])

    def __add__(self, other):
        if not isinstance(other, Tensor):
            return Tensor(self.data + other, [(self, lambda g: g)])
        return Tensor(self.data + other.data, [(self, lambda g: g), (other, lambda g: g)])

    __rmul__, __radd__ = __mul__, __add__


def from_numpy(array):
    return Tensor(np.array(array, copy=True))


tensor = from_numpy


def tanh(x):
    y = np.tanh(x.data)
    return Tensor(y, [(x, lambda g: g * (1 - y * y))])
'''

FAKE_OPS = '''\
"""Elementwise ops of the fake runtime."""


def double(x):
    return x * 2
'''

FAKE_TEST = """\
import numpy as np

import ember.ops


def test_triple_exists_and_keeps_shape():
    assert ember.ops.triple(np.zeros((2, 3))).shape == (2, 3)
"""

# Build = "compile" every Python file; prints gcc-style errors. Hangs (with a grandchild whose
# command line carries GRANDCHILD_MARK) when the worktree or the build dir asks for it.
GRANDCHILD_MARK = "ember-fixture-grandchild"
FAKE_BUILD = """\
import os, pathlib, subprocess, sys, time
root = pathlib.Path("runtime/python")
build_dir = pathlib.Path(sys.argv[1])
if (root / "ember" / "HANG_BUILD").exists() or (build_dir / "SLOW_BUILD").exists():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "GRANDCHILD_MARK"])
    time.sleep(300)
print("env names:", " ".join(sorted(os.environ)))
bad = 0
for f in sorted(root.rglob("*.py")):
    try:
        compile(f.read_text(), str(f), "exec")
    except SyntaxError as e:
        print(f"{f}:{e.lineno}:1: error: {e.msg}")
        bad += 1
sys.exit(1 if bad else 0)
""".replace("GRANDCHILD_MARK", GRANDCHILD_MARK)

GOALS = """\
version: 1
goals:
  - id: triple
    title: Add ember.ops.triple
    default: true
    agent: {agent}
    intent: Add triple(x) returning 3 * x to runtime/python/ember/ops.py.
    scope: ["runtime/python/ember/**"]
    protected: ["tools/**"]
    commands:
      configure: "{{python}} -c pass"
      build: "{{python}} tools/build.py {{build_dir}}"
    acceptance:
      build: true
      pytest: ["runtime/tests/python/test_ops.py"]
      numerics:
        - name: triple
          ember: ember.ops.triple
          torch: "lambda x: x * 3"
          shapes: [[5], [2, 3]]
          dtypes: [float64]
          seeds: 1
      regression_suite: true
    budget: {{attempts: {attempts}, wall_seconds: 300, tokens: {tokens}, dollars: 1.0, stuck_after: {stuck}}}
    limits: {{stage_timeout_s: {stage_timeout}, memory_mb: 4096}}
"""


def sandbox_missing() -> str:
    """Why sandboxed tests must skip here ("" when they run). CI sets EMBER_REQUIRE_SANDBOX=1:
    there a missing sandbox fails those tests instead of skipping them."""
    from harness.sandbox import probe

    if probe().ok or os.environ.get("EMBER_REQUIRE_SANDBOX") == "1":
        return ""
    return f"no sandbox: {probe().reason}"


def unsandboxed_flag(args) -> list[str]:
    """Loop tests still run where namespaces are unavailable (the red team and the sandbox
    tests skip there): `--allow-unsandboxed`, which the harness then logs on every command."""
    return (
        ["--allow-unsandboxed"]
        if args[:1] in (("run",), ("bench",), ("nightly",)) and sandbox_missing()
        else []
    )


def sr(path: str, search: str, replace: str) -> str:
    """A search/replace block as a model would write it."""
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


GOOD = "Plan: add triple.\n" + sr(
    "runtime/python/ember/ops.py",
    "    return x * 2\n",
    "    return x * 2\n\n\ndef triple(x):\n    return x * 3\n",
)
WRONG = "Plan: add triple.\n" + sr(
    "runtime/python/ember/ops.py",
    "    return x * 2\n",
    "    return x * 2\n\n\ndef triple(x):\n    return x * 3.01\n",
)


def git(cwd, *args):
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


class FixtureRepo:
    def __init__(self, root: Path):
        self.root = root
        self.runs = root / "runs"

    def write_goals(
        self,
        agent="fake-openai",
        attempts=3,
        tokens=100000,
        stuck=3,
        stage_timeout=60,
        commit=True,
        light=False,
    ):
        """light: accept on build + pytest only (no numerics child, no regression suite)."""
        text = GOALS.format(
            agent=agent, attempts=attempts, tokens=tokens, stuck=stuck, stage_timeout=stage_timeout
        )
        if light:
            text = text[: text.index("      numerics:")] + text[text.index("    budget:") :]
            text = text.replace("      pytest:", "      regression_suite: false\n      pytest:")
        (self.root / "goals.yaml").write_text(text)
        if commit:
            self.commit("goals")

    def write_agent(self, name, provider, base_url=None, trajectory=None, **extra):
        data = {
            "role": "coder",
            "provider": provider,
            "model": f"{provider}-test-model",
            "max_retries": 3,
            "backoff_s": 0.05,
            "timeout_s": 10,
            "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
            **extra,
        }
        if base_url:
            data["base_url"] = base_url
        if trajectory is not None:  # patch mode: reply texts; tools mode: {"attempts": ...}
            path = self.root / "agents" / f"{name}-trajectory.yaml"
            if isinstance(trajectory, dict):
                content = {"provenance": "scripted", **trajectory}
            else:
                content = {"provenance": "scripted", "responses": [{"text": t} for t in trajectory]}
            path.write_text(json.dumps(content))
            data["trajectory"] = str(path.relative_to(self.root))
        (self.root / "agents" / f"{name}.yaml").write_text(json.dumps(data))
        self.commit(f"agent {name}")

    def commit(self, message):
        git(self.root, "add", "-A")
        git(
            self.root,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        )

    def run(self, *args) -> int:
        from harness.cli import main

        return main(["--repo", str(self.root), *args[:1], *unsandboxed_flag(args), *args[1:]])

    def events(self, run_id=None) -> list[dict]:
        run_dir = self.run_dir(run_id)
        return [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]

    def run_dir(self, run_id=None) -> Path:
        if run_id:
            return self.runs / run_id
        dirs = sorted(self.runs.iterdir())
        assert len(dirs) == 1, dirs
        return dirs[0]


# ---------------------------------------------------------------- loopback model servers


def turn(text: str = "", *calls: tuple[str, dict]) -> dict:
    """A scripted model turn with tool calls: turn("plan", ("read_file", {"path": "x"}))."""
    return {"text": text, "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}


class ScriptedServer:
    """Speaks OpenAI Chat Completions or Anthropic Messages; plays a script of replies.

    Script items: a str (reply text), a dict from `turn` (a reply with tool calls), an int
    (HTTP error status), ("hang", seconds), ("html", body) (a 200 that is not JSON) or
    ("no-usage", text) (a reply without a usage block).
    """

    def __init__(self, flavor: str, script: list):
        self.flavor, self.script, self.requests = flavor, list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers)}
                )
                item = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if isinstance(item, tuple) and item[0] == "hang":
                    time.sleep(item[1])
                    item = outer.script[0] if outer.script else "no more"
                if isinstance(item, int):
                    self._send(item, {"error": {"type": "overloaded", "message": "try later"}})
                elif isinstance(item, tuple) and item[0] == "html":
                    self._send(200, item[1], "text/html")
                elif isinstance(item, tuple) and item[0] == "no-usage":
                    reply = outer.reply(item[1], body)
                    del reply["usage"]
                    self._send(200, reply)
                else:
                    self._send(200, outer.reply(item, body))

            def _send(self, status, payload, content_type="application/json"):
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed (resume tests) or gave up (timeouts)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, item, body: dict) -> dict:
        text = item["text"] if isinstance(item, dict) else item
        calls = item["tool_calls"] if isinstance(item, dict) else []
        n = len(self.requests)
        if self.flavor == "openai":
            message: dict = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [
                    {
                        "id": f"call_{n}_{i}",
                        "type": "function",
                        "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                    }
                    for i, c in enumerate(calls)
                ]
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls" if calls else "stop",
                        "message": message,
                    }
                ],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
            }
        content = [{"type": "text", "text": text}] if text else []
        content += [
            {"type": "tool_use", "id": f"toolu_{n}_{i}", "name": c["name"], "input": c["arguments"]}
            for i, c in enumerate(calls)
        ]
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 900, "output_tokens": 150},
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.flavor == "openai" else "")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def snapshot_real_repo(dest: Path) -> Path:
    """The real repository's files (tracked, or untracked and not ignored) as the one commit of
    a fresh repository at `dest`, for tests that read it through git: the nightly verifies in a
    checkout whose `.git` the sandbox masks, and a test must not depend on the caller's history."""
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, f"--work-tree={REAL_REPO}", "add", "-A")  # reads the real tree, writes dest/.git
    git(dest, "-c", "user.name=ember-tests", "-c", "user.email=tests@ember.invalid",
        "commit", "-q", "--no-verify", "-m", "snapshot of the repository")  # fmt: skip
    git(dest, "checkout-index", "-a")
    return dest


def make_fixture_repo(root: Path) -> FixtureRepo:
    (root / "runtime/python/ember").mkdir(parents=True)
    (root / "runtime/python/ember/__init__.py").write_text(FAKE_EMBER)
    (root / "runtime/python/ember/ops.py").write_text(FAKE_OPS)
    (root / "runtime/tests/python").mkdir(parents=True)
    (root / "runtime/tests/python/test_ops.py").write_text(FAKE_TEST)
    (root / "runtime/csrc/dispatch").mkdir(parents=True)
    (root / "runtime/csrc/dispatch/op_table.cpp").write_text("// fake op table\nOP(double)\n")
    (root / "tools").mkdir()
    (root / "tools/build.py").write_text(FAKE_BUILD)
    shutil.copytree(REAL_REPO / "prompts", root / "prompts")
    (root / "regressions/cases").mkdir(parents=True)
    for name in ("conftest.py", "test_cases.py"):
        shutil.copy(REAL_REPO / "regressions" / name, root / "regressions" / name)
    (root / "agents").mkdir()
    (root / ".gitignore").write_text(".harness/\nruns/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    repo = FixtureRepo(root)
    repo.write_goals(commit=False)
    repo.commit("fixture")
    return repo
