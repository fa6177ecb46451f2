"""Trim the bitsandbytes wheel to the native libraries a lent GPU machine loads (CUDA 13.0 and the CPU build), so it
fits one call's carry beside the SmolLM2 wheel's first half (tools/device/prepare.sh).

    python tools/device/trim_wheel.py bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl .whl --keep cuda130 --keep cpu

Every `libbitsandbytes_<variant>.{so,dll,dylib}` whose variant is not kept is left out, and so are its lines in the
wheel's RECORD (pip checks the files it installs against RECORD); every other entry is copied byte for byte. The
output has the input's file name, so pip still reads its tags. Standard library only.
"""
from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

NATIVE = re.compile(r"(^|/)libbitsandbytes_(?P<variant>[A-Za-z0-9_]+)\.(so|dll|dylib)$")


def dropped(name: str, keep: set[str]) -> bool:
    m = NATIVE.search(name)
    return m is not None and m.group("variant") not in keep


def trim(source: Path, out_dir: Path, keep: set[str]) -> tuple[Path, list[str]]:
    """(the trimmed wheel, the names left out)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / source.name
    if target.resolve() == source.resolve():
        raise SystemExit(f"trim_wheel: {target} would overwrite its source (fix: another output folder)")
    gone: list[str] = []
    with zipfile.ZipFile(source) as zin:
        names = zin.namelist()
        if not any(NATIVE.search(n) and not dropped(n, keep) for n in names):
            raise SystemExit(f"trim_wheel: {source} has no native library of {sorted(keep)} (fix: --keep a variant it has)")
        with zipfile.ZipFile(target.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if dropped(info.filename, keep):
                    gone.append(info.filename)
                    continue
                data = zin.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if not dropped(line.split(b",", 1)[0].decode(), keep))
                zout.writestr(info, data)
    target.with_suffix(".tmp").replace(target)
    return target, gone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("wheel", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--keep", action="append", required=True, help="a native library variant to keep (repeatable)")
    a = p.parse_args(argv)
    target, gone = trim(a.wheel, a.out_dir, set(a.keep))
    print(f"wrote {target} ({target.stat().st_size:,} bytes; left out {len(gone)} libraries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
