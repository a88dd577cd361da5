"""The cost ledger: when each profile's machine ran, at what price, and what stayed billed while down.

One SQLite file under padlab's data folder. Each row is an interval of one
kind: ``compute`` (the machine ran, billed at its hourly price) or ``down``
(off, still billed for disk, snapshot or a powered-off droplet). Rows come
from observations: padlab's own actions, the provider's state read at
``status`` and ``costs``, and the box agent's stop record.

Nobody watches a machine all the time, so an interval's start and end are
kept as bounds (``*_lo`` .. ``*_hi``): the last time it was seen one way and
the first time it was seen the other. Costs count the conservative bounds
(earliest start, latest end); an open interval counts until now. A machine
the provider reports off stops growing from that observation on.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from padlab import paths
from padlab.errors import PadlabError

if TYPE_CHECKING:
    import sqlite3

# Provider states that are billed as running: a machine that is starting or stopping is already,
# or still, a machine on the bill.
BILLED_RUNNING = ("running", "starting", "stopping")

SCHEMA = """
CREATE TABLE IF NOT EXISTS intervals (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('compute', 'down')),
    machine_id TEXT,
    start_lo REAL NOT NULL,
    start_hi REAL NOT NULL,
    end_lo REAL,
    end_hi REAL,
    last_seen REAL NOT NULL,
    usd_per_hour REAL,
    price_source TEXT,
    what TEXT,
    start_source TEXT NOT NULL,
    end_source TEXT
);
CREATE INDEX IF NOT EXISTS intervals_profile ON intervals (profile, kind, end_hi);
CREATE TABLE IF NOT EXISTS seen_off (
    profile TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS moved_in (
    move_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    at REAL NOT NULL
);
"""
# The columns a row carries from one home to another (`padlab remote push`): all but its id.
ROW_FIELDS = (
    "profile", "kind", "machine_id", "start_lo", "start_hi", "end_lo", "end_hi", "last_seen",
    "usd_per_hour", "price_source", "what", "start_source", "end_source",
)  # fmt: skip


def db_path() -> Any:
    return paths.ensure_private_dir(paths.data_dir()) / "ledger.sqlite"


class LedgerError(PadlabError):
    """The ledger file cannot be read or written (corrupt, not SQLite, locked for too long)."""


def recover_hint() -> str:
    """The one line that says how to get a working ledger back."""
    path = db_path()
    return f"move it aside: mv {path} {path}.broken (padlab starts a new ledger; costs before are not counted)"


@contextlib.contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """One transaction; the file is 0600 (it says when you worked) and safe across processes.

    Any SQLite failure is a LedgerError (a PadlabError with the recovery line), never a bare sqlite3 error.
    """
    import os
    import sqlite3

    path = db_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.executescript(SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LedgerError(f"padlab's cost ledger {path} cannot be used: {exc}", recover_hint()) from exc


def check() -> None:
    """Raise LedgerError unless the ledger opens and SQLite finds it sound (before `up` starts a machine)."""
    with connect() as conn:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise LedgerError(f"padlab's cost ledger {db_path()} is damaged: {problems[0]}", recover_hint())


def _open(conn: sqlite3.Connection, profile: str, kind: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM intervals WHERE profile = ? AND kind = ? AND end_hi IS NULL ORDER BY id DESC LIMIT 1",
        (profile, kind),
    ).fetchone()


def _close(conn: sqlite3.Connection, row: sqlite3.Row, lo: float, hi: float, source: str) -> None:
    lo = max(min(lo, hi), row["start_lo"])
    conn.execute(
        "UPDATE intervals SET end_lo = ?, end_hi = ?, end_source = ? WHERE id = ?",
        (lo, max(hi, lo), source, row["id"]),
    )


def _insert(conn: sqlite3.Connection, profile: str, kind: str, lo: float, hi: float, **fields: Any) -> None:
    conn.execute(
        "INSERT INTO intervals (profile, kind, machine_id, start_lo, start_hi, last_seen, usd_per_hour,"
        " price_source, what, start_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            profile,
            kind,
            fields.get("machine_id"),
            lo,
            hi,
            hi,
            fields.get("usd_per_hour"),
            fields.get("price_source"),
            fields.get("what"),
            fields["source"],
        ),
    )


def _last_off(conn: sqlite3.Connection, profile: str) -> float | None:
    """The latest moment the machine was seen not running (off, or not there yet): a start's lower bound."""
    row = conn.execute("SELECT at FROM seen_off WHERE profile = ?", (profile,)).fetchone()
    return row[0] if row else None


def observe(profile: str, machine: Any, at: float | None = None, source: str = "provider") -> None:
    """Record what the provider says about a profile's machine at one moment.

    ``machine`` is a providers.base.Machine (or its dict). Local and ssh
    machines carry no price and are not recorded.
    """
    m = machine if isinstance(machine, dict) else machine.as_dict()
    if m.get("state") == "error":
        return  # the provider could not be read: nothing is known
    if m.get("state") != "missing" and all(
        m.get(k) is None for k in ("price_per_hour", "down_usd_per_hour", "billed_while_down")
    ):
        return  # nothing billed by the hour here (local, ssh): no file is touched
    at = time.time() if at is None else at
    with connect() as conn:
        compute = _open(conn, profile, "compute")
        down = _open(conn, profile, "down")
        if m.get("state") in BILLED_RUNNING:
            if m.get("price_per_hour") is None and compute is None:
                return  # not a billed machine (local, ssh), or no price known: nothing to add up
            price = m.get("price_per_hour")
            if compute is not None and compute["usd_per_hour"] != price:
                _close(conn, compute, at, at, f"{source}: price changed")
                compute = None
            if compute is not None:
                conn.execute("UPDATE intervals SET last_seen = ? WHERE id = ?", (at, compute["id"]))
                return
            off = _last_off(conn, profile)
            lo = min(x for x in (off if off is not None else at, m.get("started_at") or at, at))
            if down is not None:
                _close(conn, down, lo, lo, source)  # the uncertain stretch counts once, as compute
            _insert(
                conn,
                profile,
                "compute",
                lo,
                at,
                machine_id=m.get("id"),
                usd_per_hour=price,
                price_source=m.get("price_source"),
                source=source,
            )
            return
        # Off or missing: compute ends between its last sighting and now.
        conn.execute(
            "INSERT INTO seen_off (profile, at) VALUES (?, ?)"
            " ON CONFLICT (profile) DO UPDATE SET at = MAX(at, excluded.at)",
            (profile, at),
        )
        if compute is not None:
            _close(conn, compute, compute["last_seen"], at, source)
        down_rate = m.get("down_usd_per_hour") if m.get("state") == "off" else None
        what = m.get("billed_while_down") if m.get("state") == "off" else None
        if down is not None and (down["usd_per_hour"], down["what"]) == (down_rate, what):
            conn.execute("UPDATE intervals SET last_seen = ? WHERE id = ?", (at, down["id"]))
            return
        if down is not None:
            _close(conn, down, down["last_seen"], at, source)
        if down_rate is None and not what:
            return
        # Down starts where compute's conservative end is: the uncertain stretch is counted once, as compute.
        start = down["last_seen"] if down is not None else at
        _insert(
            conn,
            profile,
            "down",
            start,
            at,
            machine_id=m.get("id"),
            usd_per_hour=down_rate,
            price_source=m.get("price_source"),
            what=what,
            source=source,
        )


def before_acting(profile: str, provider: Any) -> None:
    """Before padlab starts or stops a billed machine: the lower bound of the change it makes."""
    if provider.manages_power:
        observe(profile, provider.describe(), time.time(), "padlab (before acting)")


def stopped_by_agent(profile: str, at: float, result: str) -> bool:
    """The box agent's stop record, read after the fact: the compute interval ended at or after ``at``.

    Only the lower bound moves: the record says when the stop was asked for,
    not when the provider stopped billing. Returns whether a row changed.
    """
    with connect() as conn:
        row = conn.execute(
            "SELECT * FROM intervals WHERE profile = ? AND kind = 'compute' AND end_hi IS NOT NULL"
            " AND end_lo <= ? AND end_hi >= ? ORDER BY id DESC LIMIT 1",
            (profile, at, at),
        ).fetchone()
        if row is None or row["end_lo"] >= at:
            return False
        conn.execute(
            "UPDATE intervals SET end_lo = ?, end_source = ? WHERE id = ?",
            (at, f"{row['end_source']}; autostop at {_clock(at)}: {result}", row["id"]),
        )
    return True


def forget(profile: str) -> None:
    """Drop a profile's rows (tests, and a profile removed on purpose); never called by `destroy`."""
    with connect() as conn:
        conn.execute("DELETE FROM intervals WHERE profile = ?", (profile,))
        conn.execute("DELETE FROM seen_off WHERE profile = ?", (profile,))


def take(profile: str, keep: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A profile's rows and its last off-sighting, removed in the transaction that reads them,
    which commits only after `keep` (the move's bundle) has them: no run lost, none counted twice."""
    with connect() as conn:
        rows = [
            {k: row[k] for k in ROW_FIELDS}
            for row in conn.execute("SELECT * FROM intervals WHERE profile = ? ORDER BY id", (profile,))
        ]
        off = _last_off(conn, profile)
        conn.execute("DELETE FROM intervals WHERE profile = ?", (profile,))
        conn.execute("DELETE FROM seen_off WHERE profile = ?", (profile,))
        taken = {"rows": rows, "seen_off": off}
        keep(taken)
    return taken


def give(profile: str, taken: dict[str, Any], move_id: str) -> bool:
    """Add rows that `take` removed in another home, once per move: False when this move's rows
    are already here (a re-run of an interrupted move), so a run is never counted twice."""
    with connect() as conn:
        if conn.execute("SELECT 1 FROM moved_in WHERE move_id = ?", (move_id,)).fetchone():
            return False
        conn.execute(
            "INSERT INTO moved_in (move_id, profile, at) VALUES (?, ?, ?)", (move_id, profile, time.time())
        )
        for row in taken.get("rows", []):
            values = dict(row, profile=profile)
            conn.execute(
                f"INSERT INTO intervals ({', '.join(ROW_FIELDS)}) VALUES ({', '.join('?' * len(ROW_FIELDS))})",
                [values.get(k) for k in ROW_FIELDS],
            )
        if taken.get("seen_off") is not None:
            conn.execute(
                "INSERT OR REPLACE INTO seen_off (profile, at) VALUES (?, ?)", (profile, taken["seen_off"])
            )
    return True


# -- adding up ---------------------------------------------------------------------------------


@dataclass
class Span:
    """One interval as counted: conservative bounds, clipped to a period."""

    profile: str
    kind: str
    start: float
    end: float
    usd_per_hour: float | None
    exact: bool  # both ends known to the second (padlab's own actions)

    @property
    def hours(self) -> float:
        return max(self.end - self.start, 0.0) / 3600.0

    @property
    def usd(self) -> float:
        return self.hours * (self.usd_per_hour or 0.0)


EXACT_S = 120.0  # bounds closer than this are as good as exact (an API round-trip, a power-off)


def spans(start: float, end: float, profile: str | None = None, now: float | None = None) -> list[Span]:
    """Every interval overlapping [start, end), clipped to it, open ones counted until ``now``."""
    now = time.time() if now is None else now
    query = "SELECT * FROM intervals WHERE start_lo < ? AND (end_hi IS NULL OR end_hi > ?)"
    args: list[Any] = [end, start]
    if profile is not None:
        query += " AND profile = ?"
        args.append(profile)
    with connect() as conn:
        rows = conn.execute(query + " ORDER BY start_lo", args).fetchall()
    out = []
    for row in rows:
        hi = row["end_hi"] if row["end_hi"] is not None else max(now, row["last_seen"])
        s, e = max(row["start_lo"], start), min(hi, end)
        if e <= s:
            continue
        exact = row["start_hi"] - row["start_lo"] <= EXACT_S and (
            row["end_hi"] is not None and row["end_hi"] - row["end_lo"] <= EXACT_S
        )
        out.append(Span(row["profile"], row["kind"], s, e, row["usd_per_hour"], exact))
    return out


def rows(profile: str | None = None) -> list[dict[str, Any]]:
    """The raw rows, for `costs --json` readers who want the bounds."""
    query, args = "SELECT * FROM intervals", []
    if profile is not None:
        query, args = query + " WHERE profile = ?", [profile]
    with connect() as conn:
        return [dict(r) for r in conn.execute(query + " ORDER BY id", args)]


def month_bounds(month: str | None = None) -> tuple[float, float, str]:
    """(start, end, 'YYYY-MM') of a calendar month in UTC (how the clouds bill); default this month."""
    if month is None:
        today = datetime.datetime.now(datetime.timezone.utc)
        year, mon = today.year, today.month
    else:
        year, mon = (int(x) for x in month.split("-"))
    first = datetime.datetime(year, mon, 1, tzinfo=datetime.timezone.utc)
    nxt = datetime.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=datetime.timezone.utc)
    return first.timestamp(), nxt.timestamp(), f"{year:04d}-{mon:02d}"


def month_spend(profile: str | None = None, now: float | None = None) -> float:
    """USD spent this calendar month (conservative), by one profile or all."""
    start, end, _ = month_bounds()
    return sum(s.usd for s in spans(start, end, profile, now))


def running_rates(exclude: str | None = None) -> float:
    """USD per hour of every profile whose machine the ledger thinks runs now (other than ``exclude``)."""
    with connect() as conn:
        found = conn.execute(
            "SELECT profile, usd_per_hour FROM intervals WHERE end_hi IS NULL",
        ).fetchall()
    return sum(r["usd_per_hour"] or 0.0 for r in found if r["profile"] != exclude)


def _clock(at: float) -> str:
    return datetime.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
