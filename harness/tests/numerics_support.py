"""The fixture's triple goal as the numerics tests use it: no build or pytest stage (they only
cost time here), optionally a performance check."""

from __future__ import annotations

import textwrap

from harness.tests.support import GOALS, sr

BUILD_AND_PYTEST = '      build: true\n      pytest: ["runtime/tests/python/test_ops.py"]\n'
REGRESSION = "      regression_suite: true\n"


def triple_goal(agent: str, attempts: int = 1, performance: str = "") -> str:
    text = GOALS.format(agent=agent, attempts=attempts, tokens=100000, stuck=3, stage_timeout=120)
    assert BUILD_AND_PYTEST in text and REGRESSION in text, "support.GOALS changed shape"
    return text.replace(BUILD_AND_PYTEST, "      build: false\n").replace(
        REGRESSION, REGRESSION + performance
    )


def triple(body: str) -> str:
    """A reply block defining ember.ops.triple(x) with `body` (a function body)."""
    code = "    return x * 2\n\n\ndef triple(x):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return sr("runtime/python/ember/ops.py", "    return x * 2\n", code)


def on_import(code: str) -> str:
    """A reply block appending `code` to ember/__init__.py (it runs whenever ember is imported)."""
    anchor = "tensor = from_numpy\n"
    return sr("runtime/python/ember/__init__.py", anchor, anchor + textwrap.dedent(code))
