"""AWS provider against moto in server mode, through boto3's normal AWS_ENDPOINT_URL override."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from padlab import state
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.aws import STATES, TAG, AwsProvider
from tests.providers.moto_ec2 import lingering_termination

REGION = "us-east-1"
# moto ships this public AMI; a name pattern exercises the same lookup as the default DLAMI family.
IMAGE = "Deep Learning AMI Ubuntu*"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, home: Path, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # Resetting every region's backend (the catalog test loads them all) can take seconds on a loaded machine.
    httpx.post(f"{moto_url}/moto-api/reset", timeout=120)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPADLABTEST000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "padlab-test-secret-do-not-log")
    return moto_url


def make(name: str = "gpu", **options: object) -> AwsProvider:
    opts = {"region": REGION, "image": IMAGE, "machine_type": "g4dn.xlarge", "disk_size": 60, **options}
    return AwsProvider(Profile(name=name, provider="aws", port=8443, options=opts).validate())


def ec2(url: str):  # noqa: ANN201
    return boto3.client("ec2", region_name=REGION, endpoint_url=url)


def live_instances(url: str) -> list[dict]:
    pages = ec2(url).describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def test_create_stop_start_gets_a_new_address(aws: str) -> None:
    provider = make()
    first = provider.start_machine(print)
    assert first.state == "running" and first.host
    [instance] = live_instances(aws)
    assert {"Key": TAG, "Value": "gpu"} in instance["Tags"]
    assert instance["KeyName"].startswith("padlab-")
    attr = ec2(aws).describe_instance_attribute(
        InstanceId=first.id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    assert first.price_per_hour == 0.526 and "bundled table" in first.price_source
    assert first.billed_while_down == "EBS disk 60 GB × $0.08/GB-month ≈ $4.80/month"
    assert first.down_usd_per_hour == pytest.approx(4.80 / 730)

    stopped = make().stop(print)
    assert stopped.state == "off" and stopped.host is None
    second = make().start_machine(print)
    assert second.id == first.id and second.host and second.host != first.host
    assert len(live_instances(aws)) == 1


def test_security_group_has_exactly_the_expected_rules(aws: str) -> None:
    make(allow_from="203.0.113.7/32").start_machine(print)
    [group] = ec2(aws).describe_security_groups(GroupNames=["padlab-gpu"])["SecurityGroups"]
    rules = {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    }
    assert rules == {
        ("tcp", 22, 22, "203.0.113.7/32"),
        ("tcp", 8443, 8443, "203.0.113.7/32"),
        ("udp", 60001, 60010, "203.0.113.7/32"),
        ("tcp", 80, 80, "0.0.0.0/0"),  # http-01 for the box's public certificate (--tls auto)
    }
    # Someone opens a port by hand and the user's address changes: the next start puts it right.
    ec2(aws).authorize_security_group_ingress(
        GroupId=group["GroupId"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    make(allow_from="198.51.100.0/24").stop(print)
    make(allow_from="198.51.100.0/24").start_machine(print)
    [group] = ec2(aws).describe_security_groups(GroupNames=["padlab-gpu"])["SecurityGroups"]
    cidrs = {(p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p["IpRanges"]}
    assert cidrs == {
        (22, "198.51.100.0/24"),
        (8443, "198.51.100.0/24"),
        (60001, "198.51.100.0/24"),
        (80, "0.0.0.0/0"),
    }


def test_with_padlabs_ca_chosen_port_80_stays_closed(aws: str) -> None:
    provider = make(allow_from="203.0.113.7/32")
    provider.profile.tls = "padlab-ca"
    provider.start_machine(print)
    [group] = ec2(aws).describe_security_groups(GroupNames=["padlab-gpu"])["SecurityGroups"]
    assert 80 not in {p["FromPort"] for p in group["IpPermissions"]}


def test_retried_create_reuses_its_client_token(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while run_instances is in flight: the next up sends the same ClientToken."""
    tokens: list[str] = []
    provider = make()
    real_call = AwsProvider.call

    def interrupted(self: AwsProvider, operation: str, **kwargs: object) -> object:
        if operation == "run_instances":
            tokens.append(str(kwargs["ClientToken"]))
            if len(tokens) == 1:
                raise KeyboardInterrupt
        return real_call(self, operation, **kwargs)

    monkeypatch.setattr(AwsProvider, "call", interrupted)
    with pytest.raises(KeyboardInterrupt):
        provider.start_machine(print)
    assert state.load("gpu")["cloud"]["create_attempt"]
    make().start_machine(print)
    assert len(tokens) == 2 and tokens[0] == tokens[1] and tokens[0].startswith("padlab-gpu-")
    assert "create_attempt" not in state.load("gpu")["cloud"]


