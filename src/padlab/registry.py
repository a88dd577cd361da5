"""The providers padlab knows, and what each can do: facts that need no provider instance.

``profiles``, ``autostop``, ``card`` and the CLI read these instead of loading a
provider's module (and its cloud's SDK) to ask, or comparing its name. This module
imports nothing else of padlab, so any layer may read it. A new provider is one
entry here plus its module (docs/architecture.md, "Adding a provider").

Stop actions are named as the box program's table names them (padlab/box/autostop/stops.py);
tests/test_registry.py checks that every name here is one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a stop may do, as the box's stop table names them.
SERVICE = "service"  # stop Jupyter only
POWEROFF = "poweroff"  # power the machine off
SNAPSHOT_DELETE = "do-snapshot-destroy"  # DigitalOcean: snapshot the droplet, then delete it
TERMINATE = "lambda-terminate"  # Lambda: terminate the instance (its filesystem stays)
POD_STOP = "runpod-stop"  # RunPod: the API's stop, from the pod with its own key (the volume stays)
# The actions a user may choose with --action / --autostop-action.
CHOOSABLE = (SERVICE, POWEROFF)


@dataclass(frozen=True)
class ProviderInfo:
    """One provider's static facts."""

    name: str
    # Where its Provider class lives, imported only when a profile of this kind is used.
    module: str
    cls: str
    label: str
    # A cloud API: `padlab login`, `padlab destroy`, `up --skip-setup` and init's cloud flags apply.
    cloud: bool = False
    # `down` powers the machine off (else it stops only Jupyter on a machine the user owns).
    manages_power: bool = False
    # A powered-off machine is still billed, so a stop must remove it (autostop never powers it off).
    billed_while_off: bool = False
    # The box is the machine padlab runs on: read in-process, its address can change under it.
    this_machine: bool = False
    # `padlab init` needs --host.
    needs_host: bool = False
    # The login user on the box when the profile names none (None: whatever ssh picks).
    default_user: str | None = None
    # What an autostop stop may do here; the first is the default.
    stop_actions: tuple[str, ...] = (SERVICE, POWEROFF)
    # Why an action outside stop_actions is refused: (action, message, fix), {name} is the profile's.
    refusals: tuple[tuple[str, str, str], ...] = ()
    # The idle limit when the profile sets none: a machine billed while it runs stops by default.
    default_idle: str = "off"
    # What `padlab login` asks for, one line each after the label; stored joined by newlines.
    key_parts: tuple[str, ...] = ("API key",)

    @property
    def default_stop(self) -> str:
        return self.stop_actions[0]


# One hour: long enough for a lunch break or a long read with the notebook closed, short
# enough that a forgotten GPU box costs at most about an hour.
CLOUD_IDLE = "1h"

PROVIDERS: dict[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo(
            "local",
            "padlab.providers.local",
            "LocalProvider",
            "this machine",
            this_machine=True,
            stop_actions=(SERVICE,),
            refusals=(
                (
                    POWEROFF,
                    "the local provider never powers off the machine padlab runs on",
                    "use --action service (stops only Jupyter): padlab autostop {name} --action service",
                ),
            ),
        ),
        ProviderInfo("ssh", "padlab.providers.ssh", "SshProvider", "your ssh machine", needs_host=True),
        ProviderInfo(
            "paperspace",
            "padlab.providers.paperspace",
            "PaperspaceProvider",
            "Paperspace",
            cloud=True,
            manages_power=True,
            default_user="paperspace",
            stop_actions=(POWEROFF, SERVICE),
            default_idle=CLOUD_IDLE,
        ),
        ProviderInfo(
            "aws",
            "padlab.providers.aws",
            "AwsProvider",
            "AWS EC2",
            cloud=True,
            manages_power=True,
            default_user="ubuntu",
            key_parts=("access key id", "secret access key"),
            stop_actions=(POWEROFF, SERVICE),
            default_idle=CLOUD_IDLE,
        ),
        ProviderInfo(
            "digitalocean",
            "padlab.providers.digitalocean",
            "DigitalOceanProvider",
            "DigitalOcean",
            cloud=True,
            manages_power=True,
            billed_while_off=True,
            default_user="root",
            stop_actions=(SNAPSHOT_DELETE, SERVICE),
            refusals=(
                (
                    POWEROFF,
                    "a powered-off droplet is still billed, so autostop never powers one off",
                    "drop --action: autostop snapshots and deletes the droplet (padlab autostop {name} 1h)",
                ),
            ),
            default_idle=CLOUD_IDLE,
        ),
        ProviderInfo(
            "lambda",
            "padlab.providers.lambdacloud",
            "LambdaProvider",
            "Lambda Cloud",
            cloud=True,
            manages_power=True,
            billed_while_off=True,
            default_user="ubuntu",
            stop_actions=(TERMINATE, SERVICE),
            refusals=(
                (
                    POWEROFF,
                    "a powered-off Lambda instance is still billed, so autostop never powers one off",
                    "drop --action: autostop terminates the instance, the filesystem stays (padlab autostop {name} 1h)",
                ),
            ),
            default_idle=CLOUD_IDLE,
        ),
        ProviderInfo(
            "runpod",
            "padlab.providers.runpod",
            "RunPodProvider",
            "RunPod",
            cloud=True,
            manages_power=True,
            default_user="root",
            stop_actions=(POD_STOP, SERVICE),
            refusals=(
                (
                    POWEROFF,
                    "a pod is a container: it cannot power itself off, only RunPod's API stops it",
                    "drop --action: autostop stops the pod with RunPod's API (padlab autostop {name} 1h)",
                ),
            ),
            default_idle=CLOUD_IDLE,
        ),
    )
}
NAMES = tuple(PROVIDERS)
CLOUDS = tuple(name for name, info in PROVIDERS.items() if info.cloud)


def get(name: str) -> ProviderInfo:
    """The entry for a provider name that profiles.validate() has accepted."""
    return PROVIDERS[name]
