"""A child process that runs requested cases on ONE library and returns outcomes, not verdicts.

    python -I -S numcheck/child.py ember --request R.npz --output O.npz --path WT/runtime/python ...
    python -I -S numcheck/child.py torch --serve --path SITE ...   (framed on stdin/stdout)

`-I -S`: no PYTHONPATH, no user site, no .pth files or sitecustomize: sys.path is the standard
library, this package and the --path entries (the caller names site-packages), nothing else. The
ember child cannot import torch (a finder refuses it), so ember cannot hand the work to PyTorch;
it never sees the reference, the tolerances or the expected outputs. The torch child never has
the worktree on its path. Neither compares anything: the harness does, in its own process.
"""

from __future__ import annotations

import argparse
import importlib.abc
import os
import struct
import sys
import traceback
from pathlib import Path

if __name__ == "__main__":  # run as a script: make this package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TORCH_MODULES = ("torch", "functorch", "torchgen", "torchvision", "torchaudio")
FRAME = struct.Struct("<Q")


class RefuseTorch(importlib.abc.MetaPathFinder):
    """Makes `import torch` fail in the ember child."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in TORCH_MODULES:
            raise ModuleNotFoundError(
                f"{fullname} is not importable while ember is graded: ember must not use PyTorch "
                "(the harness computes the PyTorch reference in another process)",
                name=fullname,
            )
        return None


def setup_path(entries: list[str]) -> None:
    """sys.path: this package, the standard library, then `entries` (the caller passes the
    interpreter's site-packages explicitly: under -S they are not added, nor any .pth file)."""
    sys.path.extend(entry for entry in entries if entry not in sys.path)


def handle(lib_name: str, data: bytes) -> bytes:
    import numpy as np

    from numcheck.runner import Outcome, Raised, resolve, run_case
    from numcheck.wire import dump_outcomes, load_request

    request = load_request(data)
    outcomes = []
    try:
        lib = importlib.import_module(lib_name)
    except BaseException as exc:  # reported as data: the harness judges
        failed = Outcome(raised=Raised.of(exc, "import"))
        return dump_outcomes([failed for _ in request.cases])
    namespace = {lib_name: lib, "np": np}
    for case in request.cases:
        try:
            fn = resolve(case.expr, namespace)
        except Exception as exc:
            outcomes.append(Outcome(raised=Raised.of(exc, "resolve")))
            continue
        try:
            outcome = run_case(
                lib,
                fn,
                case.inputs,
                dtype=case.dtype,
                backward=case.backward,
                grad_seed=case.grad_seed,
                supports_out=case.supports_out,
                poison=case.poison,
                record_inputs=case.record_inputs,
            )
        except Exception as exc:  # building tensors or reading results failed
            outcome = Outcome(raised=Raised.of(exc, "setup"))
        outcomes.append(outcome)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in TORCH_MODULES)
    if lib_name != "torch" and leaked:
        for outcome in outcomes:
            outcome.notes.append(f"torch modules loaded in the ember process: {leaked[:3]}")
    return dump_outcomes(outcomes)


def serve(lib_name: str) -> int:
    """Answer framed requests on stdin until EOF; stray prints go to stderr, not the replies."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    while True:
        header = requests.read(FRAME.size)
        if len(header) < FRAME.size:
            return 0
        (size,) = FRAME.unpack(header)
        data = requests.read(size)
        try:
            reply = handle(lib_name, data)
        except Exception:
            traceback.print_exc()
            reply = b""
        replies.write(FRAME.pack(len(reply)) + reply)
        replies.flush()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="numcheck.child")
    parser.add_argument("lib", choices=["ember", "torch"])
    parser.add_argument("--request", type=Path)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--path", action="append", default=[])
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args(argv)
    if args.lib != "torch":
        sys.meta_path.insert(0, RefuseTorch())
    setup_path(args.path)
    if args.serve:
        return serve(args.lib)
    reply = handle(args.lib, args.request.read_bytes())
    args.output.write_bytes(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
