"""What the fake DigitalOcean account has been billed: the data behind /v2/customers/my/*.

Shapes from DigitalOcean's OpenAPI spec (specification/resources/billing/:
balance_get.yml, invoices_list.yml, invoices_get_byUUID.yml) as pydo 0.44
generates them: amounts are strings of USD, times ISO 8601 UTC.

* A droplet is billed from its create to its delete at its size's
  ``price_hourly``, whatever its power state (a powered-off droplet is billed).
* A snapshot is billed per GB-month (``SNAPSHOT_GB_MONTH``, 730 hours a month)
  from the moment it is listed until it is deleted.
* Usage counts the current UTC calendar month; the invoice preview has one
  item per resource. There are no past invoices (the account is new).
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

SNAPSHOT_GB_MONTH = 0.06
HOURS_PER_MONTH = 730.0


def _iso(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_start(now: float) -> float:
    today = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return datetime.datetime(today.year, today.month, 1, tzinfo=datetime.timezone.utc).timestamp()


@dataclass
class Usage:
    resource_id: int
    product: str  # "Droplets" | "Snapshots"
    description: str
    usd_per_hour: float
    start: float
    end: float | None = None

    def hours(self, since: float, now: float) -> float:
        return max(min(self.end or now, now) - max(self.start, since), 0.0) / 3600.0


class Billing:
    """Usage records, kept as the fake's droplets and snapshots come and go; thread-safe."""

    def __init__(self, account: str) -> None:
        self._usage: list[Usage] = []
        self._lock = threading.Lock()
        self.preview_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"invoice-preview/{account}"))

    def start(self, resource_id: int, product: str, description: str, usd_per_hour: float) -> None:
        with self._lock:
            self._usage.append(Usage(resource_id, product, description, usd_per_hour, time.time()))

    def end(self, resource_id: int, product: str) -> None:
        with self._lock:
            for item in self._usage:
                if item.resource_id == resource_id and item.product == product and item.end is None:
                    item.end = time.time()

    def month_to_date(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        since = month_start(now)
        with self._lock:
            return sum(u.hours(since, now) * u.usd_per_hour for u in self._usage)

    def balance(self) -> dict[str, Any]:
        now = time.time()
        usage = self.month_to_date(now)
        return {
            "month_to_date_balance": f"{usage:.2f}",
            "account_balance": "0.00",
            "month_to_date_usage": f"{usage:.2f}",
            "generated_at": _iso(now),
        }

    def preview(self) -> dict[str, Any]:
        now = time.time()
        return {
            "invoice_uuid": self.preview_uuid,
            "invoice_id": "preview",
            "amount": f"{self.month_to_date(now):.2f}",
            "invoice_period": _iso(now)[:7],
            "updated_at": _iso(now),
        }

    def items(self) -> list[dict[str, Any]]:
        now = time.time()
        since = month_start(now)
        with self._lock:
            usage = [u for u in self._usage if u.hours(since, now) > 0 or u.end is None]
            return [
                {
                    "product": u.product,
                    "resource_id": str(u.resource_id),
                    "resource_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{u.product}/{u.resource_id}")),
                    "group_description": "",
                    "description": u.description,
                    "amount": f"{u.hours(since, now) * u.usd_per_hour:.2f}",
                    "duration": f"{u.hours(since, now):.2f}",
                    "duration_unit": "Hours",
                    "start_time": _iso(max(u.start, since)),
                    "end_time": _iso(min(u.end or now, now)),
                    "project_name": "padlab",
                }
                for u in usage
            ]