def test_an_instance_made_elsewhere_with_the_tag_is_adopted(aws: str) -> None:
    image = ec2(aws).describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [IMAGE]}])[
        "Images"
    ][0]
    ec2(aws).run_instances(
        ImageId=image["ImageId"],
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": TAG, "Value": "gpu"}]}],
    )
    make().start_machine(print)
    assert len(live_instances(aws)) == 1


def test_bad_credentials_give_one_clear_line(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    with pytest.raises(PadlabError) as err:
        make().describe()
    message = str(err.value)
    assert "AWS credentials from the boto3 credential chain (env) was rejected" in message
    assert "padlab-test-secret-do-not-log" not in message and "AKIAPADLABTEST000001" not in message


def test_missing_credentials_say_where_padlab_looked(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(
        PadlabError, match=r"no AWS credentials found \(looked in \$AWS_ACCESS_KEY_ID.*credentials/aws"
    ):
        make().describe()


def test_padlab_login_pair_is_used(aws: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from padlab.providers import credentials

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    path = credentials.store("aws", "AKIASTORED0000000001\nstored-secret")
    assert path.stat().st_mode & 0o777 == 0o600
    assert make().describe().state == "missing"


def test_unknown_ami_pattern_is_explained(aws: str) -> None:
    with pytest.raises(PadlabError, match="no AMI matches 'No Such AMI\\*'.*--image ami-"):
        make(image="No Such AMI*").start_machine(print)


def test_destroy_terminates_and_removes_the_group(aws: str) -> None:
    make().start_machine(print)
    make().destroy(print)
    assert live_instances(aws) == []
    assert (
        ec2(aws).describe_security_groups(Filters=[{"Name": "group-name", "Values": ["padlab-gpu"]}])[
            "SecurityGroups"
        ]
        == []
    )


# -- what botocore's EC2 model says, that moto's instant termination hid ----------------------------


def groups(url: str) -> list[dict]:
    found = ec2(url).describe_security_groups(Filters=[{"Name": "group-name", "Values": ["padlab-gpu"]}])
    return found["SecurityGroups"]


def test_the_state_table_has_every_instance_state_of_botocores_ec2_model() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("ec2")
    assert set(STATES) == set(model.shape_for("InstanceStateName").enum)


def test_destroy_waits_out_shutting_down_before_deleting_the_group(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make().start_machine(print)
    shutting = lingering_termination(monkeypatch, requests=4)
    lines: list[str] = []
    make().destroy(lines.append)
    assert shutting == {} and groups(aws) == []
    assert any("shutting-down" in line for line in lines)


def test_a_destroy_run_again_deletes_the_group_a_failed_one_left(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = make().start_machine(print)
    lingering_termination(monkeypatch, requests=3)
    ec2(aws).terminate_instances(InstanceIds=[machine.id])  # the first destroy got this far
    lines: list[str] = []
    make().destroy(lines.append)  # the machine is gone; its group is not
    assert groups(aws) == []
    assert any("still shutting down" in line for line in lines)


def test_an_ecdsa_key_is_never_offered_to_aws(aws: str, ssh_key: Path) -> None:
    """ImportKeyPair takes RSA and ED25519 only (botocore: ImportKeyPair's documentation, KeyType)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    ecdsa = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (ssh_key.parent / "id_ecdsa.pub").write_bytes(ecdsa + b" me@laptop\n")
    (ssh_key.parent / "id_ecdsa").write_text("private\n")
    ssh_key.unlink()  # only the ECDSA key is left in ~/.ssh
    with pytest.raises(PadlabError, match="no ssh public key") as err:
        make().start_machine(print)
    assert "id_ecdsa" not in str(err.value) and "ssh-keygen -t ed25519" in err.value.fix
    identity = str(ssh_key.parent / "id_ecdsa")
    named = AwsProvider(
        Profile(
            name="gpu",
            provider="aws",
            port=8443,
            identity=identity,
            options={"region": REGION, "image": IMAGE},
        ).validate()
    )
    with pytest.raises(PadlabError, match="only RSA and ED25519 .* is ecdsa-sha2-nistp256") as err:
        named.start_machine(print)
    assert "--identity" in err.value.fix
    assert ec2(aws).describe_key_pairs()["KeyPairs"] == [] and live_instances(aws) == []


def test_the_documented_iam_policy_allows_exactly_the_ec2_calls_padlab_makes() -> None:
    import json
    import re

    import botocore.session

    import padlab.providers.aws as module

    model = botocore.session.get_session().get_service_model("ec2")
    source = Path(module.__file__).read_text()
    called = {
        "".join(part.title() for part in name.split("_"))
        for name in re.findall(r'call\(\s*"([a-z_]+)"', source)
    }
    assert called and called <= set(model.operation_names)
    docs = (Path(module.__file__).parents[3] / "docs" / "providers.md").read_text()
    [policy] = [
        json.loads(block) for block in re.findall(r"```json\n(.*?)```", docs, re.S) if "ec2:" in block
    ]
    allowed = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        allowed |= {actions} if isinstance(actions, str) else set(actions)
    assert allowed == {f"ec2:{name}" for name in called} | {"ec2:CreateTags"}


# -- the panel's list: EC2's own ---------------------------------------------------------------------


def test_the_catalog_is_ec2s_own_gpu_types_and_the_regions_offering_each(aws: str) -> None:
    """DescribeInstanceTypes (x86_64, NVIDIA GPUs) and, per region of the account, the offerings:
    not padlab's table of seven types."""
    from padlab import onboard
    from padlab.providers.aws import CATALOG_SOURCE

    cat = onboard.catalog("aws", live=True)
    assert cat["live_error"] is None and cat["price_source"] == CATALOG_SOURCE
    types = {m["name"]: m for m in cat["machine_types"]}
    assert cat["machine_types"][0]["name"] == "g4dn.xlarge"  # the default first
    assert {"g4dn.12xlarge", "p5.48xlarge", "g6.xlarge"} <= set(types)  # beyond the table
    assert not any(name.startswith(("g4ad.", "g5g.", "c5.", "inf")) for name in types)  # AMD, ARM, no GPU
    assert (
        types["g4dn.xlarge"]["price_per_hour"] == 0.526 and types["g4dn.12xlarge"]["price_per_hour"] is None
    )
    regions = [r["RegionName"] for r in ec2(aws).describe_regions()["Regions"]]
    assert "us-east-1" in cat["regions"] and set(cat["regions"]) <= set(regions)  # those offering any
    for name in ("g6.xlarge", "p5.48xlarge"):
        offered = [
            region
            for region in sorted(regions)
            if boto3.client("ec2", region_name=region, endpoint_url=aws).describe_instance_type_offerings(
                LocationType="region", Filters=[{"Name": "instance-type", "Values": [name]}]
            )["InstanceTypeOfferings"]
        ]
        assert types[name]["regions"] == offered and 0 < len(offered) < len(regions), name


def test_the_catalog_falls_back_to_padlabs_table_in_one_line_when_ec2_refuses(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings

    from padlab import onboard

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    cat = onboard.catalog("aws", live=True)
    assert cat["live_error"].startswith("AWS EC2's own list could not be read (")
    assert "padlab-test-secret-do-not-log" not in cat["live_error"]
    assert [m["name"] for m in cat["machine_types"]][:2] == ["g4dn.xlarge", "g4dn.2xlarge"]
    assert cat["price_source"] == "bundled table, approximate 2025 list price"
    assert cat["regions"][0] == "us-east-1"  # padlab's list
