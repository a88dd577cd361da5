"""moto's EC2 made to terminate the way EC2 does: through ``shutting-down``, holding its security group.

moto terminates an instance at once (``terminated`` in the same call), so code that
forgets ``shutting-down`` passes against it. Real EC2 keeps a terminating instance in
``shutting-down`` for a while (botocore's EC2 model: ``InstanceStateName`` has it, and
TerminateInstances' documentation says an instance may stay "in the shutting-down
state"), and while an instance is associated with the group ``DeleteSecurityGroup``
"fails with DependencyViolation" (its documentation in the same model).

moto has no state manager for EC2 instances (``moto.moto_api.state_manager`` covers
other services' models), so this patches moto's backend classes for one test. The
server runs in the test's process (``ThreadedMotoServer``), so the patch reaches it.
The linger is counted in EC2 requests that look at the instance or its group, not in
seconds, so the tests stay exact on a loaded machine.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest


def lingering_termination(monkeypatch: pytest.MonkeyPatch, requests: int = 3) -> dict[str, int]:
    """Terminated instances stay ``shutting-down`` for ``requests`` further describes or group deletes.

    Returns the instances still shutting down (id -> requests left), for assertions.
    """
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend

    real_terminate = Instance.terminate
    real_delete = SecurityGroupBackend.delete_security_group
    real_describe = InstanceBackend.describe_instances
    real_by_ids = InstanceBackend.get_reservations_by_instance_ids
    shutting: dict[str, int] = {}
    instances: dict[str, Instance] = {}

    def terminate(self: Instance) -> Any:
        if self._state.name in ("shutting-down", "terminated"):
            return copy.copy(self._state)
        previous = copy.copy(self._state)
        self._state.name, self._state.code = "shutting-down", 32
        shutting[self.id], instances[self.id] = requests, self
        return previous

    def tick() -> None:
        for instance_id, left in list(shutting.items()):
            if left > 0:
                shutting[instance_id] = left - 1
                continue
            del shutting[instance_id]
            real_terminate(instances.pop(instance_id))

    def describe(self: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        return real_describe(self, *args, **kwargs)

    def by_ids(self: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        return real_by_ids(self, *args, **kwargs)

    def delete_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
        holders = [
            instance_id
            for instance_id in shutting
            if group_id in {group.id for group in instances[instance_id].security_groups}
        ]
        tick()
        if holders:
            raise DependencyViolationError(f"resource {group_id} has a dependent object")
        real_delete(self, name, group_id)

    monkeypatch.setattr(Instance, "terminate", terminate)
    monkeypatch.setattr(InstanceBackend, "describe_instances", describe)
    monkeypatch.setattr(InstanceBackend, "get_reservations_by_instance_ids", by_ids)
    monkeypatch.setattr(SecurityGroupBackend, "delete_security_group", delete_group)
    return shutting
