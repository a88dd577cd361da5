"""The provider registry: each entry names a real provider class and stop actions the box knows."""

from __future__ import annotations

from importlib import import_module

import pytest

from padlab import registry
from padlab.box.autostop.stops import STOPS
from padlab.profiles import Profile


@pytest.mark.parametrize("info", registry.PROVIDERS.values(), ids=registry.NAMES)
def test_each_entry_names_its_class_and_known_stops(info: registry.ProviderInfo) -> None:
    cls = getattr(import_module(info.module), info.cls)
    provider = cls(Profile(name="x", provider=info.name, host="me@192.0.2.1"))
    assert provider.name == info.name and provider.info is info
    assert set(info.stop_actions) <= set(STOPS)
    assert set(registry.CHOOSABLE) <= set(STOPS)
    for refused, _message, fix in info.refusals:
        assert refused not in info.stop_actions and "{name}" in fix
    # Powering off a machine that is billed while off saves nothing: such a provider must not offer it.
    assert not (info.billed_while_off and registry.POWEROFF in info.stop_actions)


def test_registry_imports_nothing_else_of_padlab() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(registry))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] == "padlab"]


@pytest.mark.parametrize("name", registry.CLOUDS)
def test_each_cloud_has_what_login_and_init_need(name: str) -> None:
    from padlab.providers.cloud import CloudProvider

    info = registry.get(name)
    module = import_module(info.module)
    assert issubclass(getattr(module, info.cls), CloudProvider) and callable(module.verify_key)
    assert info.manages_power and info.default_user
