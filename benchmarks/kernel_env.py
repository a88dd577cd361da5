"""Time a uv kernel environment the way `padlab kernels create` builds one, and size a CUDA torch.

    python benchmarks/kernel_env.py [--packages "ipykernel six requests"] [--torch-size]

Builds two environments with the same packages and one shared uv cache, as the
box does under padlab's prefix: the first one downloads (cold cache), the second
is mostly hard links from the cache. Prints both times and the disk each uses.
--torch-size resolves PyPI's Linux torch (x86_64, Python 3.11) with uv and sums
the sizes of the wheels it would download, read from PyPI's JSON simple index (no download).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

UV = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")


def du(path: str) -> int:
    """Bytes on disk, each hard-linked file counted once (what a second env really costs)."""
    seen, total = set(), 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def build(env: str, packages: list[str], cache: str) -> float:
    run_env = dict(os.environ, UV_CACHE_DIR=cache, UV_SYSTEM_CERTS="1", UV_NATIVE_TLS="1")
    t0 = time.monotonic()
    subprocess.run([UV, "venv", "--quiet", env], check=True, env=run_env)
    subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", f"{env}/bin/python", *packages], check=True, env=run_env
    )
    return time.monotonic() - t0


def envs(packages: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="padlab-kernel-bench-") as tmp:
        cache = os.path.join(tmp, "cache")
        first = build(os.path.join(tmp, "k1"), packages, cache)
        cache_bytes = du(cache)
        second = build(os.path.join(tmp, "k2"), packages, cache)
        both = du(tmp)
        print(f"packages: {' '.join(packages)}")
        print(f"first env (cold uv cache):   {first:6.1f} s")
        print(f"second env (shared cache):   {second:6.1f} s")
        print(f"uv cache: {cache_bytes / 2**20:.0f} MiB; cache + both envs on disk: {both / 2**20:.0f} MiB")


def _wheel(files: list[dict]) -> dict:
    def rank(f: dict) -> int:
        name = f["filename"]
        if not name.endswith(".whl"):
            return 99
        if "cp311-cp311" in name and "manylinux" in name and "x86_64" in name:
            return 0
        if "abi3" in name and "manylinux" in name and "x86_64" in name:
            return 1
        if "py3-none-manylinux" in name and "x86_64" in name:
            return 2
        return 3 if name.endswith("-none-any.whl") else 99

    best = min(files, key=rank)
    if rank(best) == 99:
        raise SystemExit(f"no Linux x86_64 wheel among {[f['filename'] for f in files]}")
    return best


def torch_size() -> None:
    out = subprocess.run(
        [UV, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version", "3.11",
         "--python-platform", "x86_64-manylinux_2_28", "-"],
        input="torch\n", capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pins = [line.split("==") for line in out.splitlines() if "==" in line]
    total, rows = 0, []
    for name, version in pins:
        # PyPI's simple index as JSON (PEP 691) gives each file's size (PEP 700): what uv reads.
        req = urllib.request.Request(
            f"https://pypi.org/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            files = json.load(resp)["files"]
        prefix = f"{name.replace('-', '_')}-{version}-".lower()
        wheel = _wheel([f for f in files if f["filename"].lower().startswith(prefix)])
        total += wheel["size"]
        rows.append((wheel["size"], wheel["filename"]))
    for size, filename in sorted(rows, reverse=True)[:6]:
        print(f"  {size / 1e9:6.2f} GB  {filename}")
    print(
        f"torch from PyPI for Linux x86_64, Python 3.11: {len(pins)} wheels, {total / 1e9:.2f} GB to download"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packages", default="ipykernel six requests", help="space-separated packages")
    parser.add_argument("--torch-size", action="store_true", help="also size PyPI's CUDA torch (no download)")
    args = parser.parse_args()
    envs(args.packages.split())
    if args.torch_size:
        torch_size()


if __name__ == "__main__":
    main()
