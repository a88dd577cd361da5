"""Datasets and files: get (a download that runs on the box), push and pull."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT, load_profile


def _human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


@cli.command("get", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.argument("url", required=False)
@click.option(
    "--to",
    "to",
    default="datasets",
    show_default=True,
    help="Folder on the box, relative to the notebook folder.",
)
@click.option("--sha256", help="Expected SHA-256: the file is kept only if it matches.")
@click.option(
    "--unpack", is_flag=True, help="Unpack a .tar.gz, .tgz, .tar.xz or .zip into the folder, safely."
)
@click.option("--list", "list_jobs", is_flag=True, help="Show running, finished and failed downloads.")
@click.option(
    "--json", "as_json", is_flag=True, help="Progress as JSON lines, then the result as one JSON line."
)
def get_cmd(
    name: str | None,
    url: str | None,
    to: str,
    sha256: str | None,
    unpack: bool,
    list_jobs: bool,
    as_json: bool,
) -> None:
    """Download a file ON the box, into the notebook folder; it carries on without you.

    \b
    The download is a job on the box: Ctrl-C, a dropped connection or a
    sleeping iPad does not stop it, and running the same command again shows
    its progress. It resumes after a drop or a reboot (HTTP ranges, checked
    against the file's ETag or date), appears under its own name only once
    complete (and matching --sha256), and counts as activity for autostop.

    \b
    Examples:
      padlab get box https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz --unpack
      padlab get box https://example.com/weights.bin --to models --sha256 9f86d0...
      padlab get box --list
    """
    from padlab import files, home
    from padlab.errors import PadlabError

    if url is None and name and "://" in name:
        name, url = None, name
    where = home.current()
    shown = where.name_of(name)
    if list_jobs:
        _show_list(where.downloads(name), as_json)
        return
    if not url:
        raise PadlabError("no URL given", f"padlab get {shown or 'NAME'} URL (or --list)")
    spec = files.check_get(url, to, sha256, unpack)
    show = _Progress(spec["name"], as_json)
    try:
        with show:
            report = where.get(name, spec, show.event)
    except KeyboardInterrupt:
        sys.stderr.write(
            f"padlab: the download goes on on the box; `padlab get {shown + ' ' if shown else ''}{url}` shows it again\n"
        )
        sys.exit(130)
    result = {
        "ok": True,
        "url": url,
        "dest": report["download"].get("dest"),
        "bytes": report["download"].get("bytes"),
        "attached": report.get("attached", False),
        "changed": report.get("changed", False),
        "unpacked": report["download"].get("unpacked"),
        "download": report["download"],
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    dl = report["download"]
    if not report.get("changed") and not report.get("attached"):
        click.echo(f"{dl.get('dest')} is already on the box ({_human(dl.get('bytes'))}).")
        return
    took = float(dl.get("finished") or 0) - float(dl.get("started") or 0)
    click.echo(f"Saved {dl.get('dest')} ({_human(dl.get('bytes'))} in {took:.0f} s).")
    if dl.get("unpacked"):
        click.echo(f"Unpacked: {', '.join(dl['unpacked'])}")


class _Progress:
    """A rich bar (bytes, rate, ETA) on a terminal; JSON lines with --json; a few plain lines otherwise."""

    def __init__(self, name: str, as_json: bool) -> None:
        self.name = name
        self.as_json = as_json
        self.bar: Any = None
        self.task: Any = None
        self.note: str | None = None
        self.t0 = time.monotonic()

    def _line(self, text: str) -> None:
        """Plain progress lines look like ui.progress's, so errors stay the one line without '['."""
        sys.stderr.write(f"[{time.monotonic() - self.t0:6.1f}s] {text}\n")
        sys.stderr.flush()

    def __enter__(self) -> _Progress:
        from padlab import ui

        if not self.as_json and ui.is_tty(sys.stderr):
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=ui.console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, event: dict) -> None:
        if event.get("event") == "stage":
            if self.as_json:
                click.echo(json.dumps(event))
            elif self.bar is None:
                self._line(str(event.get("stage")))
            return
        if event.get("event") != "progress":
            return
        if self.as_json:
            click.echo(json.dumps(dict(event, time=round(time.time(), 3))))
            return
        note = event.get("note")
        if self.bar is not None:
            label = f"{self.name} [dim]({note})[/dim]" if note else self.name
            self.bar.update(
                self.task, completed=event.get("bytes") or 0, total=event.get("total"), description=label
            )
        elif note and note != self.note:
            self._line(note)
        self.note = note


def _show_list(report: dict, as_json: bool) -> None:
    from padlab import ui

    items = report.get("downloads", [])
    if as_json:
        click.echo(json.dumps(items))
        return
    if not items:
        click.echo("No downloads on this box yet.")
        return
    from rich.table import Table

    root = report.get("root", "")
    table = Table("state", "file", "size", "url", "note")
    for item in items:
        dest = str(item.get("dest") or "")
        if root and dest.startswith(root.rstrip("/") + "/"):
            dest = dest[len(root.rstrip("/")) + 1 :]
        size = _human(item.get("bytes"))
        if item.get("state") != "done" and item.get("total"):
            size += f" / {_human(item['total'])}"
        note = item.get("error") or item.get("note") or ""
        table.add_row(str(item.get("state")), dest, size, str(item.get("url")), note)
    ui.console().print(table)


def _transfer(
    push: bool, name: str | None, local: str, remote: str, bwlimit: int | None, as_json: bool
) -> None:
    from padlab import files, ui

    profile = load_profile(name)
    tty = ui.is_tty() and not as_json
    try:
        out = files.transfer(profile, push, local, remote, bwlimit, tty)
    except KeyboardInterrupt:
        verb = "push" if push else "pull"
        sys.stderr.write(f"padlab: interrupted; the partial file is kept, `padlab {verb}` again resumes it\n")
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(f"Copied {out['from']} to {out['to']}.")


BWLIMIT = click.option("--bwlimit", type=int, help="Limit the rate, in KiB/s (rsync's --bwlimit).")


@cli.command("push", context_settings=CONTEXT)
@click.argument("name")
@click.argument("local")
@click.argument("remote", default=".")
@BWLIMIT
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def push(name: str, local: str, remote: str, bwlimit: int | None, as_json: bool) -> None:
    """Copy a file or folder from here into the notebook folder on the box.

    \b
    rsync over padlab's ssh connection: only what changed is sent, and an
    interrupted copy resumes from what arrived (partial files are kept).
    REMOTE is relative to the notebook folder (default: the folder itself).
    On the local provider it is a plain copy.

    \b
    Examples:
      padlab push box ./data.csv
      padlab push box ~/photos datasets/
      padlab push box model.pt models/model.pt --bwlimit 2000
    """
    _transfer(True, name, local, remote, bwlimit, as_json)


@cli.command("pull", context_settings=CONTEXT)
@click.argument("name")
@click.argument("remote")
@click.argument("local", default=".")
@BWLIMIT
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(name: str, remote: str, local: str, bwlimit: int | None, as_json: bool) -> None:
    """Copy a file or folder from the box's notebook folder to here.

    \b
    rsync over padlab's ssh connection, partial files kept so a re-run
    resumes. REMOTE is relative to the notebook folder; LOCAL defaults to
    the current folder. On the local provider it is a plain copy.

    \b
    Examples:
      padlab pull box results/metrics.csv
      padlab pull box models/ ./models-from-box
    """
    _transfer(False, name, local, remote, bwlimit, as_json)
