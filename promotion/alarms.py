"""The state of an endpoint's alarms, as the promotion gate and the endpoint check read it."""

from __future__ import annotations

from typing import Any

IN_ALARM = "ALARM"


def alarm_states(cloudwatch: Any, name_prefix: str) -> dict[str, str]:
    """Alarm name -> state, for every alarm whose name starts with ``name_prefix``."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=name_prefix)
    return {
        alarm["AlarmName"]: alarm["StateValue"]
        for page in pages
        for alarm in page.get("MetricAlarms", [])
    }


def firing(states: dict[str, str]) -> list[str]:
    return sorted(name for name, state in states.items() if state == IN_ALARM)
