"""What a machine costs, and where that figure came from.

The provider's API wins where it states a price (DigitalOcean sizes, Paperspace
machines); otherwise a small bundled table of common GPU types; a profile's
``--price`` overrides both. Every figure carries its source, because a stale
list price presented as fact is worse than none.
"""

from __future__ import annotations

TABLE_NOTE = "bundled table, approximate 2025 list price"

# USD per hour, on demand.
HOURLY: dict[str, dict[str, float]] = {
    "aws": {  # us-east-1, Linux
        "g4dn.xlarge": 0.526,
        "g4dn.2xlarge": 0.752,
        "g5.xlarge": 1.006,
        "g5.2xlarge": 1.212,
        "g6.xlarge": 0.805,
        "g6e.xlarge": 1.861,
        "p3.2xlarge": 3.06,
    },
    "paperspace": {
        "P4000": 0.51,
        "RTX4000": 0.56,
        "P5000": 0.78,
        "A4000": 0.76,
        "A5000": 1.38,
        "A6000": 1.89,
        "A100": 3.09,
        "A100-80G": 3.18,
        "H100": 5.95,
    },
    "digitalocean": {
        "gpu-4000adax1-20gb": 0.76,
        "gpu-6000adax1-48gb": 1.57,
        "gpu-l40sx1-48gb": 1.57,
        "gpu-h100x1-80gb": 3.39,
    },
}

# USD per GB-month for what outlives `padlab down`.
EBS_GP3_GB_MONTH = 0.08
DO_SNAPSHOT_GB_MONTH = 0.06


def hourly(
    provider: str, machine_type: str | None, override: float | None, api_price: float | None, api_label: str
) -> tuple[float | None, str | None]:
    """(USD per hour, source): the profile's override, else the API's figure, else the table."""
    if override is not None:
        return float(override), "profile (--price)"
    if api_price is not None:
        return float(api_price), api_label
    price = HOURLY.get(provider, {}).get(machine_type or "")
    if price is not None:
        return price, TABLE_NOTE
    return None, None


# Clouds bill a month's storage as 730 hours (AWS, DigitalOcean and Paperspace all use this figure).
HOURS_PER_MONTH = 730.0


def hourly_from_month(usd_per_month: float) -> float:
    return usd_per_month / HOURS_PER_MONTH


def per_month(gb: float, rate: float) -> str:
    return f"{gb:g} GB × ${rate:.2f}/GB-month ≈ ${gb * rate:.2f}/month"
