"""python -m ember.torchcompat [-m module | script.py] [args...]: run a PyTorch program on ember."""
from __future__ import annotations

import os
import runpy
import sys

from . import install

# Children started with spawn/forkserver inherit sys.path, not the import finder (see the shim).
_SPAWN_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_spawn_shim")

_USAGE = "usage: python -m ember.torchcompat [-m module | script.py] [args...]"


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE + "\n\n" + (sys.modules["ember.torchcompat"].__doc__ or ""))
        raise SystemExit(0 if argv else 2)
    install()
    if argv[0] == "-m":
        if len(argv) < 2:
            raise SystemExit(_USAGE)
        sys.argv = [argv[1]] + argv[2:]
        sys.path.insert(1, _SPAWN_SHIM)  # ahead of site-packages, where a real torch may be installed
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    script = argv[0]
    if not os.path.exists(script):
        raise SystemExit(f"ember.torchcompat: can't open file '{script}': no such file")
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py` does
    sys.path.insert(1, _SPAWN_SHIM)  # ahead of site-packages, where a real torch may be installed
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
