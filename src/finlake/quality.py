"""Declarative expectations: a named SQL condition per rule and what to do with failing rows."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ExpectationAction(StrEnum):
    """What happens to a row that fails an expectation."""

    DROP = "drop"
    QUARANTINE = "quarantine"
    FAIL = "fail"


class Expectation(BaseModel):
    """One data-quality rule; a row passes when ``condition`` is true (null counts as false)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Rule name, snake_case.")
    condition: str = Field(min_length=1, description="Spark SQL boolean over the row's columns.")
    action: ExpectationAction = Field(
        default=ExpectationAction.QUARANTINE, description="drop, quarantine or fail."
    )
    description: str = Field(default="", description="What the rule means, for people.")


LATE_RULE = "late"

# The design's bronze -> silver rules (DESIGN.md), in the order a failing row is attributed.
MARKET_TICK_EXPECTATIONS = (
    Expectation(
        name="symbol_present",
        condition="length(trim(symbol)) > 0",
        description="symbol is not empty",
    ),
    Expectation(
        name="price_not_null",
        condition="price IS NOT NULL",
        description="drop rows with null price",
    ),
    Expectation(
        name="volume_not_null",
        condition="volume IS NOT NULL",
        description="drop rows with null volume",
    ),
    # Judged at the cent silver stores (decimal(10,2), half up): 0.004 would land as 0.00.
    Expectation(
        name="price_positive",
        condition="round(price, 2) > 0",
        description="keep price > 0",
    ),
    Expectation(
        name="price_fits_decimal",
        condition="round(price, 2) < 100000000",
        description="price fits decimal(10,2) once rounded to the cent",
    ),
    Expectation(
        name="volume_non_negative", condition="volume >= 0", description="volume is not negative"
    ),
    # Bars sum volumes as bigint, which ANSI mode refuses to overflow: two ticks of 5e18 in one
    # window would fail every batch touching it. No tick trades a trillion shares.
    Expectation(
        name="volume_plausible",
        condition="volume <= 1000000000000",
        description="volume at most 10^12 a tick (bar volumes must fit a bigint)",
    ),
    # One tick from the far future would raise its symbol's max event time and make every
    # later tick of it late; a day of slack covers skewed clocks.
    Expectation(
        name="timestamp_not_future",
        condition="timestamp <= current_timestamp() + INTERVAL 1 DAY",
        description="event time at most a day ahead of the clock",
    ),
)
