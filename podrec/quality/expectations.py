"""Great Expectations as a plain function: validate a frame against expectations, summarise failures.

One ephemeral GX context serves the whole process (no project directory, no network: analytics are
switched off before GX is imported). The Dagster checks in ``checks/expectation_checks.py`` turn an
``Outcome`` into check metadata; the unit tests call ``validate`` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from podrec.privacy import masked_id

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # before GX is first imported (in this module)

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

EXAMPLES = 5


class _Expectations:
    """``great_expectations.expectations``, imported on first use: GX takes seconds to import, and the
    code location (every Dagster run, every ``podrec`` command) defines its checks without running one."""

    def __getattr__(self, name: str) -> Any:
        import great_expectations.expectations

        return getattr(great_expectations.expectations, name)


gxe = _Expectations()


@dataclass(frozen=True)
class ExpectationFailure:
    """One expectation that did not hold: what, where, how many rows, and a few of them."""

    expectation: str
    column: str
    unexpected: int | None
    examples: list[Any]
    observed: Any = None


@dataclass(frozen=True)
class Outcome:
    rows: int
    evaluated: int
    failures: list[ExpectationFailure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failing_rows(self) -> int:
        return sum(f.unexpected or 0 for f in self.failures)

    def markdown(self) -> str:
        """What failed, as a table a reviewer reads in the Dagster UI."""
        if self.passed:
            return f"All {self.evaluated} expectations hold on {self.rows} rows."
        table = pd.DataFrame(
            [
                {
                    "expectation": f.expectation,
                    "column": f.column,
                    "failing rows": "" if f.unexpected is None else f.unexpected,
                    "examples": _short(masked_examples(f)) if f.examples else _short(f.observed),
                }
                for f in self.failures
            ]
        )
        return table.to_markdown(index=False)


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    # Imported here, not with the module: seconds that the code location would pay in every process.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("podrec").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def validate(frame: pd.DataFrame, expectations: list[Expectation]) -> Outcome:
    """Run the expectations on the frame; every failing one is reported with up to 5 examples."""
    if not expectations:
        return Outcome(rows=len(frame), evaluated=0)
    from great_expectations import ExpectationSuite

    suite = ExpectationSuite(name="podrec", expectations=expectations)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    )
    failures = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        kwargs = config.kwargs
        column = kwargs.get("column") or ", ".join(
            kwargs.get("column_list") or [c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c]
        )
        info = r.exception_info or {}
        raised = info.get("raised_exception") if isinstance(info, dict) else False
        details = r.result or {}
        failures.append(
            ExpectationFailure(
                expectation=config.type,
                column=column or "(table)",
                unexpected=details.get("unexpected_count"),
                examples=list(details.get("partial_unexpected_list") or [])[:EXAMPLES],
                observed=info.get("exception_message") if raised else details.get("observed_value"),
            )
        )
    return Outcome(rows=len(frame), evaluated=len(result.results), failures=failures)


def masked_examples(failure: ExpectationFailure) -> list[Any]:
    """A failure's example values with listener ids as hashes: the summary lands in Dagster's metadata,
    which outlives a forget (an example of a compound column is a dict of its columns)."""
    if "user_id" not in failure.column:
        return failure.examples
    return [
        {k: masked_id(v) if k == "user_id" else v for k, v in e.items()}
        if isinstance(e, dict)
        else masked_id(e)
        for e in failure.examples
    ]


def _short(value: Any, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
