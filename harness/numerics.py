"""Split numerics: ember runs in the sandbox, PyTorch in a clean harness child, the harness judges.

Note [split numerics]: model-written code must not be able to influence its own verdict, so
  - the PyTorch reference runs in a harness-owned child (`ReferenceServer`) started with `-I -S`
    outside the worktree: it never imports the worktree's code, its .pth files or sitecustomize;
  - ember runs in the sandboxed child (`harness.sandbox.run_command`), which receives only the
    inputs and which callable to call (never the reference, tolerances or expected outputs) and
    returns raw outcomes (arrays), never a verdict; torch is not importable there;
  - the harness compares the two outcomes in its own process with the shared engine (`numcheck`);
  - the inputs are the harness's own arrays, so an ember call that mutates them is caught, and
    every check runs on a second draw of fresh inputs, chosen after the first draw has finished.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import numcheck
from numcheck import Tolerance
from numcheck.cases import NumericsCase
from numcheck.compare import Comparison
from numcheck.runner import Outcome, compare_outcomes, outcome_summary
from numcheck.wire import CaseRequest, Request, WireError, dump_request, load_outcomes

from .config import NumericsCheck

NUMCHECK_DIR = Path(numcheck.__file__).resolve().parent
CHILD_SCRIPT = NUMCHECK_DIR / "child.py"
FRAME = struct.Struct("<Q")
MAX_OUTCOME_BYTES = 256 << 20
REFERENCE_FAILURES = ("import", "resolve", "setup")  # the goal's reference is broken, not ember
ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


class ReferenceFailure(RuntimeError):
    """The PyTorch reference could not be computed: a harness or goal problem, not the model's."""


def site_dirs() -> list[str]:
    """This interpreter's site-packages, passed to children explicitly (they run with -S)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def child_command(
    lib: str, *args: str, path: Sequence[str] = (), script: Path = CHILD_SCRIPT
) -> list[str]:
    """argv of a numcheck child: `path` first, then site-packages, on a clean sys.path."""
    entries = [arg for entry in [*path, *site_dirs()] for arg in ("--path", entry)]
    return [sys.executable, "-I", "-S", str(script), lib, *args, *entries]


class ReferenceServer:
    """The PyTorch child: imports torch once, then answers requests framed on its stdin/stdout."""

    def __init__(self, log_path: Path, timeout_s: float):
        self.log_path, self.timeout_s = log_path, timeout_s
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        if self.proc is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                child_command("torch", "--serve"),
                cwd="/",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env={k: os.environ[k] for k in ENV_KEEP if k in os.environ},
                start_new_session=True,
            )

    def ask(self, payload: bytes) -> bytes:
        with self.lock:
            self.start()
            assert self.proc is not None and self.proc.stdin and self.proc.stdout
            try:
                self.proc.stdin.write(FRAME.pack(len(payload)) + payload)
                self.proc.stdin.flush()
                header = self.proc.stdout.read(FRAME.size)
                if len(header) < FRAME.size:
                    raise ReferenceFailure(f"the PyTorch reference child died: {self._log_tail()}")
                (size,) = FRAME.unpack(header)
                reply = self.proc.stdout.read(size)
            except (BrokenPipeError, OSError) as exc:
                raise ReferenceFailure(
                    f"the PyTorch reference child failed ({exc}): {self._log_tail()}"
                ) from None
            if not reply:
                raise ReferenceFailure(f"the PyTorch reference child failed: {self._log_tail()}")
            return reply

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """End the child now: it holds no state, and torch's interpreter teardown alone would add
        a second or two to every verdict."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()


@dataclass
class CaseResult:
    """One case on one draw: the engine's report, or why there is none."""

    case: NumericsCase
    draw: int
    seed: int
    comparisons: list[Comparison] = field(default_factory=list)
    ember: Outcome | None = None
    torch: Outcome | None = None

    @property
    def ok(self) -> bool:
        return bool(self.comparisons) and all(c.ok for c in self.comparisons)

    def rows(self) -> list[dict]:
        """One JSON row per failing comparison (the record, the feedback, regression growth)."""
        tol = self.case.tolerance or numcheck.tolerance_for(self.case.dtype)
        seeded = replace(self.case, seed=self.seed)
        base = {
            "check": self.case.name,
            "shape": list(self.case.shape),
            "dtype": self.case.dtype,
            "seed": self.seed,
            "draw": self.draw,
            "rtol": tol.rtol,
            "atol": tol.atol,
            "case": seeded.to_dict(),
        }
        return [
            dict(
                base, ok=False, phase=c.what, max_abs=c.max_abs, max_rel=c.max_rel, error=c.message
            )
            for c in self.comparisons
            if not c.ok
        ]


