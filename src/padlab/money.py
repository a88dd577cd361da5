"""Budgets and costs: what `padlab costs` and `padlab budget` show, and what `up` checks.

Settings live in one file, ``money.json`` (0600, it holds the alert topic URL),
next to the ledger. A budget is USD per calendar month (UTC, as the clouds
bill), for all profiles together and/or per profile. At `up` the remaining
money becomes a deadline on the box (see box_fields), so the box stops itself
when the money runs out, whether or not a padlab client ever runs again.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from padlab import ledger, paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

ALL = "*"  # the budget key for all profiles together
WARN_AT = 0.8  # share of a budget at which padlab warns


def _path() -> Any:
    return paths.data_dir() / "money.json"


def settings() -> dict[str, Any]:
    try:
        return json.loads(_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def save(data: dict[str, Any]) -> None:
    paths.ensure_private_dir(paths.data_dir())
    write_atomic(_path(), json.dumps(data, indent=2, sort_keys=True), mode=0o600)


# -- budgets ------------------------------------------------------------------------------------


def parse_amount(text: str) -> float:
    """'50', '$50', '12.5' -> USD; anything else is one line saying what to type."""
    cleaned = text.strip().lstrip("$")
    try:
        value = float(cleaned)
    except ValueError:
        raise PadlabError(f"{text!r} is not an amount", "give USD per month, e.g. padlab budget 50") from None
    if not math.isfinite(value) or value < 0:
        raise PadlabError(
            f"a budget cannot be {text}", "give a positive amount in USD, e.g. padlab budget 50"
        )
    return round(value, 2)


def set_budget(profile: str | None, amount: float | None) -> None:
    """A monthly budget for one profile (or ALL when None); None removes it."""
    data = settings()
    budgets = data.setdefault("budgets", {})
    key = profile or ALL
    if amount is None:
        budgets.pop(key, None)
    else:
        budgets[key] = amount
    data.setdefault("warned", {})
    save(data)


def budgets() -> dict[str, float]:
    return dict(settings().get("budgets") or {})


def budget_view(now: float | None = None) -> dict[str, Any]:
    """Every budget with this month's spend: {month, budgets: {key: {budget_usd, spent_usd, share}}}."""
    _, _, month = ledger.month_bounds()
    out = {}
    for key, amount in budgets().items():
        spent = ledger.month_spend(None if key == ALL else key, now)
        out[key] = {
            "budget_usd": amount,
            "spent_usd": round(spent, 4),
            "share": (spent / amount) if amount else 1.0,
        }
    return {"month": month, "budgets": out}


def _applicable(profile: str, now: float | None = None) -> list[tuple[str, float, float]]:
    """(label, budget, spent) for the budgets that cover this profile."""
    found = []
    for key, amount in budgets().items():
        if key == ALL:
            found.append(("the monthly budget for all profiles", amount, ledger.month_spend(None, now)))
        elif key == profile:
            found.append((f"{profile}'s monthly budget", amount, ledger.month_spend(profile, now)))
    return found


def check_up(profile: str, over_budget: bool) -> None:
    """Before `up` starts anything: refuse when a budget covering this profile is spent."""
    if over_budget:
        return
    for label, amount, spent in _applicable(profile):
        if spent >= amount:
            raise PadlabError(
                f"{label} of ${amount:.2f} is spent (${spent:.2f} so far this month)",
                f"raise it (padlab budget {'' if label.startswith('the') else profile + ' '}AMOUNT) "
                f"or pass --over-budget for this one run",
            )


class Budget:
    """What `up`'s budget step found: whether it runs past a spent budget, and the 80 % warnings.

    The later steps read it and never call back into money: the box's deadline comes
    from ``box_fields`` once the machine's price is known.
    """

    def __init__(self, profile: str, over_budget: bool, warnings: list[str]) -> None:
        self.profile = profile
        self.over_budget = over_budget
        self.warnings = warnings

    def box_fields(self, price_per_hour: float | None) -> dict:
        return box_fields(self.profile, price_per_hour, self.over_budget)


def for_up(profile: str, over_budget: bool) -> Budget:
    """`up`'s first step: refuse a spent budget (unless over_budget), and say what is near its end."""
    check_up(profile, over_budget)
    return Budget(profile, over_budget, warnings(profile))


def remaining(profile: str, now: float | None = None) -> tuple[float, str] | None:
    """(USD left, label) of the tightest budget covering this profile; None when none does."""
    left = [(amount - spent, label) for label, amount, spent in _applicable(profile, now)]
    return min(left) if left else None


def box_fields(
    profile: str, price_per_hour: float | None, over_budget: bool, now: float | None = None
) -> dict:
    """The agent's money part: a deadline when the budget runs out, and when 80 % of it is reached.

    The rate is this machine's price plus what other running profiles cost now
    (an all-profiles budget drains at their sum). With --over-budget, or no
    price to divide by, there is no deadline: padlab says so rather than guess.
    """
    now = time.time() if now is None else now
    left = remaining(profile, now)
    if left is None or over_budget or not price_per_hour:
        return {}
    usd, label = left
    rate = price_per_hour
    if label.startswith("the"):
        rate += ledger.running_rates(exclude=profile)
    fields: dict[str, Any] = {
        "deadline_at": now + max(usd, 0.0) / rate * 3600.0,
        "deadline_why": f"{label} runs out (${usd:.2f} left at ${rate:.2f}/h)",
    }
    budget = next(a for lab, a, _ in _applicable(profile, now) if lab == label)
    warn_left = usd - budget * (1 - WARN_AT)
    if warn_left > 0:
        fields["budget_warn_at"] = now + warn_left / rate * 3600.0
        fields["budget_warn_text"] = f"80% of {label} (${budget:.2f}) is spent"
    return fields


