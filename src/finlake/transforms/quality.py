"""Applying declarative expectations to a DataFrame: split into passed, quarantined and dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from finlake.quality import Expectation, ExpectationAction

FAILED_RULE = "_failed_rule"


@dataclass(frozen=True)
class ExpectationResult:
    """The rows of one input, split by the first expectation each row fails."""

    passed: DataFrame
    quarantined: DataFrame
    dropped: DataFrame
    failed: DataFrame


def first_failed_rule(expectations: Sequence[Expectation]) -> Column:
    """The name of the first expectation the row fails (null condition = fail), or null."""
    rule: Column = F.lit(None).cast("string")
    for expectation in reversed(expectations):
        passes = F.coalesce(F.expr(expectation.condition), F.lit(False))
        rule = F.when(~passes, F.lit(expectation.name)).otherwise(rule)
    return rule


def with_failed_rule(rows: DataFrame, expectations: Sequence[Expectation]) -> DataFrame:
    """Add ``_failed_rule``."""
    return rows.withColumn(FAILED_RULE, first_failed_rule(expectations))


def split_by_expectations(
    rows: DataFrame, expectations: Sequence[Expectation]
) -> ExpectationResult:
    """Passed rows, and failing rows routed by their rule's action (``rule``/``detail`` added)."""
    tagged = with_failed_rule(rows, expectations)
    actions = {e.name: e.action for e in expectations}
    details = F.create_map(
        *[x for e in expectations for x in (F.lit(e.name), F.lit(e.description))]
    )

    def having(action: ExpectationAction) -> DataFrame:
        names = [name for name, kind in actions.items() if kind is action] or ["\u0000"]
        return (
            tagged.filter(F.col(FAILED_RULE).isin(names))
            .withColumn("rule", F.col(FAILED_RULE))
            .withColumn("detail", details[F.col(FAILED_RULE)])
            .drop(FAILED_RULE)
        )

    return ExpectationResult(
        passed=tagged.filter(F.col(FAILED_RULE).isNull()).drop(FAILED_RULE),
        quarantined=having(ExpectationAction.QUARANTINE),
        dropped=having(ExpectationAction.DROP),
        failed=having(ExpectationAction.FAIL),
    )
