"""Merges the include/ folders of wheels into one folder (the cuDNN headers for the build).

Usage: python wheel_headers.py OUT_DIR WHEEL...  (every member under a folder named include/ is
written to OUT_DIR with the part of its path after that folder; a wheel without one is an error).
"""
import sys
import zipfile
from pathlib import Path


def extract_headers(out: Path, wheel: Path) -> int:
    count = 0
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith("/") or "include/" not in name:
                continue
            dest = out / name.split("include/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(name))
            count += 1
    return count


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    for wheel in map(Path, argv[2:]):
        n = extract_headers(out, wheel)
        if n == 0:
            print(f"wheel_headers: {wheel.name} has no include/ folder", file=sys.stderr)
            return 1
        print(f"wheel_headers: {n} headers from {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
