"""After ``pulumi up``: is the endpoint really running the configuration Pulumi asked for?

A blue/green update that trips a rollback alarm leaves the endpoint InService on the *old*
configuration. The provider reports that as a failed update at best, and as drift to fix
on the next run at worst, so CI checks the endpoint itself.
"""

from __future__ import annotations

from typing import Any

from infra.config.settings import Settings
from infra.naming import endpoint_name
from promotion.alarms import alarm_states, firing

IN_SERVICE = "InService"


class EndpointCheckError(Exception):
    """The endpoint is missing, not in service, or serving another configuration."""


def verify(sagemaker: Any, cloudwatch: Any, settings: Settings, expected_config: str) -> str:
    name = endpoint_name(settings.prefix)
    try:
        described = sagemaker.describe_endpoint(EndpointName=name)
    except sagemaker.exceptions.ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise EndpointCheckError(f"cannot describe endpoint {name}: {message}") from None
    status = described.get("EndpointStatus", "")
    running = described.get("EndpointConfigName", "")
    if status != IN_SERVICE:
        reason = described.get("FailureReason")
        raise EndpointCheckError(
            f"{name} is {status}, not {IN_SERVICE}" + (f": {reason}" if reason else "")
        )
    if running != expected_config:
        in_alarm = firing(alarm_states(cloudwatch, name))
        hint = (
            f"; in ALARM: {', '.join(in_alarm)}"
            if in_alarm
            else "; no alarm is firing now, so check the endpoint's events"
        )
        raise EndpointCheckError(
            f"{name} runs {running}, not {expected_config}: the update was rolled back" + hint
        )
    return f"{name} is {IN_SERVICE} on {running}"
