"""AWS EC2 through boto3: one tagged instance per profile, stopped (not terminated) by `down`.

A stopped instance bills only its EBS volume; its public IPv4 is released and a
new one comes with every start, so the address is re-read each time. Creation
is idempotent twice over: the profile's lock plus a lookup by tag, and a
``ClientToken`` derived from the profile and a create-attempt id kept in state,
so a retried ``run_instances`` returns the instance the first one made.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable

from padlab import acme
from padlab.box.request import MOSH_PORTS
from padlab.errors import PadlabError
from padlab.providers import cloud, credentials, prices, retry
from padlab.providers.base import Machine, Progress
from padlab.providers.cloud import MISSING, OFF, RUNNING, STARTING, STOPPING, CloudProvider

TAG = "padlab-profile"
DEFAULT_TYPE = "g4dn.xlarge"
DEFAULT_DISK_GB = 100
# The Deep Learning Base AMI (NVIDIA driver, CUDA, Docker) on Ubuntu 22.04; newest wins.
DEFAULT_AMI = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
LIVE = ("pending", "running", "stopping", "stopped")
# Every InstanceStateName of botocore's EC2 service model (a test keeps them equal). An instance
# shutting down is on its way to terminated: it can never start again, but it still holds its
# security group until it is terminated.
STATES = {
    "pending": STARTING,
    "running": RUNNING,
    "stopping": STOPPING,
    "stopped": OFF,
    "shutting-down": MISSING,
    "terminated": MISSING,
}
# What ImportKeyPair accepts (botocore's ImportKeyPair documentation and its KeyType enum: rsa, ed25519).
KEY_TYPES = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}
BAD_CREDENTIALS = {
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "RequestExpired",
    "InvalidAccessKeyId",
}
# The panel's list: EC2's accelerated-computing families with GPUs are named G and P; of those, padlab
# offers the x86_64 ones with NVIDIA GPUs (the default AMI is NVIDIA's driver on x86_64 Ubuntu).
GPU_TYPE_PATTERNS = ("g*", "p*")
CATALOG_SOURCE = (
    f"{prices.TABLE_NOTE}; instance types and regions from the EC2 API "
    "(DescribeInstanceTypes, DescribeInstanceTypeOfferings)"
)
# DescribeInstanceTypes works in every region; us-east-1 is one no account can turn off.
CATALOG_HOME = "us-east-1"
CHAIN_PLACES = (
    "$AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY",
    "$AWS_PROFILE",
    "~/.aws/credentials",
    "~/.aws/config (incl. SSO)",
    "instance metadata",
)


class AwsProvider(CloudProvider):
    name = "aws"

    def __init__(self, profile: Any) -> None:
        super().__init__(profile)
        self._ec2: Any = None
        self._session: Any = None
        self._config: Any = None
        self._source = "the boto3 credential chain"

    # -- client ------------------------------------------------------------------------

    @property
    def ec2(self) -> Any:
        if self._ec2 is None:
            self._ec2 = self._client()
        return self._ec2

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        explicit = any(os.environ.get(n) for n in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"))
        stored = None if explicit else credentials.read_stored("aws")
        kwargs: dict[str, Any] = {}
        if stored:
            key_id, _, secret = stored.value.partition("\n")
            kwargs = {"aws_access_key_id": key_id.strip(), "aws_secret_access_key": secret.strip()}
            self._source = stored.source
        session = boto3.Session(region_name=self.options.get("region"), **kwargs)
        found = session.get_credentials()
        if found is None:
            places = [*CHAIN_PLACES, str(credentials.stored_path("aws"))]
            raise PadlabError(
                f"no AWS credentials found (looked in {', '.join(places)})",
                "run `padlab login aws`, `aws configure`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        if not stored:
            self._source = f"the boto3 credential chain ({found.method})"
        if not session.region_name:
            raise PadlabError(
                "no AWS region chosen",
                f"padlab init {self.profile.name} --provider aws --region us-east-1 --force, or set AWS_REGION",
            )
        config = Config(retries={"mode": "standard", "max_attempts": retry.RETRY_ATTEMPTS + 2})
        self._session, self._config = session, config
        return session.client("ec2", endpoint_url=self.options.get("api_url"), config=config)

    def in_region(self, region: str) -> AwsProvider:
        """The same credentials in another region, on this provider's boto3 session (its credentials
        and loaded EC2 model): a new session per region costs seconds. Made here, used anywhere."""
        self.ec2  # noqa: B018 - makes the session
        other = AwsProvider(self.profile)
        other._source = self._source
        other._ec2 = self._session.client(
            "ec2", region_name=region, endpoint_url=self.options.get("api_url"), config=self._config
        )
        return other

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One EC2 call; boto3 retries throttling and 5xx, padlab turns the rest into one line."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return getattr(self.ec2, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", "")
            if code in BAD_CREDENTIALS:
                raise credentials.rejected(
                    credentials.Secret("", self._source), "AWS credentials", "aws"
                ) from None
            if code == "UnauthorizedOperation":
                raise PadlabError(
                    f"the AWS credentials from {self._source} may not call ec2:{_action(operation)}",
                    "grant that permission to the IAM user or role padlab uses",
                ) from None
            raise AwsError(code, f"AWS refused {_action(operation)}: {code}: {message}") from None
        except EndpointConnectionError as exc:
            raise PadlabError(
                f"cannot reach AWS at {exc.kwargs.get('endpoint_url')}",
                "check the network, the region, and AWS_ENDPOINT_URL if it is set",
            ) from None
        except BotoCoreError as exc:
            raise PadlabError(f"AWS: {exc}", "check the AWS settings and try again") from None

    # -- finding -------------------------------------------------------------------------

    def _search(self) -> dict[str, Any] | None:
        found = self._instances(
            Filters=[
                {"Name": f"tag:{TAG}", "Values": [self.profile.name]},
                {"Name": "instance-state-name", "Values": list(LIVE)},
            ]
        )
        if len(found) > 1:
            ids = ", ".join(i["InstanceId"] for i in found)
            raise PadlabError(
                f"several EC2 instances are tagged {TAG}={self.profile.name} ({ids})",
                f"terminate the extra ones, or attach one with --machine-id: padlab init {self.profile.name} ... --force",
            )
        return found[0] if found else None

    def _get(self, instance_id: str) -> dict[str, Any] | None:
        try:
            found = self._instances(InstanceIds=[instance_id])
        except AwsError as exc:
            if exc.code.startswith("InvalidInstanceID"):
                return None
            raise
        live = [i for i in found if i["State"]["Name"] in LIVE]
        return live[0] if live else None

    def describe(self) -> Machine:
        """The machine; with none, padlab's security group if a destroy left it behind."""
        machine = super().describe()
        if machine.state == MISSING:
            groups = [g["GroupId"] for g in self._groups()]
            if groups:
                machine.extra["leftovers"] = groups
        return machine

    def _groups(self) -> list[dict[str, Any]]:
        return list(
            self.call(
                "describe_security_groups", Filters=[{"Name": "group-name", "Values": [self.resource_name()]}]
            )["SecurityGroups"]
        )

    def _instances(self, **kwargs: Any) -> list[dict[str, Any]]:
        out = []
        token = None
        while True:
            page = self.call("describe_instances", **kwargs, **({"NextToken": token} if token else {}))
            out += [i for r in page.get("Reservations", []) for i in r.get("Instances", [])]
            token = page.get("NextToken")
            if not token:
                return out

    def _machine(self, raw: dict[str, Any]) -> Machine:
        provider_state = raw["State"]["Name"]
        mapped = STATES.get(provider_state, MISSING)
        price, source = prices.hourly("aws", raw.get("InstanceType"), self.options.get("price"), None, "")
        disk_gb = self._disk_gb(raw)
        launched = raw.get("LaunchTime")
        return Machine(
            state=mapped,
            host=raw.get("PublicIpAddress") if mapped == RUNNING else None,
            id=raw["InstanceId"],
            price_per_hour=price,
            price_source=source,
            billed_while_down=f"EBS disk {prices.per_month(disk_gb, prices.EBS_GP3_GB_MONTH)}"
            if disk_gb
            else None,
            down_usd_per_hour=prices.hourly_from_month(disk_gb * prices.EBS_GP3_GB_MONTH)
            if disk_gb
            else None,
            started_at=self.uptime_start(mapped, launched.timestamp() if launched else None),
            extra={
                "provider_state": provider_state,
                "region": self.ec2.meta.region_name,
                "machine_type": raw.get("InstanceType"),
                "image": raw.get("ImageId"),
            },
        )

    def _disk_gb(self, raw: dict[str, Any]) -> float:
        ids = [m["Ebs"]["VolumeId"] for m in raw.get("BlockDeviceMappings", []) if "Ebs" in m]
        if not ids:
            return 0
        volumes = self.call("describe_volumes", VolumeIds=ids).get("Volumes", [])
        return float(sum(v.get("Size", 0) for v in volumes))

    # -- creating ------------------------------------------------------------------------

    def _create(self, progress: Progress) -> Machine:
        progress("importing your ssh key and opening ssh, Jupyter and mosh in a security group")
        key_name = self._key_pair()
        group_id = self._security_group()
        image = self._image()
        token = f"padlab-{self.profile.name}-{self.attempt_id()}"[:64]
        tags = [{"Key": TAG, "Value": self.profile.name}, {"Key": "Name", "Value": self.resource_name()}]
        kwargs: dict[str, Any] = {
            "ImageId": image["ImageId"],
            "InstanceType": self.options.get("machine_type") or DEFAULT_TYPE,
            "MinCount": 1,
            "MaxCount": 1,
            "KeyName": key_name,
            "SecurityGroupIds": [group_id],
            "InstanceInitiatedShutdownBehavior": "stop",
            "ClientToken": token,
            "BlockDeviceMappings": [
                {
                    "DeviceName": image.get("RootDeviceName") or "/dev/sda1",
                    "Ebs": {
                        "VolumeSize": int(self.options.get("disk_size") or DEFAULT_DISK_GB),
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        }
        if self.options.get("subnet"):
            kwargs["SubnetId"] = self.options["subnet"]
        progress(f"launching a {kwargs['InstanceType']} from {image['ImageId']}")
        reservation = self.call("run_instances", **kwargs)
        instance = reservation["Instances"][0]
        self.remember(machine_id=instance["InstanceId"])
        return self._machine(instance)

    def _key_pair(self) -> str:
        """Import the user's public key once, named by its content, so every profile can share it."""
        text, path = cloud.public_key(self.profile, kinds=tuple(KEY_TYPES.values()))
        kind = text.split()[0]
        if kind not in KEY_TYPES:
            raise PadlabError(
                f"AWS EC2 imports only RSA and ED25519 ssh keys, and {path} is {kind}",
                f"make one with `ssh-keygen -t ed25519`, then `padlab init {self.profile.name} "
                "--identity ~/.ssh/id_ed25519 --force`",
            )
        material = " ".join(text.split()[:2])
        name = "padlab-" + hashlib.sha256(material.encode()).hexdigest()[:16]
        try:
            self.call("describe_key_pairs", KeyNames=[name])
        except AwsError as exc:
            if exc.code != "InvalidKeyPair.NotFound":
                raise
            self._tolerate(
                "InvalidKeyPair.Duplicate",
                lambda: self.call("import_key_pair", KeyName=name, PublicKeyMaterial=material.encode()),
            )
        return name

    def _security_group(self) -> str:
        """``padlab-PROFILE``: exactly ssh, the Jupyter port and mosh, from ``allow_from`` (default anywhere)."""
        name = self.resource_name()
        vpc = self._vpc()
        filters = [{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}]
        groups = self.call("describe_security_groups", Filters=filters)["SecurityGroups"]
        if groups:
            group = groups[0]
        else:
            self._tolerate(
                "InvalidGroup.Duplicate",
                lambda: self.call(
                    "create_security_group",
                    GroupName=name,
                    Description=f"padlab workstation {self.profile.name}: ssh, Jupyter, mosh",
                    VpcId=vpc,
                    TagSpecifications=[
                        {"ResourceType": "security-group", "Tags": [{"Key": TAG, "Value": self.profile.name}]}
                    ],
                ),
            )
            group = self.call("describe_security_groups", Filters=filters)["SecurityGroups"][0]
        self._reconcile_rules(group)
        return group["GroupId"]

    def expected_rules(self) -> set[tuple[str, int, int, str]]:
        cidr = str(self.options.get("allow_from") or "0.0.0.0/0")
        if cidr == "auto":
            cidr = _my_address()
        port = int(self.profile.port)
        rules = {("tcp", 22, 22, cidr), ("tcp", port, port, cidr), ("udp", *MOSH_PORTS, cidr)}
        challenge = acme.challenge_port(self.profile)
        if challenge:
            rules.add(("tcp", challenge, challenge, "0.0.0.0/0"))
        return rules

    def _reconcile_rules(self, group: dict[str, Any]) -> None:
        """Revoke every permission that is not exactly one of ours, then add the ones missing."""
        want = self.expected_rules()
        keep, extra = set(), []
        for perm in group.get("IpPermissions", []):
            rules = _rules_of(perm)
            foreign = perm.get("UserIdGroupPairs") or perm.get("PrefixListIds")
            if foreign or not rules or rules - want:
                extra.append(perm)
            else:
                keep |= rules
        if extra:
            self.call("revoke_security_group_ingress", GroupId=group["GroupId"], IpPermissions=extra)
        missing = want - keep
        if missing:
            self.call(
                "authorize_security_group_ingress",
                GroupId=group["GroupId"],
                IpPermissions=[_permission(*rule) for rule in sorted(missing)],
            )

    def _vpc(self) -> str:
        if self.options.get("subnet"):
            subnets = self.call("describe_subnets", SubnetIds=[self.options["subnet"]])["Subnets"]
            return subnets[0]["VpcId"]
        vpcs = self.call("describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise PadlabError(
                f"the region {self.ec2.meta.region_name} has no default VPC",
                f"name a public subnet: padlab init {self.profile.name} --provider aws --subnet subnet-... --force",
            )
        return vpcs[0]["VpcId"]

    def _image(self) -> dict[str, Any]:
        """The profile's AMI id, or the newest AMI whose name matches its pattern (default: the DLAMI)."""
        wanted = str(self.options.get("image") or DEFAULT_AMI)
        if wanted.startswith("ami-"):
            images = self.call("describe_images", ImageIds=[wanted])["Images"]
        else:
            owner = str(self.options.get("image_owner") or "amazon")
            images = self.call(
                "describe_images",
                Owners=[owner],
                Filters=[{"Name": "name", "Values": [wanted]}, {"Name": "state", "Values": ["available"]}],
            )["Images"]
        if not images:
            raise PadlabError(
                f"no AMI matches {wanted!r} in {self.ec2.meta.region_name}",
                f"pick one: padlab init {self.profile.name} --provider aws --image ami-... --force",
            )
        return max(images, key=lambda i: i.get("CreationDate", ""))

    @staticmethod
    def _tolerate(code: str, fn: Callable[[], Any]) -> None:
        """Run fn; another padlab racing us to create the same thing is fine."""
        try:
            fn()
        except AwsError as exc:
            if exc.code != code:
                raise

    # -- power ---------------------------------------------------------------------------

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        self._security_group()  # the port or allow_from may have changed since the last up
        self.call("start_instances", InstanceIds=[machine.id])

    def _power_off(self, machine: Machine, progress: Progress) -> None:
        self.call("stop_instances", InstanceIds=[machine.id])

    def _delete(self, machine: Machine, progress: Progress) -> None:
        if machine.id:
            self.call("terminate_instances", InstanceIds=[machine.id])

            def gone() -> tuple[bool, str]:
                # shutting-down is not gone: the instance holds its security group until terminated.
                now = self._state_of(str(machine.id))
                return now in (None, "terminated"), now or "terminated"

            retry.wait_for(
                gone,
                "waiting for the instance to terminate",
                cloud.STOP_TIMEOUT,
                fix="check the EC2 console, then run `padlab destroy` again",
                progress=progress,
            )
        for group in self._groups():
            self._delete_group(group["GroupId"], progress)

    def _state_of(self, instance_id: str) -> str | None:
        """The instance's InstanceStateName, whatever it is; None when EC2 no longer knows it."""
        try:
            found = self._instances(InstanceIds=[instance_id])
        except AwsError as exc:
            if exc.code.startswith("InvalidInstanceID"):
                return None
            raise
        return str(found[0]["State"]["Name"]) if found else None

    def _delete_group(self, group_id: str, progress: Progress) -> None:
        """Delete the group, waiting while an instance still shutting down holds it (DependencyViolation)."""

        def deleted() -> tuple[bool, str]:
            try:
                self.call("delete_security_group", GroupId=group_id)
            except AwsError as exc:
                if exc.code == "InvalidGroup.NotFound":
                    return True, "deleted"
                if exc.code != "DependencyViolation":
                    raise
                return False, "in use by an instance that is still shutting down"
            return True, "deleted"

        retry.wait_for(
            deleted,
            f"waiting to delete security group {group_id}",
            cloud.STOP_TIMEOUT,
            fix="check the EC2 console for instances in the group, then run `padlab destroy` again",
            progress=progress,
        )


class AwsError(PadlabError):
    """An EC2 refusal, with its code so callers can tell 'not found' from real trouble."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(
            message, "check the profile's AWS settings (padlab init NAME --force ...) and try again"
        )
        self.code = code


def _rules_of(perm: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    key = (perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"))
    v4 = {(*key, r["CidrIp"]) for r in perm.get("IpRanges", [])}
    return v4 | {(*key, r["CidrIpv6"]) for r in perm.get("Ipv6Ranges", [])}


def _permission(proto: str, lo: int, hi: int, cidr: str) -> dict[str, Any]:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": cidr}]} if ":" in cidr else {"IpRanges": [{"CidrIp": cidr}]}
    return {"IpProtocol": proto, "FromPort": lo, "ToPort": hi, **ranges}


def _my_address() -> str:
    """This client's public IPv4 as AWS sees it, for ``--allow-from auto``."""
    import httpx

    try:
        address = httpx.get("https://checkip.amazonaws.com", timeout=10).text.strip()
    except httpx.HTTPError as exc:
        raise PadlabError(
            f"cannot find this machine's public address for --allow-from auto ({type(exc).__name__})",
            "give a CIDR instead: padlab init NAME --allow-from 203.0.113.7/32 --force",
        ) from None
    return f"{address}/32"


def _action(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _pages(fetch: Callable[[dict[str, Any]], Any], key: str) -> list[dict[str, Any]]:
    """Every page of a Describe call: ``fetch`` makes it (through ``call``, so a refusal is one
    line) with the next page's NextToken, if any."""
    found: list[dict[str, Any]] = []
    more: dict[str, Any] = {}
    while True:
        page = fetch(more)
        found += page.get(key) or []
        if not page.get("NextToken"):
            return found
        more = {"NextToken": page["NextToken"]}


def catalog(api_url: str | None = None) -> dict[str, Any]:
    """EC2's own list, for the panel's new-workstation form: the x86_64 instance types with NVIDIA GPUs
    (DescribeInstanceTypes) and, for each, the account's regions that offer it (DescribeRegions, then
    DescribeInstanceTypeOfferings in each). Prices are padlab's table: EC2 states none."""
    from concurrent.futures import ThreadPoolExecutor

    from padlab.profiles import Profile

    def provider(region: str) -> AwsProvider:
        return AwsProvider(
            Profile(name="catalog", provider="aws", options={"region": region, "api_url": api_url})
        )

    home = provider(CATALOG_HOME)
    wanted = [
        {"Name": "instance-type", "Values": list(GPU_TYPE_PATTERNS)},
        {"Name": "processor-info.supported-architecture", "Values": ["x86_64"]},
    ]
    kinds = _pages(
        lambda more: home.call("describe_instance_types", Filters=wanted, MaxResults=100, **more),
        "InstanceTypes",
    )
    names = sorted(
        k["InstanceType"]
        for k in kinds
        if any(g.get("Manufacturer") == "NVIDIA" for g in (k.get("GpuInfo") or {}).get("Gpus") or [])
    )
    regions = sorted(r["RegionName"] for r in home.call("describe_regions").get("Regions") or [])

    clients = {region: home.in_region(region) for region in regions} if names else {}

    def offered(region: str) -> set[str]:
        there = clients[region]
        found = _pages(
            lambda more: there.call(
                "describe_instance_type_offerings",
                LocationType="region",
                Filters=[{"Name": "instance-type", "Values": names}],
                MaxResults=1000,
                **more,
            ),
            "InstanceTypeOfferings",
        )
        return {o["InstanceType"] for o in found}

    with ThreadPoolExecutor(max_workers=8) as pool:
        where = dict(zip(regions, pool.map(offered, regions))) if names else {}
    table = prices.HOURLY.get("aws", {})
    return {
        "machine_types": [
            {
                "name": name,
                "price_per_hour": table.get(name),
                "regions": [r for r in regions if name in where[r]],
            }
            for name in names
            if any(name in where[r] for r in regions)
        ],
        "source": CATALOG_SOURCE,
    }


def verify_key(value: str, api_url: str | None = None) -> None:
    """``sts get-caller-identity`` with the pair, so `padlab login` stores only keys that work."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    key_id, _, secret = value.partition("\n")
    session = boto3.Session(aws_access_key_id=key_id.strip(), aws_secret_access_key=secret.strip())
    try:
        session.client(
            "sts", region_name=session.region_name or "us-east-1", endpoint_url=api_url
        ).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise PadlabError(
            f"AWS did not accept the access key you entered ({type(exc).__name__})",
            "check the access key id and secret, then run `padlab login aws` again",
        ) from None
