"""The Paperspace fake and padlab's client against Paperspace's OpenAPI v1 document (paperspace_spec)."""

from __future__ import annotations

import re
from pathlib import Path

from padlab.providers import paperspace
from tests.fakes import paperspace_spec as spec
from tests.fakes.paperspace import (
    API_STATES,
    AVAILABILITY_QUERY,
    CREATE_FIELDS,
    LIST_QUERY,
    OS_TEMPLATES_QUERY,
    PENDING_STATES,
    FakePaperspace,
)


def test_padlabs_state_table_has_every_documented_machine_state() -> None:
    assert set(paperspace.STATES) == set(spec.MACHINE_STATES)


def test_the_fake_answers_only_documented_states() -> None:
    shown = {*API_STATES.values(), *PENDING_STATES.values(), "upgrading"}
    assert shown <= set(spec.MACHINE_STATES)


def test_the_fakes_create_body_is_the_documented_one() -> None:
    assert set(CREATE_FIELDS) == {*spec.CREATE_REQUIRED, *spec.CREATE_OPTIONAL}
    assert {name for name, field in CREATE_FIELDS.items() if field.required} == set(spec.CREATE_REQUIRED)
    assert CREATE_FIELDS["publicIpType"].enum == spec.PUBLIC_IP_TYPES


def test_the_fakes_list_query_and_limits_are_the_documented_ones() -> None:
    assert set(LIST_QUERY) == set(spec.LIST_QUERY)
    low, high = spec.LIST_LIMIT
    check = LIST_QUERY["limit"].check
    assert check is not None
    assert check(low) is None and check(high) is None and check(low - 1) and check(high + 1)


def test_the_fakes_routes_are_documented_operations() -> None:
    routes = {(method, pattern.pattern) for method, pattern, _ in FakePaperspace._routes}
    documented = {
        (method, re.sub(r"\{\w+\}", "(?P<machine_id>[^/]+)", path)) for method, path in spec.OPERATIONS
    }
    assert routes == documented


def test_the_fakes_list_queries_are_the_documented_ones() -> None:
    assert set(OS_TEMPLATES_QUERY) == set(spec.OS_TEMPLATES_QUERY)
    assert OS_TEMPLATES_QUERY["orderBy"].enum == spec.OS_TEMPLATES_ORDER_BY
    required = {name for name, field in AVAILABILITY_QUERY.items() if field.required}
    assert set(AVAILABILITY_QUERY) == required == set(spec.AVAILABILITY_QUERY_REQUIRED)


def test_every_call_padlab_makes_is_a_documented_operation() -> None:
    source = Path(paperspace.__file__).read_text()
    calls = re.findall(r'\.(?:request|send)\(\s*"(\w+)",\s*f?"([^"]+)"', source)
    assert calls
    verbs = set(re.findall(r'self\._power\(machine, "(\w+)"', source))
    assert verbs == {"start", "stop"}
    for method, path in calls:
        template = re.sub(r"\{machine\.id\}|\{machine_id\}", "{id}", path)
        for verb in verbs if "{verb}" in template else {""}:
            assert (method, template.replace("{verb}", verb)) in spec.OPERATIONS, (method, path)
    # the body padlab sends is inside the documented create body (the fake also rejects any other field)
    body = re.search(r"body = \{(.*?)\n        \}", source, re.S)
    assert body
    keys = set(re.findall(r'"(\w+)":', body[1]))
    assert set(spec.CREATE_REQUIRED) <= keys <= {*spec.CREATE_REQUIRED, *spec.CREATE_OPTIONAL}
