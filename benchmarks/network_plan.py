"""What VPC mode costs a stack: resources in its plan, offline plan time, idle endpoint cost.

Run with ``.venv/bin/python -m benchmarks.network_plan`` (``--json`` for the results file).
For each stack with a VPC (staging, prod) it plans the stack as its file says (``create``)
and, as baselines in the same run, with ``mlops:network`` replaced by ``existing`` (the
platform's VPC: the same jobs, roles and policies, no network declared) and by ``none``
where the stack allows it (prod refuses to leave the VPC). The variants alternate, each in
a fresh process (imports included, as `mlops plan` pays them), for ``--repeats`` rounds. It
reports each variant's resource count and median plan time, and the interface endpoints'
idle monthly cost from the plan's own endpoints and subnets at AWS's published rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
# The baselines each stack is planned with besides its own network (mode create).
BASELINES = {
    "staging": ("existing", "none"),
    "prod": ("existing",),
}
EXISTING = {
    "mode": "existing",
    "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"],
    "securityGroupIds": ["sg-0c1d2e3f4a5b60718"],
}
# AWS PrivateLink pricing (https://aws.amazon.com/privatelink/pricing/): an interface
# endpoint bills per endpoint per Availability Zone per hour, $0.01 in US East (N. Virginia);
# data processed is billed apart ($0.01/GB for the first PB). Gateway endpoints are free.
USD_PER_ENDPOINT_ZONE_HOUR = 0.01
HOURS_PER_MONTH = 730

# One plan in a fresh process: prints its resource count, its time and the endpoint shape.
_PLAN = """
import json, sys, time
start = time.perf_counter()
from infra.aws_session import offline_environment
import os
os.environ |= offline_environment()
from dataclasses import replace
from pathlib import Path
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
config = load_stack_config(Path(sys.argv[1]), sys.argv[2])
if sys.argv[3] != "create":
    config = replace(config, values={**config.values, "mlops:network": sys.argv[3]})
plan = plan_config(config)
seconds = time.perf_counter() - start
interface = [
    e for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    if e.inputs.get("vpcEndpointType") == "Interface"
]
zones = len(plan.of_type("aws:ec2/subnet:Subnet"))
print(json.dumps({"resources": len(plan.resources), "seconds": seconds,
                  "interface_endpoints": len(interface), "zones": zones}))
"""


@dataclass(frozen=True)
class Variant:
    stack: str
    network: str  # create (as the stack file says), existing or none
    resources: int
    plan_seconds: float  # median
    interface_endpoints: int
    zones: int

    @property
    def idle_usd_per_zone_month(self) -> float:
        return round(self.interface_endpoints * USD_PER_ENDPOINT_ZONE_HOUR * HOURS_PER_MONTH, 2)

    @property
    def idle_usd_per_month(self) -> float:
        return round(self.idle_usd_per_zone_month * self.zones, 2)


def _network(mode: str) -> str:
    if mode == "create":
        return mode
    return json.dumps(EXISTING if mode == "existing" else {"mode": mode})


def _plan(stack: str, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _PLAN, str(REPO), stack, _network(mode)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(stack: str, repeats: int) -> list[Variant]:
    modes = ("create", *BASELINES[stack])
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:  # alternate, so load on the machine hits every variant alike
            runs[mode].append(_plan(stack, mode))
    return [
        Variant(
            stack=stack,
            network=mode,
            resources=int(found[0]["resources"]),
            plan_seconds=statistics.median(r["seconds"] for r in found),
            interface_endpoints=int(found[0]["interface_endpoints"]),
            zones=int(found[0]["zones"]),
        )
        for mode, found in runs.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per stack (default 3)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    console = Console(width=150)
    variants: list[Variant] = []
    for stack in BASELINES:
        with console.status(f"planning {stack} {args.repeats}x per network mode"):
            variants += measure(stack, args.repeats)
    table = Table(title=f"VPC mode, median of {args.repeats} plans each (fresh processes)")
    for column in (
        "stack",
        "network.mode",
        "resources",
        "vs create",
        "plan s",
        "interface endpoints x zones",
        "idle $/zone-month",
        "idle $/month",
    ):
        table.add_column(column)
    created = {v.stack: v for v in variants if v.network == "create"}
    for v in variants:
        table.add_row(
            v.stack,
            v.network,
            str(v.resources),
            f"{v.resources - created[v.stack].resources:+d}" if v.network != "create" else "",
            f"{v.plan_seconds:.1f}",
            f"{v.interface_endpoints} x {v.zones}",
            f"{v.idle_usd_per_zone_month:.2f}",
            f"{v.idle_usd_per_month:.2f}",
        )
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                **asdict(v),
                "idle_usd_per_zone_month": v.idle_usd_per_zone_month,
                "idle_usd_per_month": v.idle_usd_per_month,
            }
            for v in variants
        ]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
