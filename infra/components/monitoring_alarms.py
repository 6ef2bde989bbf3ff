"""How the monitoring jobs' alarms read their metrics: one finding per scheduled run, and
silence over two runs. Plain values, so the windows can be tested without Pulumi."""

from __future__ import annotations

import math
import re
from typing import Any

from infra.config.validators import schedule_period_seconds
from infra.naming import Naming

# CloudWatch: a period is at most a day; periods x period at most 7 days (1 day when the
# period is under an hour).
MAX_PERIOD_SECONDS = 86400
_RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minute|hour|day)s?\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def per_run(
    naming: Naming, metric: str, schedule: str, statistic: str = "Maximum"
) -> dict[str, Any]:
    """A job's finding, one datapoint per scheduled run: the periods between runs carry no
    news, so the alarm keeps its state through them instead of flapping."""
    return {
        "namespace": naming.metrics_namespace,
        "metric_name": metric,
        "dimensions": {"EndpointName": naming.endpoint},
        "statistic": statistic,
        "period": schedule_period_seconds(schedule),
        "evaluation_periods": 1,
        "treat_missing_data": "ignore",
    }


def silent_alarm_window(expression: str) -> tuple[int, int] | None:
    """(period, periods) of an alarm that spans at least two runs of a schedule; None when
    CloudWatch cannot evaluate that long, or a cron() may run less than daily."""
    rate = _RATE.match(expression)
    if rate is not None:
        interval = int(rate["value"]) * _UNIT_SECONDS[rate["unit"]]
    else:
        # cron(minutes hours day-of-month month day-of-week year): at least daily only
        # when no day, month or weekday is singled out.
        fields = expression.removeprefix("cron(").removesuffix(")").split()
        day, month, weekday = fields[2:5] if len(fields) == 6 else ("", "", "")
        if day not in ("*", "?") or month != "*" or weekday not in ("*", "?"):
            return None
        interval = MAX_PERIOD_SECONDS
    period = min(interval, MAX_PERIOD_SECONDS)
    periods = math.ceil(2 * interval / period)
    longest = MAX_PERIOD_SECONDS if period < 3600 else 7 * MAX_PERIOD_SECONDS
    return (period, periods) if period * periods <= longest else None


def duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"