def warnings(profile: str, now: float | None = None) -> list[str]:
    """'80% of …' lines for budgets covering this profile that are past 80 % (and not yet spent)."""
    out = []
    for label, amount, spent in _applicable(profile, now):
        if amount and WARN_AT * amount <= spent < amount:
            out.append(f"{spent / amount:.0%} of {label} is spent (${spent:.2f} of ${amount:.2f})")
    return out


# -- costs ---------------------------------------------------------------------------------------


def refresh(names: list[str]) -> list[str]:
    """Read each billed profile's machine from its provider now, into the ledger; returns what failed.

    A machine started or stopped in the provider's console is counted from here.
    """
    from padlab import profiles, providers

    notes = []
    for name in names:
        profile = profiles.load(name)
        provider = providers.get(profile)
        if not provider.manages_power:
            continue
        try:
            ledger.observe(name, provider.describe(), time.time(), "padlab costs")
        except PadlabError as exc:
            notes.append(f"{name}: {exc} (its open interval counts until now)")
    return notes


def reconcile(names: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """The provider's own figure for this month next to the ledger's, per provider that exposes billing."""
    from padlab import profiles, providers

    by_provider: dict[str, list[str]] = {}
    seen: dict[str, Any] = {}
    for name in names:
        profile = profiles.load(name)
        provider = providers.get(profile)
        by_provider.setdefault(profile.provider, []).append(name)
        seen.setdefault(profile.provider, provider)
    out: dict[str, Any] = {}
    for kind, provider in seen.items():
        ledger_usd = sum(data["profiles"].get(n, {}).get("usd", 0.0) for n in by_provider[kind])
        ids = {str(r["machine_id"]) for n in by_provider[kind] for r in ledger.rows(n) if r["machine_id"]}
        try:
            figures = provider.billing(ids)
        except PadlabError as exc:
            out[kind] = {"error": str(exc)}
            continue
        if figures is not None:  # None: this provider exposes no billing to padlab
            out[kind] = dict(figures, ledger_usd=round(ledger_usd, 4), profiles=by_provider[kind])
    if not out:
        out["none"] = {
            "error": "none of these profiles' providers exposes billing to padlab (DigitalOcean does)"
        }
    return out


# -- the ledger added up --------------------------------------------------------------------------------------


def costs(profile: str | None = None, month: str | None = None, now: float | None = None) -> dict[str, Any]:
    """This month's (or MONTH's) costs per profile and per day, from the ledger; all estimates."""
    if month is not None:
        _check_month(month)
    now = time.time() if now is None else now
    start, end, label = ledger.month_bounds(month)
    spans = ledger.spans(start, end, profile, now)
    profiles: dict[str, dict[str, Any]] = {}
    days: dict[str, float] = {}
    for s in spans:
        p = profiles.setdefault(
            s.profile,
            {
                "usd": 0.0,
                "hours": 0.0,
                "down_usd": 0.0,
                "down_hours": 0.0,
                "exact": True,
                "unpriced_hours": 0.0,
            },
        )
        if s.kind == "compute":
            p["usd"] += s.usd
            p["hours"] += s.hours
        else:
            p["down_usd"] += s.usd
            p["down_hours"] += s.hours
            p["usd"] += s.usd
        if s.usd_per_hour is None:
            p["unpriced_hours"] += s.hours
        p["exact"] = p["exact"] and s.exact
        for day, usd in _by_day(s):
            days[day] = days.get(day, 0.0) + usd
    for p in profiles.values():
        for key in ("usd", "hours", "down_usd", "down_hours", "unpriced_hours"):
            p[key] = round(p[key], 6)
    return {
        "month": label,
        "estimate": True,
        "note": "estimate from padlab's ledger: where a start or stop was not seen, the earlier "
        "start and the later end are counted",
        "total_usd": round(sum(p["usd"] for p in profiles.values()), 6),
        "profiles": profiles,
        "days": {d: round(v, 6) for d, v in sorted(days.items())},
        "budgets": budget_view(now)["budgets"],
    }


FIRST_YEAR, LAST_YEAR = 1970, 9998


def _check_month(text: str) -> None:
    import re

    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise PadlabError(f"--month {text!r} is not a month", "give YYYY-MM, e.g. --month 2026-05")
    # datetime has no year 0, and a December's next month must exist too; no ledger predates 1970.
    if not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
        raise PadlabError(
            f"--month {text!r} is out of range",
            f"give a year from {FIRST_YEAR} to {LAST_YEAR}, e.g. --month 2026-05",
        )


def _by_day(span: ledger.Span) -> list[tuple[str, float]]:
    """The span's cost split at UTC midnights."""
    import datetime

    out = []
    t = span.start
    while t < span.end:
        day = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()
        midnight = datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.timezone.utc
        ).timestamp()
        e = min(midnight, span.end)
        out.append((day.isoformat(), (e - t) / 3600.0 * (span.usd_per_hour or 0.0)))
        t = e
    return out
