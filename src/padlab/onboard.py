"""Setting up from nothing: a new profile, a provider's API key, the provider's lists, destroy's check.

`padlab init`, `padlab login` and `padlab destroy` call these, and so does the
panel's "new workstation", "keys" and "destroy" pages: one implementation, so a
workstation made on an iPad is the same as one made on a computer.
"""

from __future__ import annotations

import os
from typing import Any

from padlab import profiles, registry
from padlab.errors import PadlabError
from padlab.profiles import Profile

# Beside a stored key, the API URL it was checked against (credentials/PROVIDER-api-url).
KEY_URL_SUFFIX = "-api-url"
# Fields of `padlab init` (its flag names, underscored) besides NAME, --provider and the cloud flags.
# init's cloud flags (cli/cloud.py CLOUD_SETTINGS gives each its help): what the panel's API takes.
CLOUD_KEYS = (
    "machine_id",
    "machine_name",
    "region",
    "machine_type",
    "image",
    "disk_size",
    "api_url",
    "price",
    "subnet",
)

INIT_FIELDS = (
    "port",
    "root_dir",
    "listen",
    "host",
    "user",
    "ssh_port",
    "identity",
    "allow_from",
    "firewall",
    "autostop",
    "max_uptime",
    "autostop_action",
    "clone_url",
    "tls_mode",
    "acme_directory",
    "acme_ca",
)

# Regions padlab offers where the provider's machine-type and region lists need no key.
# Sources: each provider's region docs (Paperspace: ny2, ca1, ams1; AWS: regions with GPU
# instances; DigitalOcean: its GPU droplet regions; Lambda: its regions; RunPod: its data centers).
REGIONS: dict[str, tuple[str, ...]] = {
    "paperspace": ("ny2", "ca1", "ams1"),
    "aws": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"),
    "digitalocean": ("nyc2", "tor1", "atl1", "ams3"),
    "lambda": ("us-east-1", "us-west-1", "us-south-1", "europe-central-1", "asia-northeast-1"),
    "runpod": ("EU-RO-1", "US-TX-3", "CA-MTL-1", "EU-SE-1"),
}
# Machine types beyond the price table's, where it has none for the provider.
MACHINE_TYPES: dict[str, tuple[str, ...]] = {
    "lambda": ("a10", "a100", "h100", "gpu_1x_a10", "gpu_1x_a100_sxm4", "gpu_1x_h100_pcie"),
    "runpod": ("NVIDIA A40", "NVIDIA RTX A5000", "NVIDIA RTX A6000", "NVIDIA A100 80GB PCIe"),
}


