"""Every git command the harness runs: no hooks, filters, fsmonitor, attributes or transports.

Note [hardened git]: a hostile change must not get code executed by the harness's own git
operations. Each git call passes `-c` overrides that disable hooks (`core.hooksPath=/dev/null`),
fsmonitor, the global attributes file, auto-gc/maintenance and every transport, neutralizes each
filter, diff-textconv and merge driver found in any config file, and runs without the system
config or system attributes. In-tree `.gitattributes` are refused by the apply policy and by the
tree check (tree.py); the repository's own config, hooks and info/ are fingerprinted at run
start and checked before every commit (workspace.git_fingerprint).
"""

from __future__ import annotations

import functools
import os
import subprocess

BASE_OVERRIDES = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.attributesFile=/dev/null",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.editor=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.allow=never",
    "submodule.recurse=false",
    "diff.external=",
    "commit.gpgsign=false",
    "tag.gpgsign=false",
    "advice.detachedHead=false",
]
DRIVER_KEYS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)$"


def git_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_EXTERNAL_DIFF"):
        env.pop(name, None)
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_ATTR_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        GIT_NO_REPLACE_OBJECTS="1",
    )
    env.update(extra or {})
    return env


@functools.lru_cache(maxsize=32)
def _driver_overrides(cwd: str) -> tuple[str, ...]:
    """`-c` values that switch off every filter/textconv/merge driver the configs define."""
    listed = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "config", "--null", "--name-only",
         "--get-regexp", DRIVER_KEYS],
        cwd=cwd, capture_output=True, text=True, env=git_env(),
    )  # fmt: skip
    out = []
    for name in filter(None, listed.stdout.split("\0")):
        if name.startswith("filter.") and name.endswith(".required"):
            continue
        value = "false" if name.startswith("merge.") else ""  # a failing merge driver: conflict
        out.append(f"{name}={value}")
        if name.startswith("filter."):
            out.append(name.rsplit(".", 1)[0] + ".required=false")
    return tuple(out)


def overrides(cwd: str | os.PathLike | None = None) -> list[str]:
    drivers = _driver_overrides(str(cwd)) if cwd else ()
    return [*BASE_OVERRIDES, *drivers]


def git_command(cwd: str | os.PathLike | None = None) -> list[str]:
    """`git` plus the hardening `-c` flags, for subprocess calls."""
    argv = ["git"]
    for value in overrides(cwd):
        argv += ["-c", value]
    return argv