def _fail(case: NumericsCase, draw: int, seed: int, what: str, message: str) -> CaseResult:
    return CaseResult(case, draw, seed, [Comparison(what, False, message)])


@dataclass
class SplitCheck:
    """Runs cases through the split pipeline; `run_ember(payload, tag)` runs the sandboxed child
    on a serialized request and returns the bytes it wrote (or raises WireError saying why not)."""

    reference: ReferenceServer
    run_ember: Callable[[bytes, str], bytes]
    fresh_seed: Callable[[], int]

    def draw(
        self,
        cases: list[NumericsCase],
        seeds: list[int],
        draw: int,
        tag: str,
        *,
        concurrent: bool = True,
        record_inputs: bool = True,
    ) -> list[CaseResult]:
        """One draw: inputs from `seeds`, ember in the sandbox, torch in the reference child (at
        the same time unless timing needs them apart), then the engine's verdict per case."""
        inputs = [case.inputs(seed) for case, seed in zip(cases, seeds, strict=True)]
        grad_seeds = [NumericsCase.grad_seed(seed) for seed in seeds]
        ember_request, torch_request = Request(), Request()
        for c, x, g in zip(cases, inputs, grad_seeds, strict=True):
            torch_request.cases.append(
                CaseRequest(c.torch, c.dtype, x, c.backward, g, record_inputs=record_inputs)
            )
            ember_request.cases.append(  # as torch's, plus the NaN out= buffer and poisoning
                replace(
                    torch_request.cases[-1], expr=c.ember, supports_out=c.supports_out, poison=True
                )
            )
        reply: dict = {}

        def ask_reference():
            try:
                reply["data"] = self.reference.ask(dump_request(torch_request))
            except ReferenceFailure as exc:
                reply["error"] = exc

        thread = threading.Thread(target=ask_reference, daemon=True)
        thread.start()  # PyTorch computes while the sandboxed ember child runs
        if not concurrent:
            self._join(thread)
        try:
            ember_data, ember_error = self.run_ember(dump_request(ember_request), tag), None
        except WireError as exc:
            ember_data, ember_error = b"", str(exc)
        self._join(thread)
        if "error" in reply:
            raise reply["error"]
        try:
            expected = load_outcomes(reply["data"], len(cases))
        except WireError as exc:
            raise ReferenceFailure(f"unreadable PyTorch reference outcomes: {exc}") from None
        for c, e in zip(cases, expected, strict=True):
            if e.raised and e.raised.where in REFERENCE_FAILURES:
                raise ReferenceFailure(
                    f"the goal's PyTorch reference {c.torch!r} failed: {e.raised.describe()}"
                )
        if ember_error is None:
            try:
                actual = load_outcomes(ember_data, len(cases), MAX_OUTCOME_BYTES)
            except WireError as exc:
                ember_error = f"the ember child's outcomes are malformed: {exc}"
        if ember_error is not None:
            return [
                _fail(c, draw, s, "ember child", ember_error)
                for c, s in zip(cases, seeds, strict=True)
            ]
        results = []
        for c, s, x, a, e in zip(cases, seeds, inputs, actual, expected, strict=True):
            report = compare_outcomes(a, e, tol=c.tolerances(), originals=x)
            comparisons = list(report.comparisons) or [Comparison("outputs", True)]
            comparisons += [Comparison("torch fallback", False, n) for n in a.notes if "torch" in n]
            results.append(CaseResult(c, draw, s, comparisons, a, e))
        return results

    def _join(self, thread: threading.Thread) -> None:
        thread.join(self.reference.timeout_s)
        if thread.is_alive():  # a reference that hangs: kill it, which ends the blocked read
            self.reference.close()
            thread.join()
            raise ReferenceFailure(
                f"the PyTorch reference took over {self.reference.timeout_s:.0f}s"
            )

    def check(self, cases: list[NumericsCase], tag: str, recorded_seeds: bool) -> list[CaseResult]:
        """Draw 1 on the cases' seeds (recorded_seeds) or fresh ones, then, if every case passed,
        draw 2 on fresh seeds picked now, after draw 1 has finished."""
        if not cases:
            return []
        seeds = [c.seed for c in cases] if recorded_seeds else [self.fresh_seed() for _ in cases]
        results = self.draw(cases, seeds, 1, f"{tag}-draw1")
        if all(r.ok for r in results):
            results += self.draw(cases, [self.fresh_seed() for _ in cases], 2, f"{tag}-draw2")
        return results