def create_profile(
    name: str | None,
    provider: str | None,
    force: bool = False,
    cloud: dict[str, Any] | None = None,
    **fields: Any,
) -> tuple[Profile, str]:
    """Check and save a new profile as `padlab init` does; nothing is written when a check fails.

    fields: INIT_FIELDS (None leaves padlab's default); cloud: init's cloud flags (region,
    machine_type, ...). Returns the profile and the file it was saved in.
    """
    unknown = set(fields) - set(INIT_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    get = fields.get
    if not name:
        raise PadlabError("init needs a profile name", "padlab init NAME --provider local")
    if provider is None:
        raise PadlabError("init needs a provider", f"padlab init {name} --provider local")
    if profiles.exists(name) and not force:
        raise PadlabError(
            f"profile {name!r} already exists", "pass --force to replace it, or pick another name"
        )
    profile = Profile(name=name, provider=provider, clone=get("clone_url"))
    if profiles.exists(name):
        # Kernels declared with `padlab kernels create` describe the box, which --force keeps.
        profile.kernels = profiles.load(name).kernels
    if get("port") is not None:
        profile.port = get("port")
    if get("root_dir") is not None:
        profile.root_dir = get("root_dir")
    if get("listen") is not None:
        profile.listen = get("listen")
    remote = ("host", "user", "ssh_port", "identity", "allow_from", "firewall")
    if any(get(k) for k in remote):
        from padlab.providers.remote import configure

        configure(
            profile,
            get("host"),
            get("ssh_port"),
            get("identity"),
            get("allow_from"),
            get("firewall"),
            get("user"),
        )
    profile.autostop, profile.max_uptime = get("autostop"), get("max_uptime")
    profile.autostop_action = get("autostop_action")
    profile.tls, profile.acme_directory = get("tls_mode"), get("acme_directory")
    if get("acme_ca") is not None:
        profile.acme_ca = os.path.abspath(os.path.expanduser(get("acme_ca")))
    if cloud and any(v is not None for v in cloud.values()):
        from padlab.providers.cloud import configure as configure_cloud

        configure_cloud(profile, cloud)
    from padlab import workstation

    profile.validate()
    workstation.check_autostop(profile)
    path = profiles.save(profile)
    return profile, str(path)


# --- provider API keys ------------------------------------------------------------------------


def _module(provider: str) -> Any:
    from importlib import import_module

    if provider not in registry.CLOUDS:
        raise PadlabError(f"{provider!r} takes no API key", f"keys are for {', '.join(registry.CLOUDS)}")
    return import_module(registry.PROVIDERS[provider].module)


def store_key(
    provider: str, parts: list[str], api_url: str | None = None, verify: bool = True
) -> dict[str, Any]:
    """`padlab login PROVIDER`: check the key with the provider (unless told not to), then store it 0600.

    parts: one value per line the provider asks for (registry key_parts: AWS has two).
    Nothing is stored when the key is empty or the provider refuses it.
    """
    module = _module(provider)
    parts = [p.strip() for p in parts]
    if len(parts) != len(registry.PROVIDERS[provider].key_parts) or not all(parts):
        raise PadlabError("the key is empty", f"run `padlab login {provider}` again and paste the whole key")
    value = "\n".join(parts)
    if verify:
        module.verify_key(value, api_url)
    from padlab.providers import credentials

    path = credentials.store(provider, value)
    # The API the key was checked against, so the key's lists are read there too (key_api_url).
    url_file = credentials.stored_path(provider + KEY_URL_SUFFIX)
    if api_url:
        credentials.store(provider + KEY_URL_SUFFIX, api_url.rstrip("/"))
    else:
        url_file.unlink(missing_ok=True)
    return {"provider": provider, "path": str(path)}


def key_api_url(provider: str) -> str | None:
    """The API URL `padlab login` (or the panel's Keys page) checked the stored key against, if not
    the provider's own."""
    from padlab.providers import credentials

    found = credentials.read_stored(provider + KEY_URL_SUFFIX)
    return found.value if found else None


def store_autostop_key(
    provider: str, parts: list[str], api_url: str | None = None, verify: bool = True
) -> dict[str, Any]:
    """`padlab login PROVIDER --autostop-token`: the second key a box uses to stop itself."""
    module = autostop_key_module(provider)
    parts = [p.strip() for p in parts]
    if not parts or not all(parts):
        raise PadlabError("the key is empty", f"run `padlab login {provider}` again and paste the whole key")
    where, checked = module.store_autostop_token("\n".join(parts), api_url, verify=verify)
    return {"provider": provider, "path": str(where), "checked": checked}


def autostop_key_module(provider: str) -> Any:
    """The provider's module where its boxes stop themselves with a second key, else one line."""
    module = _module(provider)
    if not hasattr(module, "store_autostop_token"):
        raise PadlabError(
            f"--autostop-token is for clouds whose box stops itself with a key of its own, "
            f"and {registry.PROVIDERS[provider].label}'s does not",
            "drop the flag",
        )
    return module


def key_status(provider: str) -> dict[str, Any]:
    """Whether a key is stored for the provider, and since when: never the key, nor any part of it."""
    from padlab.providers import credentials

    path = credentials.stored_path(provider)
    try:
        stored_at: float | None = path.stat().st_mtime if path.read_text().strip() else None
    except OSError:
        stored_at = None
    return {
        "provider": provider,
        "label": registry.PROVIDERS[provider].label,
        "parts": list(registry.PROVIDERS[provider].key_parts),
        "stored": stored_at is not None,
        "stored_at": stored_at,
    }


# --- the provider's lists ---------------------------------------------------------------------


def catalog(provider: str, live: bool = False, api_url: str | None = None) -> dict[str, Any]:
    """Machine types (with a price where padlab knows one), regions and defaults for the new-workstation form.

    live: ask the provider's API for its own list (each cloud module's ``catalog``: DigitalOcean's
    sizes, Lambda's instance types, Paperspace's template and availability, EC2's GPU instance
    types and offerings, RunPod's GPU catalog) where a key is stored; padlab's bundled list otherwise, or when the
    API cannot be read (the page then says why, in one line).
    """
    from importlib import import_module

    from padlab.providers import prices

    info = registry.PROVIDERS.get(provider)
    if info is None:
        raise PadlabError(f"unknown provider {provider!r}", f"use one of: {', '.join(registry.NAMES)}")
    defaults: dict[str, Any] = {}
    if info.cloud:
        module = import_module(info.module)
        defaults = getattr(module, "DEFAULTS", None) or {
            "machine_type": getattr(module, "DEFAULT_TYPE", None)
        }
    table = prices.HOURLY.get(provider, {})
    first = [defaults["machine_type"]] if defaults.get("machine_type") else []
    names = list(dict.fromkeys([*first, *table, *MACHINE_TYPES.get(provider, ())]))
    out = {
        "provider": provider,
        "label": info.label,
        "cloud": info.cloud,
        "needs_host": info.needs_host,
        "machine_types": [{"name": n, "price_per_hour": table.get(n)} for n in names],
        "regions": list(REGIONS.get(provider, ())),
        "default_machine_type": defaults.get("machine_type"),
        "default_region": defaults.get("region"),
        "default_autostop": info.default_idle,
        "price_source": prices.TABLE_NOTE,
        "live_error": None,
    }
    reader = getattr(import_module(info.module), "catalog", None) if info.cloud and live else None
    if reader is not None:
        try:
            found = _live_list(provider, reader, api_url)
        except PadlabError as exc:
            out["live_error"] = (
                f"{info.label}'s own list could not be read ({exc.message}): padlab's list instead"
            )
        else:
            types = found["machine_types"]
            default = defaults.get("machine_type")
            types.sort(
                key=lambda m: (m["name"] != default, m["price_per_hour"] is None, m["price_per_hour"] or 0)
            )
            regions = list(dict.fromkeys(r for m in types for r in m.get("regions", [])))
            out.update(machine_types=types, price_source=found["source"])
            if regions:
                default_region = out["default_region"]
                out["regions"] = regions if default_region in (None, *regions) else [*regions, default_region]
    return out


# The provider's own lists as last read, for the form, which is drawn on every GET and POST: a list
# is read again after LIVE_TTL_S, one that could not be read after FAILED_TTL_S (its retries take
# up to half a minute); a new key, API URL or PADLAB_* setting is another entry.
LIVE_TTL_S = 600.0
FAILED_TTL_S = 60.0
_LIVE: dict[tuple, tuple[float, dict[str, Any] | PadlabError]] = {}


def _live_list(provider: str, reader: Any, api_url: str | None) -> dict[str, Any]:
    import copy
    import hashlib
    import time

    from padlab.providers import credentials

    secret = credentials.read_stored(provider)
    held = hashlib.sha256(secret.value.encode()).hexdigest() if secret else None
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PADLAB_")))
    key = (provider, api_url, held, settings)
    now = time.monotonic()
    hit = _LIVE.get(key)
    if hit is None or now - hit[0] >= (FAILED_TTL_S if isinstance(hit[1], PadlabError) else LIVE_TTL_S):
        try:
            hit = (now, reader(api_url))
        except PadlabError as exc:
            hit = (now, exc)
        _LIVE[key] = hit
    if isinstance(hit[1], PadlabError):
        raise hit[1]
    return copy.deepcopy(hit[1])  # the caller sorts it


# --- destroy ----------------------------------------------------------------------------------


def confirm_destroy(name: str, typed: str) -> None:
    """Destroy goes ahead only when the profile's name was typed exactly (surrounding spaces aside)."""
    if typed.strip() != name:
        raise PadlabError("the name did not match; nothing was deleted", f"type {name!r} exactly")
