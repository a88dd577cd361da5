"""Records the fake DigitalOcean keeps per droplet, action, snapshot and SSH key."""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

from . import do_catalog
from ._ops import Op
from .backend import BackendState


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ssh_fingerprint(public_key: str) -> str | None:
    """MD5 colon-hex fingerprint (DigitalOcean's format), or None if the key is malformed."""
    parts = public_key.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None
    kind = parts[0].encode()
    if blob[4 : 4 + len(kind)] != kind or int.from_bytes(blob[:4], "big") != len(kind):
        return None
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - a fingerprint, not security
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass
class Droplet:
    id: int
    name: str
    size: do_catalog.Size
    region: str
    image: dict[str, Any]
    tags: list[str]
    features: list[str]
    vpc_uuid: str
    private_ip: str
    volume_ids: list[str]
    created_at: str = field(default_factory=now)
    public_ip: str | None = None
    was_active: bool = False
    snapshot_ids: list[int] = field(default_factory=list)

    def render(self, status: str) -> dict[str, Any]:
        """The droplet model; ``status`` comes from the backend, read fresh by the caller."""
        v4 = []
        if self.public_ip is not None:
            gateway = self.public_ip.rsplit(".", 1)[0] + ".1"
            v4 = [
                {
                    "ip_address": self.public_ip,
                    "netmask": "255.255.255.0",
                    "gateway": gateway,
                    "type": "public",
                },
                {
                    "ip_address": self.private_ip,
                    "netmask": "255.255.240.0",
                    "gateway": None,
                    "type": "private",
                },
            ]
        size = self.size.render()
        body = {
            "id": self.id,
            "name": self.name,
            "memory": self.size.memory_mb,
            "vcpus": self.size.vcpus,
            "disk": self.size.disk_gb,
            "disk_info": size["disk_info"],
            "locked": False,
            "status": status,
            "kernel": None,
            "created_at": self.created_at,
            "features": self.features,
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": list(self.snapshot_ids),
            "image": self.image,
            "volume_ids": self.volume_ids,
            "size": size,
            "size_slug": self.size.slug,
            "networks": {"v4": v4, "v6": []},
            "region": do_catalog.render_region(self.region),
            "tags": self.tags,
            "vpc_uuid": self.vpc_uuid,
        }
        if "gpu_info" in size:
            body["gpu_info"] = size["gpu_info"]
        return body


@dataclass
class Action:
    id: int
    type: str
    droplet_id: int
    region: str
    op: Op
    target: BackendState | None  # backend state that completes the action, if any
    started_at: str = field(default_factory=now)
    status: str = "in-progress"
    completed_at: str | None = None

    def render(self, status: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": status,
            "type": self.type,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "resource_id": self.droplet_id,
            "resource_type": "droplet",
            "region": do_catalog.render_region(self.region),
            "region_slug": self.region,
        }


@dataclass
class Snapshot:
    id: int
    name: str
    droplet_id: int
    region: str
    min_disk_size: int
    distribution: str
    created_at: str = field(default_factory=now)

    def render(self) -> dict[str, Any]:
        """The ``/v2/snapshots`` shape: string id and resource_id."""
        return {
            "id": str(self.id),
            "name": self.name,
            "created_at": self.created_at,
            "regions": [self.region],
            "resource_id": str(self.droplet_id),
            "resource_type": "droplet",
            "min_disk_size": self.min_disk_size,
            "size_gigabytes": round(self.min_disk_size * 0.05, 2),
            "tags": [],
        }

    def render_for_droplet(self) -> dict[str, Any]:
        """The ``/v2/droplets/{id}/snapshots`` shape (droplet_snapshot model): integer id."""
        return {
            "id": self.id,
            "name": self.name,
            "distribution": self.distribution,
            "slug": None,
            "public": False,
            "regions": [self.region],
            "created_at": self.created_at,
            "min_disk_size": self.min_disk_size,
            "type": "snapshot",
            "size_gigabytes": round(self.min_disk_size * 0.05, 2),
        }
