"""Command line for people: `python -m tests.testbed up|down|list|ssh|build|clean` (run as root).

`up` must outlive the command, so it starts a detached `serve` process that owns the
machine (supervises reboots, cleans up on SIGTERM) and returns once sshd answers;
`down` stops that process. See tests/testbed/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .host import TestbedError, cache_dir, owner_alive, read_json
from .image import IMAGES, ImageStore
from .machine import ssh_options
from .testbed import Testbed

REPO = Path(__file__).resolve().parents[2]


def _records(cache: Path) -> list[dict]:
    paths = sorted((cache / "machines").glob("*/record.json"))
    return [rec for path in paths if (rec := read_json(path)) is not None]


def _record(cache: Path, name: str) -> dict:
    rec = read_json(cache / "machines" / name / "record.json")
    if rec is None:
        raise TestbedError(f"no machine {name!r} (see `python -m tests.testbed list`)")
    return rec


def _log_tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""


def cmd_build(args: argparse.Namespace) -> None:
    store = ImageStore(cache_dir())
    for image in args.image or ["bookworm"]:
        started = time.monotonic()
        root = store.ensure(image)
        print(
            f"{image}: {root} (ready in {time.monotonic() - started:.1f}s; built in {store.build_seconds(image)}s)"
        )


def cmd_up(args: argparse.Namespace) -> None:
    cache = cache_dir()
    if (cache / "machines" / args.name).exists():
        raise TestbedError(f"machine {args.name!r} exists; `down` it first")
    print(f"preparing image {args.image} (first time: about a minute)...", flush=True)
    ImageStore(cache).ensure(args.image)
    log = cache / "run" / f"serve-{args.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.testbed", "serve", args.name, "--image", args.image],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise TestbedError(f"machine {args.name!r} failed to start:\n{_log_tail(log)}")
        rec = read_json(cache / "machines" / args.name / "record.json")
        if rec is not None and rec["state"] == "running":
            print(_describe(rec))
            return
        time.sleep(0.2)
    server.terminate()
    raise TestbedError(f"machine {args.name!r} not up after {args.timeout}s:\n{_log_tail(log)}")


def cmd_serve(args: argparse.Namespace) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    with Testbed() as bed:
        machine = bed.machine(args.name, image=args.image)
        machine.on_off(lambda m: print(f"{m.name} powered off (exit {m.last_exit})", flush=True))
        print(f"{machine!r} up; supervising until SIGTERM", flush=True)
        while not stop.wait(1):
            pass


def _stop_owner(owner: dict) -> None:
    """Ask a machine's owning process to clean up and exit; kill it if it will not."""
    if not owner_alive(owner):
        return
    os.kill(int(owner["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while owner_alive(owner) and time.monotonic() < deadline:
        time.sleep(0.1)
    if owner_alive(owner):
        os.kill(int(owner["pid"]), signal.SIGKILL)


def cmd_down(args: argparse.Namespace) -> None:
    _stop_owner(_record(cache_dir(), args.name)["owner"])
    Testbed().close()  # creating a Testbed sweeps whatever a killed owner left behind
    print(f"{args.name}: down")


def _describe(rec: dict) -> str:
    ssh = shlex.join(["ssh", "-i", rec["identity"], f"{rec['user']}@{rec['ip']}"])
    return f"{rec['name']:<14} {rec['image']:<9} {rec['ip']:<13} {rec['state']:<10} {ssh}"


def cmd_list(_: argparse.Namespace) -> None:
    records = _records(cache_dir())
    for rec in records:
        stale = "" if owner_alive(rec["owner"]) else "  (owner gone: will be swept)"
        print(_describe(rec) + stale)
    if not records:
        print("no machines")


def cmd_ssh(args: argparse.Namespace) -> None:
    rec = _record(cache_dir(), args.name)
    argv = ["ssh", *ssh_options(rec["identity"]), f"{args.user or rec['user']}@{rec['ip']}", *args.command]
    os.execvp("ssh", argv)


def cmd_clean(args: argparse.Namespace) -> None:
    cache = cache_dir()
    for rec in _records(cache):
        owner = rec["owner"]
        # Only `serve` processes are ours to stop; a pytest run's machines are simply swept.
        if owner_alive(owner) and b"tests.testbed" in Path(f"/proc/{owner['pid']}/cmdline").read_bytes():
            _stop_owner(owner)
    removed = sorted(set(Testbed().clean(images=args.images)))
    for log in (cache / "run").glob("serve-*.log"):
        log.unlink()
    print("removed: " + (", ".join(removed) or "nothing") + (" and the image cache" if args.images else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    images = list(IMAGES)

    p = sub.add_parser("up", help="boot a machine in the background; prints how to ssh in")
    p.add_argument("name")
    p.add_argument("--image", choices=images, default="bookworm")
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("serve", help="(used by `up`) boot a machine and supervise it until SIGTERM")
    p.add_argument("name")
    p.add_argument("--image", choices=images, default="bookworm")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("down", help="stop a machine and delete its disk and network")
    p.add_argument("name")
    p.set_defaults(func=cmd_down)
    sub.add_parser("list", help="list machines").set_defaults(func=cmd_list)
    p = sub.add_parser("ssh", help="ssh into a machine as padlab")
    p.add_argument("name")
    p.add_argument("--user")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_ssh)
    p = sub.add_parser("build", help="build (or check) cached images")
    p.add_argument("--image", choices=images, action="append")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("clean", help="remove every testbed machine and namespace on this host")
    p.add_argument("--images", action="store_true", help="also delete the cached images and test key")
    p.set_defaults(func=cmd_clean)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
