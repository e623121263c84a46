"""Does a CUDA stage work inside the harness sandbox, under the harness's limits? (GPU machine.)

    PYTHONPATH=. .venv/bin/python bench/sandbox_cuda_check.py [--memory-mb 8192] [--with-rlimit-as]

Each probe (ember, and torch when it is a CUDA build) runs as a child through
`harness.sandbox.run_command`, exactly like a grading stage: bubblewrap namespaces, the
allow-listed environment, /dev/nvidia* bound in, and the memory limit a goal gets (a cgroup where
the harness may create one, else RLIMIT_DATA). The child creates a CUDA context, allocates, runs
a matmul and synchronizes. `--with-rlimit-as` also runs the probes unsandboxed under the old
RLIMIT_AS limit, for comparison (expected to fail: CUDA reserves huge virtual address ranges).
Prints one PASS/FAIL/SKIP line per probe; exits 1 if a sandboxed probe fails.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.sandbox import Limits, Sandbox, describe_limits, probe, run_command  # noqa: E402

PROBES = {
    "ember": """
import numpy as np, ember
assert ember.cuda.is_available(), "ember sees no GPU (built without CUDA, or no device)"
a = ember.from_numpy(np.ones((1024, 1024), np.float32)).cuda()
total = (a @ a).sum().item()
ember.cuda.synchronize()
assert total == 1024.0 ** 3, total
print("ember OK on", ember.cuda.get_device_name(), "free/total bytes", ember.cuda.mem_get_info())
""",
    "torch": """
import torch
if torch.version.cuda is None:
    print("SKIP: torch is a CPU build"); raise SystemExit(0)
assert torch.cuda.is_available(), "torch sees no GPU"
a = torch.ones(1024, 1024, device="cuda")
total = (a @ a).sum().item()
torch.cuda.synchronize()
assert total == 1024.0 ** 3, total
print("torch OK on", torch.cuda.get_device_name(0), "free/total bytes", torch.cuda.mem_get_info())
""",
}


# The caller's PYTHONPATH entries too: on the GPU machine OpenBLAS's wheel sits in a private
# site dir under /tmp, which the sandbox (a fresh /tmp) would otherwise hide.
EXTRA_PATHS = [p for p in os.environ.get("PYTHONPATH", "").split(":") if p and Path(p).is_dir()]


def sandboxed(name: str, code: str, limits: Limits, work: Path) -> tuple[bool, str]:
    paths = [str(REPO / "runtime" / "python"), *EXTRA_PATHS]
    sandbox = Sandbox(
        writable=[work], readable=[Path(p).resolve() for p in paths], allow_unsandboxed=False
    )
    result = run_command(
        [sys.executable, "-c", code],
        work,
        work / f"{name}.log",
        limits,
        {"PYTHONPATH": ":".join(paths)},
        sandbox=sandbox,
    )
    return result.ok, result.output.split("\n", 1)[-1].strip()


def with_rlimit_as(code: str, memory_mb: int) -> tuple[bool, str]:
    def limit():
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        env={
            "PYTHONPATH": ":".join([str(REPO / "runtime" / "python"), *EXTRA_PATHS]),
            "PATH": "/usr/bin:/bin",
        },
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-mb", type=int, default=8192, help="the goal default is 8192")
    parser.add_argument("--with-rlimit-as", action="store_true")
    args = parser.parse_args()
    status = probe()
    print(f"sandbox: {status.reason}")
    if not status.ok:
        return 1
    limits = Limits(wall_s=300, memory_mb=args.memory_mb)
    print(f"limits: {describe_limits(limits)}")
    print("devices:", " ".join(str(p) for p in sorted(Path("/dev").glob("nvidia*"))) or "none")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in PROBES.items():
            ok, out = sandboxed(name, code, limits, Path(tmp))
            skipped = out.splitlines()[-1].startswith("SKIP") if out else False
            failed |= not ok
            verdict = "SKIP" if skipped else ("PASS" if ok else "FAIL")
            print(f"{verdict} sandboxed {name}: {out.splitlines()[-1] if out else ''}")
            if not ok:
                print("    " + out[-2000:].replace("\n", "\n    "))
            if args.with_rlimit_as and not skipped:
                ok_as, out_as = with_rlimit_as(code, args.memory_mb)
                last = out_as.splitlines()[-1] if out_as else ""
                print(f"{'PASS' if ok_as else 'FAIL'} unsandboxed, RLIMIT_AS={args.memory_mb} MB "
                      f"{name}: {last}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