def prepare_io_dir(io_dir: Path) -> Path:
    """A fresh directory holding a private copy of numcheck for the sandboxed child."""
    if io_dir.is_symlink() or io_dir.is_file():
        io_dir.unlink()
    shutil.rmtree(io_dir, ignore_errors=True)
    io_dir.mkdir(parents=True)
    shutil.copytree(NUMCHECK_DIR, io_dir / "numcheck", ignore=shutil.ignore_patterns("__pycache__"))
    return io_dir


def read_child_file(path: Path, limit: int = MAX_OUTCOME_BYTES) -> bytes:
    """Read a file the sandboxed child wrote: a regular file, not a link, at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise WireError(f"no outcome file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not (info.st_mode & 0o170000 == 0o100000):
            raise WireError("the outcome file is not a regular file")
        if info.st_size > limit:
            raise WireError(f"the outcome file has {info.st_size} bytes (limit {limit})")
        return handle.read(limit + 1)


def feedback(results: list[CaseResult], limit: int = 8) -> str:
    """The worst failure per (check, phase, dtype): shape, seed, error and worst element."""
    failing = [r for r in results if not r.ok]
    worst: dict = {}
    for row in (row for r in failing for row in r.rows()):
        key = (row["check"], row["phase"], row["dtype"])
        if key not in worst or (row.get("max_abs") or 0) > (worst[key].get("max_abs") or 0):
            worst[key] = row
    draw2 = [r for r in failing if r.draw == 2]
    out = [f"{len(failing)}/{len(results)} numerics cases failed vs PyTorch:"]
    if draw2 and len(draw2) == len(failing):
        out.append(
            "(every case passed on the first draw of inputs and failed on a second, fresh draw: "
            "results must not depend on which inputs were seen before)"
        )
    for row in list(worst.values())[:limit]:
        error = row["error"].removeprefix(f"{row['phase']}: ")
        out.append(
            f"- {row['check']} {row['phase']} shape={row['shape']} dtype={row['dtype']} "
            f"seed={row['seed']} draw={row['draw']}: {error}"
        )
    return "\n".join(out)


def summary(results: list[CaseResult]) -> dict:
    comparisons = [c for r in results for c in r.comparisons]
    return {
        "cases": len(results),
        "passed": sum(r.ok for r in results),
        "draws": max((r.draw for r in results), default=0),
        "max_abs": max((c.max_abs or 0.0 for c in comparisons), default=0.0),
        "max_rel": max((c.max_rel or 0.0 for c in comparisons), default=0.0),
    }


def record(results: list[CaseResult], path: Path) -> None:
    """The harness's own record of every case (the ember child never writes verdicts)."""
    rows = []
    for r in results:
        rows.append(
            {
                "id": r.case.id,
                "draw": r.draw,
                "seed": r.seed,
                "ok": r.ok,
                "comparisons": [c.to_dict() for c in r.comparisons],
                "ember": outcome_summary(r.ember) if r.ember else None,
                "torch": outcome_summary(r.torch) if r.torch else None,
            }
        )
    path.write_text(json.dumps(rows, indent=1, default=_jsonable))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def check_tolerance(check: NumericsCheck, dtype: str) -> Tolerance | None:
    """The goal's tolerance override for `dtype`, completed from the table; None: the table's."""
    if dtype == "float64":
        rtol, atol = check.rtol_float64, check.atol_float64
    else:
        rtol, atol = check.rtol, check.atol
    if rtol is None and atol is None:
        return None
    table = numcheck.tolerance_for(dtype)
    return Tolerance(table.rtol if rtol is None else rtol, table.atol if atol is None else atol)


def numerics_cases(checks: list[NumericsCheck]) -> list[NumericsCase]:
    """acceptance.numerics as cases: check x shape x dtype x seeds (seeds are drawn per draw)."""
    return [
        NumericsCase(
            check.name,
            check.ember,
            check.torch,
            list(shape),
            dtype,
            seed=0,
            num_inputs=check.num_inputs,
            input_range=list(check.input_range),
            backward=check.backward,
            supports_out=check.supports_out,
            tolerance=check_tolerance(check, dtype),
        )
        for check in checks
        for shape in check.shapes
        for dtype in check.dtypes
        for _ in range(check.seeds)
    ]
