"""The one table of DigitalOcean operations (padlab.providers.do_api) against what padlab and the box call.

The table is transcribed from DigitalOcean's OpenAPI spec (file and commit per row). These
tests hold the code to it: the box's token scopes cover the box's calls, every call the
client and the box make is a row, and pydo builds each row's method and path. The fake
enforces the rows' scopes (tests/fakes/digitalocean.py) and records any request that is
not a row (``unlisted``), which the DigitalOcean provider and autostop tests require empty.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from padlab.box.autostop import do_stop
from padlab.providers import digitalocean, do_api

SRC = Path(digitalocean.__file__).parent.parent


def test_the_autostop_scopes_cover_every_operation_the_box_calls() -> None:
    box = {op.op_id for op in do_api.box_operations()}
    assert box == set(do_stop.CALLS)
    needed = do_api.scopes_of(list(box))
    assert set(digitalocean.AUTOSTOP_SCOPES) == needed  # all of them, and nothing more
    assert "image:create" in needed  # the snapshot action: droplet:update AND image:create
    assert not {"snapshot:delete", "image:delete", "droplet:create"} & set(digitalocean.AUTOSTOP_SCOPES)


def _template_regex(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)))


def test_every_call_the_box_makes_is_in_the_table() -> None:
    source = inspect.getsource(do_stop)
    calls = re.findall(r'api\.call\(\s*"(\w+)",\s*"([^"?]+)[^"]*"', source)
    assert len(calls) == len(do_stop.CALLS)
    for method, path in calls:
        concrete = re.sub(r"%[sd]", "123", path)
        rows = [op for op in do_stop.CALLS if do_api.BY_ID[op].method == method]
        assert any(_template_regex(do_api.BY_ID[op].path).fullmatch(concrete) for op in rows), (method, path)
    assert '{"type": "snapshot"' in source  # the only action type the box sends


def test_every_pydo_call_the_client_makes_is_in_the_table() -> None:
    used = set()
    for module in ("providers/digitalocean.py",):
        used |= set(re.findall(r"client\.(\w+\.\w+)\b", (SRC / module).read_text()))
    listed = {op.pydo for op in do_api.OPERATIONS if op.pydo}
    assert used and used <= listed, used - listed
    source = (SRC / "providers/digitalocean.py").read_text()
    actions = set(re.findall(r'_action\([^,]+,\s*"(\w+)"', source))
    assert actions and {f"dropletActions_post:{kind}" for kind in actions} <= set(do_api.BY_ID)


@pytest.mark.parametrize("op", [op for op in do_api.OPERATIONS if op.pydo], ids=lambda op: op.op_id)
def test_pydo_builds_each_rows_method_and_path(op: do_api.Operation) -> None:
    """pydo is generated from the same spec: its request builder must agree with the row."""
    from pydo.operations import _operations

    group, method = op.pydo.split(".")
    cls = getattr(_operations, "".join(part.title() for part in group.split("_")) + "Operations")
    builder = re.search(r"_request = (build_\w+)\(", inspect.getsource(getattr(cls, method)))
    assert builder, op.pydo
    built = inspect.getsource(getattr(_operations, builder[1]))
    assert f'_url = "{op.path}"' in built and f'method="{op.method}"' in built


def test_every_row_cites_a_spec_file_and_real_scopes() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", do_api.SPEC_COMMIT)
    for op in do_api.OPERATIONS:
        assert op.source.startswith("specification/resources/") and ".yml" in op.source, op
        assert op.path.startswith("/v2/") and op.method in ("GET", "POST", "DELETE"), op
        assert all(re.fullmatch(r"[a-z_]+:(create|read|update|delete)", s) for s in op.all_scopes), op


def test_docs_list_every_operation_with_its_scopes() -> None:
    docs = (SRC.parent.parent / "docs" / "providers.md").read_text()
    for op in do_api.OPERATIONS:
        [line] = [line for line in docs.splitlines() if line.startswith(f"| `{op.op_id}` |")]
        assert f"`{op.method} {op.path}`" in line
        assert all(f"`{scope}`" in line for scope in op.all_scopes), op.op_id
    assert do_api.SPEC_COMMIT in docs
