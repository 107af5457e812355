"""An AlertRule's condition: the patterns the detection job evaluates and the fields each needs."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import ConfigDict, Field, model_validator

from finlake.contracts.resources import Duration, SpecModel, format_duration

MIN_HISTORY = 3
"""Earlier windows a rolling baseline (return_zscore, volume_surge rolling) needs before it is
trusted: the evaluator never fires with fewer, so lookback must span at least this many windows."""


class ConditionType(StrEnum):
    """What a rule watches for; the ``kind`` of the alert events it emits."""

    PRICE_CROSS = "price_cross"
    PERCENT_MOVE = "percent_move"
    RETURN_ZSCORE = "return_zscore"
    VOLUME_SURGE = "volume_surge"
    GAP = "gap"


class Direction(StrEnum):
    """Which way the price must go."""

    ABOVE = "above"
    BELOW = "below"
    UP = "up"
    DOWN = "down"
    EITHER = "either"


class Baseline(StrEnum):
    """What a volume surge is measured against."""

    ROLLING = "rolling"
    TIME_OF_DAY = "time_of_day"


# Which fields each condition needs, and which directions it accepts: the model validator and the
# CRD's CEL rules are both generated from these two tables.
REQUIRED_FIELDS: dict[ConditionType, tuple[str, ...]] = {
    ConditionType.PRICE_CROSS: ("level", "direction"),
    ConditionType.PERCENT_MOVE: ("percent", "window"),
    ConditionType.RETURN_ZSCORE: ("k", "window", "lookback"),
    ConditionType.VOLUME_SURGE: ("ratio", "window", "lookback"),
    ConditionType.GAP: ("percent",),
}
DIRECTIONS: dict[ConditionType, tuple[Direction, ...]] = {
    ConditionType.PRICE_CROSS: (Direction.ABOVE, Direction.BELOW),
    ConditionType.PERCENT_MOVE: (Direction.UP, Direction.DOWN, Direction.EITHER),
    ConditionType.GAP: (Direction.UP, Direction.DOWN, Direction.EITHER),
}


def _condition_cel() -> list[Any]:
    rules = []
    for kind, fields in REQUIRED_FIELDS.items():
        present = " && ".join(f"has(self.{field})" for field in fields)
        rules.append(
            {
                "rule": f"self.type != '{kind.value}' || ({present})",
                "message": f"{kind.value} needs {', '.join(fields)}",
            }
        )
    for kind, allowed in DIRECTIONS.items():
        values = ", ".join(f"'{d.value}'" for d in allowed)
        rules.append(
            {
                "rule": f"self.type != '{kind.value}' || !has(self.direction) "
                f"|| self.direction in [{values}]",
                "message": f"{kind.value} direction must be one of {', '.join(d for d in allowed)}",
            }
        )
    # lookback > window cannot be written in CEL (its duration() has no "d" unit): the model
    # validator refuses it, and the operator reports it as Degraded.
    return rules


class Condition(SpecModel):
    """What must be true for the rule to fire; which fields apply depends on ``type``."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _condition_cel()})
    type: ConditionType = Field(description="The pattern to detect.")
    direction: Direction | None = Field(
        default=None,
        description="price_cross: above or below; percent_move and gap: up, down or either "
        "(default either).",
    )
    level: float | None = Field(default=None, gt=0, description="price_cross: the price level.")
    percent: float | None = Field(
        default=None, gt=0, le=1000, description="percent_move and gap: the move, in percent."
    )
    window: Duration | None = Field(
        default=None, description="percent_move: the move's span; return_zscore and volume_surge: "
        "the bucket a return or a volume is measured over.",
    )  # fmt: skip
    lookback: Duration | None = Field(
        default=None,
        description="return_zscore and volume_surge: the rolling history the current bucket is "
        "compared with.",
    )
    k: float | None = Field(
        default=None, gt=0, le=100, description="return_zscore: standard deviations."
    )
    ratio: float | None = Field(
        default=None, gt=1, le=1000, description="volume_surge: times the baseline volume."
    )
    baseline: Baseline = Field(
        default=Baseline.ROLLING, description="volume_surge: rolling or time_of_day."
    )

    @model_validator(mode="after")
    def _fields_for_type(self) -> Self:
        missing = [f for f in REQUIRED_FIELDS[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{self.type.value} needs {', '.join(missing)}")
        allowed = DIRECTIONS.get(self.type)
        if self.direction is not None and allowed is not None and self.direction not in allowed:
            names = ", ".join(d.value for d in allowed)
            raise ValueError(f"{self.type.value} direction must be one of {names}")
        if self.direction is not None and allowed is None:
            raise ValueError(f"{self.type.value} takes no direction")
        if self.window is not None and self.window <= timedelta(0):
            raise ValueError("window must be longer than 0s")
        if self.window is not None and self.lookback is not None and self.lookback <= self.window:
            raise ValueError("lookback must be longer than window")
        self._check_rolling_history()
        self._check_reachable_move()
        if self.type is ConditionType.VOLUME_SURGE and self.baseline is Baseline.TIME_OF_DAY:
            # The baseline is the same bar on earlier days: bars must line up from day to day,
            # and the lookback must reach at least one day back, or the rule never fires.
            if self.window is not None and timedelta(days=1) % self.window:
                raise ValueError("baseline time_of_day needs a window that divides a day evenly")
            if self.lookback is not None and self.lookback < timedelta(days=1):
                raise ValueError("baseline time_of_day needs a lookback of at least 1d")
        return self

    def _check_rolling_history(self) -> None:
        rolling = self.type is ConditionType.RETURN_ZSCORE or (
            self.type is ConditionType.VOLUME_SURGE and self.baseline is Baseline.ROLLING
        )
        if not rolling or self.window is None or self.lookback is None:
            return
        # The baseline is the windows starting within lookback before the current one: there
        # are lookback // window of them, and the evaluator needs MIN_HISTORY.
        if self.lookback < MIN_HISTORY * self.window:
            raise ValueError(
                f"{self.type.value} never fires with lookback {format_duration(self.lookback)}: "
                f"it compares the current window with at least {MIN_HISTORY} earlier ones, so "
                f"lookback must be at least {MIN_HISTORY} x window "
                f"({format_duration(MIN_HISTORY * self.window)})"
            )

    def _check_reachable_move(self) -> None:
        # A price stays above 0, so it can fall by less than 100 %.
        if self.direction is Direction.DOWN and self.percent is not None and self.percent >= 100:
            raise ValueError(
                f"{self.type.value} down by {self.percent:g}% never fires: a price cannot fall "
                "100% or more (use a percent below 100)"
            )

    @property
    def effective_direction(self) -> Direction:
        """The direction, with percent_move and gap defaulting to either."""
        return self.direction or Direction.EITHER

    @property
    def threshold(self) -> float:
        """The number a firing's value is compared with, in the condition's unit."""
        value = {
            ConditionType.PRICE_CROSS: self.level,
            ConditionType.PERCENT_MOVE: self.percent,
            ConditionType.RETURN_ZSCORE: self.k,
            ConditionType.VOLUME_SURGE: self.ratio,
            ConditionType.GAP: self.percent,
        }[self.type]
        assert value is not None  # guaranteed by the validator
        return value
