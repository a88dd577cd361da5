"""Regions, sizes and images the fake DigitalOcean account offers.

Field names follow the size/region/image models of github.com/digitalocean/openapi
(as generated into pydo's ``SizesOperations.list`` docs).  Slugs match real ones
(``gpu-h100x1-80gb``, ``ubuntu-24-04-x64``...), but prices, capacities and
region availability are illustrative, not DigitalOcean's current price list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Size:
    slug: str
    description: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    transfer_tb: float
    price_hourly: float
    price_monthly: float
    regions: tuple[str, ...]
    gpu_model: str | None = None
    gpu_count: int = 0
    vram_gib: int = 0
    scratch_gib: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.gpu_model is not None

    def render(self) -> dict[str, Any]:
        disk_info = [{"type": "local", "size": {"amount": self.disk_gb, "unit": "gib"}}]
        if self.scratch_gib:
            disk_info.append({"type": "scratch", "size": {"amount": self.scratch_gib, "unit": "gib"}})
        body: dict[str, Any] = {
            "slug": self.slug,
            "memory": self.memory_mb,
            "vcpus": self.vcpus,
            "disk": self.disk_gb,
            "transfer": self.transfer_tb,
            "price_monthly": self.price_monthly,
            "price_hourly": self.price_hourly,
            "regions": list(self.regions),
            "available": True,
            "description": self.description,
            "disk_info": disk_info,
        }
        if self.is_gpu:
            body["gpu_info"] = {
                "count": self.gpu_count,
                "model": self.gpu_model,
                "vram": {"amount": self.vram_gib, "unit": "gib"},
            }
        return body


_CPU_REGIONS = ("nyc1", "nyc2", "nyc3", "ams3", "sfo3", "fra1", "tor1", "atl1")

SIZES: dict[str, Size] = {
    size.slug: size
    for size in (
        Size("s-1vcpu-1gb", "Basic", 1, 1024, 25, 1.0, 0.00893, 6.0, _CPU_REGIONS),
        Size("s-2vcpu-4gb", "Basic", 2, 4096, 80, 4.0, 0.03571, 24.0, _CPU_REGIONS),
        Size("g-4vcpu-16gb", "General Purpose", 4, 16384, 50, 5.0, 0.125, 84.0, _CPU_REGIONS),
        Size(
            "gpu-4000adax1-20gb",
            "GPU RTX 4000 Ada x1",
            8,
            32768,
            500,
            10.0,
            0.76,
            565.44,
            ("tor1", "atl1"),
            "nvidia_rtx_4000_ada",
            1,
            20,
            0,
        ),
        Size(
            "gpu-l40sx1-48gb",
            "GPU L40S x1",
            8,
            65536,
            500,
            10.0,
            1.57,
            1168.08,
            ("tor1", "atl1"),
            "nvidia_l40s",
            1,
            48,
            0,
        ),
        Size(
            "gpu-h100x1-80gb",
            "GPU H100 x1",
            20,
            245760,
            720,
            15.0,
            3.39,
            2522.16,
            ("nyc2", "tor1", "atl1"),
            "nvidia_h100",
            1,
            80,
            5120,
        ),
        Size(
            "gpu-h100x8-640gb",
            "GPU H100 x8",
            160,
            1966080,
            2046,
            60.0,
            23.92,
            17796.48,
            ("nyc2", "tor1"),
            "nvidia_h100",
            8,
            640,
            40960,
        ),
    )
}

REGION_NAMES = {
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "ams3": "Amsterdam 3",
    "sfo3": "San Francisco 3",
    "fra1": "Frankfurt 1",
    "tor1": "Toronto 1",
    "atl1": "Atlanta 1",
}


def render_region(slug: str) -> dict[str, Any]:
    return {
        "name": REGION_NAMES[slug],
        "slug": slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": True,
        "sizes": [size.slug for size in SIZES.values() if slug in size.regions],
    }


@dataclass(frozen=True)
class Image:
    id: int
    slug: str
    name: str
    distribution: str
    min_disk_size: int

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "distribution": self.distribution,
            "slug": self.slug,
            "public": True,
            "regions": list(REGION_NAMES),
            "created_at": "2024-04-25T14:17:29Z",
            "min_disk_size": self.min_disk_size,
            "type": "base",
            "size_gigabytes": 2.36,
            "description": f"{self.distribution} {self.name}",
            "tags": [],
            "status": "available",
            "error_message": "",
        }


IMAGES: dict[str, Image] = {
    image.slug: image
    for image in (
        Image(155000001, "ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", 7),
        Image(155000002, "ubuntu-22-04-x64", "22.04 (LTS) x64", "Ubuntu", 7),
        Image(155000003, "gpu-h100x1-base", "AI/ML Ready H100x1", "Ubuntu", 30),
    )
}
