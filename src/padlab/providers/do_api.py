"""Every DigitalOcean API operation padlab or its box calls, with the scopes DigitalOcean says it needs.

Transcribed from DigitalOcean's own OpenAPI spec, github.com/digitalocean/openapi at
commit 7c1300c479fed9c353cda9fc21cd968619552304 (2026-08-07): the method and path from
``specification/DigitalOcean-public.v2.yaml``'s ``paths``, the scopes from the
operation file's ``security: bearer_auth`` list (all of them are asked for: OpenAPI
reads a requirement's scopes as all required), plus the "Required Permissions" column
of ``dropletActions_post.yml`` for droplet actions and the "Requires `...` scope"
notes on the request fields padlab sends (``droplet_create.yml``: tags, ssh_keys, image;
``parameters.yml``: tag_name).

One table, three readers: the client's ``AUTOSTOP_SCOPES`` must cover the box's
operations (tests/providers/test_do_api.py), the strict fake takes its scopes from it
(tests/fakes/digitalocean.py), and docs/providers.md lists it.
"""

from __future__ import annotations

from dataclasses import dataclass

SPEC_REPO = "github.com/digitalocean/openapi"
SPEC_COMMIT = "7c1300c479fed9c353cda9fc21cd968619552304"


@dataclass(frozen=True)
class Operation:
    op_id: str  # the spec's operationId (``:type`` for one droplet action type)
    method: str
    path: str  # the spec's path template
    scopes: tuple[str, ...]  # every scope the call needs on a custom-scoped token
    source: str  # the file in SPEC_REPO at SPEC_COMMIT the scopes come from
    pydo: str | None = None  # pydo's ``Client`` attribute padlab calls, if the client calls it
    box: bool = False  # whether the box's autostop (padlab/box/autostop/do_stop.py) calls it
    # (request field or query parameter, scope) from the spec's "Requires `...` scope" notes:
    # needed when the request carries that field.
    field_scopes: tuple[tuple[str, str], ...] = ()

    @property
    def all_scopes(self) -> tuple[str, ...]:
        """The scopes with every field's, as padlab sends them all."""
        return self.scopes + tuple(scope for _, scope in self.field_scopes if scope not in self.scopes)


_D = "specification/resources/droplets/"
_S = "specification/resources/snapshots/"
_B = "specification/resources/billing/"
_ACTIONS = _D + "dropletActions_post.yml (Required Permissions)"

OPERATIONS: tuple[Operation, ...] = (
    # tag_name: "Requires `tag:read` scope" (droplets/parameters.yml, droplet_tag_name).
    Operation("droplets_list", "GET", "/v2/droplets", ("droplet:read",),
              _D + "droplets_list.yml; parameters.yml (droplet_tag_name)", "droplets.list",
              field_scopes=(("tag_name", "tag:read"),)),
    Operation("droplets_create", "POST", "/v2/droplets", ("droplet:create",),
              _D + "droplets_create.yml; models/droplet_create.yml (image, ssh_keys, tags)", "droplets.create",
              field_scopes=(("image", "image:read"), ("ssh_keys", "ssh_key:read"), ("tags", "tag:create"))),
    Operation("droplets_get", "GET", "/v2/droplets/{droplet_id}", ("droplet:read",),
              _D + "droplets_get.yml", "droplets.get"),
    Operation("droplets_destroy", "DELETE", "/v2/droplets/{droplet_id}", ("droplet:delete",),
              _D + "droplets_destroy.yml", "droplets.destroy", box=True),
    Operation("droplets_list_snapshots", "GET", "/v2/droplets/{droplet_id}/snapshots", ("droplet:read",),
              _D + "droplets_list_snapshots.yml", "droplets.list_snapshots", box=True),
    Operation("dropletActions_post:power_on", "POST", "/v2/droplets/{droplet_id}/actions",
              ("droplet:update",), _ACTIONS, "droplet_actions.post"),
    Operation("dropletActions_post:shutdown", "POST", "/v2/droplets/{droplet_id}/actions",
              ("droplet:update",), _ACTIONS, "droplet_actions.post"),
    Operation("dropletActions_post:power_off", "POST", "/v2/droplets/{droplet_id}/actions",
              ("droplet:update",), _ACTIONS, "droplet_actions.post"),
    Operation("dropletActions_post:snapshot", "POST", "/v2/droplets/{droplet_id}/actions",
              ("droplet:update", "image:create"), _ACTIONS, "droplet_actions.post", box=True),
    Operation("dropletActions_get", "GET", "/v2/droplets/{droplet_id}/actions/{action_id}",
              ("droplet:read",), _D + "dropletActions_get.yml", None, box=True),
    Operation("actions_get", "GET", "/v2/actions/{action_id}", ("actions:read",),
              "specification/resources/actions/actions_get.yml", "actions.get"),
    Operation("snapshots_list", "GET", "/v2/snapshots", ("snapshot:read",),
              _S + "snapshots_list.yml", "snapshots.list"),
    Operation("snapshots_get", "GET", "/v2/snapshots/{snapshot_id}",
              ("snapshot:read", "block_storage_snapshot:read"), _S + "snapshots_get.yml", "snapshots.get",
              box=True),
    Operation("snapshots_delete", "DELETE", "/v2/snapshots/{snapshot_id}",
              ("image:delete", "snapshot:delete"), _S + "snapshots_delete.yml", "snapshots.delete"),
    Operation("sizes_list", "GET", "/v2/sizes", ("sizes:read", "regions:read"),
              "specification/resources/sizes/sizes_list.yml", "sizes.list"),
    Operation("sshKeys_list", "GET", "/v2/account/keys", ("ssh_key:read",),
              "specification/resources/ssh_keys/sshKeys_list.yml", "ssh_keys.list"),
    Operation("sshKeys_create", "POST", "/v2/account/keys", ("ssh_key:create",),
              "specification/resources/ssh_keys/sshKeys_create.yml", "ssh_keys.create"),
    Operation("account_get", "GET", "/v2/account", ("account:read",),
              "specification/resources/account/account_get.yml", "account.get"),
    Operation("balance_get", "GET", "/v2/customers/my/balance", ("billing:read",),
              _B + "balance_get.yml", "balance.get"),
    Operation("invoices_list", "GET", "/v2/customers/my/invoices", ("billing:read",),
              _B + "invoices_list.yml", "invoices.list"),
    Operation("invoices_get_byUUID", "GET", "/v2/customers/my/invoices/{invoice_uuid}", ("billing:read",),
              _B + "invoices_get_byUUID.yml", "invoices.get_by_uuid"),
)  # fmt: skip
BY_ID = {op.op_id: op for op in OPERATIONS}

# The scopes `padlab login digitalocean --autostop-token` asks for: every scope of every operation
# the box calls (tests/providers/test_do_api.py keeps the two equal). The snapshot action needs
# image:create besides droplet:update; the snapshot lookup lists block_storage_snapshot:read too.
AUTOSTOP_SCOPES = (
    "droplet:read",
    "droplet:update",
    "image:create",
    "droplet:delete",
    "snapshot:read",
    "block_storage_snapshot:read",
)


def scopes_of(op_ids: tuple[str, ...] | list[str]) -> set[str]:
    """Every scope the named operations need together, with the fields padlab sends."""
    return {scope for op_id in op_ids for scope in BY_ID[op_id].all_scopes}


def box_operations() -> tuple[Operation, ...]:
    """What the box's autostop calls: its token must hold all their scopes."""
    return tuple(op for op in OPERATIONS if op.box)
