"""``events.validate`` as Spark SQL expressions, so validating a batch never leaves the JVM.

``validate`` stays the definition; here its rules run in the same order and give the same
reasons (a test feeds both the same records). A record whose decision Spark cannot reproduce
exactly goes to ``validate`` itself (the *Python lane*, ``mapInPandas`` over those rows only):
- text that is not exactly one JSON value to the JVM's strict parser — the reason then carries
  Python's parser message and position ("bad JSON: Expecting ',' delimiter at char 31"), and
  Python also accepts what the JVM refuses (``NaN``, ``Infinity``, duplicate keys, lone surrogates);
- an ``occurred_at`` in any shape but ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z`` or ``±HH:MM``
  (Python's ``fromisoformat`` takes many more, and words its refusals itself);
- an unknown event_type whose first 40 characters are not printable ASCII (its ``repr`` needs
  Python's Unicode tables);
- a non-string value where a string belongs, if its Python type cannot be told from the parsed
  value (a whole number of 19+ digits written with a fraction, ``…0.0``).
Well-formed traffic and the common faults stay in the JVM.

Timestamps are compared as instants; dates and texts are rendered in the session time zone,
which podrec's Spark configuration fixes to UTC (``podrec.lake.spark``), as ``validate`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from podrec.ingest.events import (
    EVENT_FIELDS,
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_ID_LENGTH,
    OPTIONAL_NUMBERS,
    REQUIRED,
    STRING_FIELDS,
    validate,
)
from podrec.lake.schemas import VALIDATED_RECORD

# The reason of a record Spark leaves to ``validate``; never a reason a user sees.
TO_PYTHON = "\x00decided in Python"
# Shapes of ``occurred_at`` (after ``validate``'s Z → +00:00) that Spark parses exactly as
# ``datetime.fromisoformat`` does; years below 1000 are left to Python.
_TIMESTAMP_SHAPE = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?[+-][0-9]{2}:[0-9]{2}$"
)
_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXX"
_FIELDS_STRUCT = "struct<" + ", ".join(f"`{f}`: variant" for f in (*STRING_FIELDS, *OPTIONAL_NUMBERS)) + ">"


def _python_type(variant_type: Column) -> Column:
    """``type(value).__name__`` of a JSON value from its variant type; null where that cannot tell.

    An integer literal of up to 18 digits is a BIGINT, so a DECIMAL(p≤18, 0) was written with a
    fraction ("5.0", a float); a longer one may be either, and is left to Python.
    """
    t = variant_type
    return (
        F.when(t == "STRING", "str")
        .when(t == "BOOLEAN", "bool")
        .when(t.isin("BIGINT", "INT", "SMALLINT", "TINYINT"), "int")
        .when(t.isin("DOUBLE", "FLOAT"), "float")
        .when(t.rlike(r"^DECIMAL\(([0-9]+,[1-9][0-9]*|([1-9]|1[0-8]),0)\)$"), "float")
        .when(t.startswith("OBJECT"), "dict")
        .when(t.startswith("ARRAY"), "list")
        .when(t == "VOID", "NoneType")
    )


def _python_repr(text: Column) -> Column:
    """``repr(text)`` for printable ASCII (double quotes only around a lone ``'``); null otherwise."""
    escaped = F.replace(text, F.lit("\\"), F.lit("\\\\"))
    return F.when(~text.rlike(r"^[ -~]*$"), F.lit(None)).otherwise(
        F.when(text.contains("'") & ~text.contains('"'), F.concat(F.lit('"'), escaped, F.lit('"'))).otherwise(
            F.concat(F.lit("'"), F.replace(escaped, F.lit("'"), F.lit("\\'")), F.lit("'"))
        )
    )


def _isoformat(ts: Column) -> Column:
    """``datetime.isoformat()`` of a UTC instant: microseconds only when there are any."""
    fraction = F.when(F.unix_micros(ts) % 1_000_000 != 0, F.date_format(ts, ".SSSSSS")).otherwise("")
    return F.concat(F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss"), fraction, F.lit("+00:00"))


def _parsed(records: DataFrame) -> DataFrame:
    """Each record's text, whether it is UTF-8, and its JSON value if it is exactly one.

    The JVM's parser reads the first value and ignores what follows, where Python refuses
    "extra data". Wrapped as ``[text]`` and ``[text,0]``, exactly one value parses as arrays of
    one and two elements; text with anything after its value cannot give both.
    """
    text = F.col("value").cast("string")
    one = F.try_parse_json(F.concat(F.lit("["), text, F.lit("]")))
    two = F.try_parse_json(F.concat(F.lit("["), text, F.lit(",0]")))
    utf8 = F.is_valid_utf8(text)
    staged = records.select(
        "*",
        utf8.alias("_utf8"),
        F.when(utf8, one).alias("_one"),
        F.when(utf8, two).alias("_two"),
    )

    def element(array: str, i: int) -> Column:
        return F.try_variant_get(F.col(array), f"$[{i}]", "variant")

    single = (
        element("_one", 0).isNotNull()
        & element("_one", 1).isNull()
        & element("_two", 1).isNotNull()
        & element("_two", 2).isNull()
    )
    doc = F.when(single, element("_one", 0))
    return staged.select(
        "value", "partition", "offset", "timestamp", "_utf8",
        doc.alias("_doc"),
        F.try_variant_get(doc, "$", _FIELDS_STRUCT).alias("_f"),
    )  # fmt: skip


def _fields(parsed: DataFrame) -> DataFrame:
    """Per field: its variant type (null: absent), its text if a string, its number if numeric."""
    cols = []
    for name in (*STRING_FIELDS, *OPTIONAL_NUMBERS):
        value = F.col("_f").getField(name)
        kind = F.schema_of_variant(value)
        cols.append(kind.alias(f"_t_{name}"))
        cols.append(F.when(kind == "STRING", F.variant_get(value, "$", "string")).alias(f"_s_{name}"))
    for name in OPTIONAL_NUMBERS:
        cols.append(F.try_variant_get(F.col("_f").getField(name), "$", "double").alias(f"_n_{name}"))
    return parsed.select("*", *cols)


def _reason(occurred_at: Column) -> Column:
    """The first rule a record breaks, in ``validate``'s order, worded as ``validate`` words it."""

    def t(name: str) -> Column:
        return F.col(f"_t_{name}")

    def s(name: str) -> Column:
        return F.col(f"_s_{name}")

    def present(name: str) -> Column:
        return t(name).isNotNull() & (t(name) != "VOID")

    def or_python(message: Column) -> Column:
        return F.coalesce(message, F.lit(TO_PYTHON))

    missing = F.concat_ws(", ", *[F.when(~present(n) | (s(n) == ""), F.lit(n)) for n in REQUIRED])
    rules: list[tuple[Column, Column]] = [
        (F.col("value").isNull(), F.lit("empty record")),
        (~F.col("_utf8"), F.lit("not UTF-8")),
        (F.col("_doc").isNull(), F.lit(TO_PYTHON)),
        (
            F.col("_f").isNull(),
            or_python(
                F.concat(
                    F.lit("bad JSON: expected an object, got "), _python_type(F.schema_of_variant("_doc"))
                )
            ),
        ),
        (missing != "", F.concat(F.lit("missing field(s): "), missing)),
    ]
    for name in STRING_FIELDS:
        rules.append(
            (
                present(name) & (t(name) != "STRING"),
                or_python(
                    F.concat(F.lit(f"wrong type: {name} must be a string, got "), _python_type(t(name)))
                ),
            )
        )
        rules.append(
            (
                F.char_length(s(name)) > MAX_ID_LENGTH,
                F.lit(f"wrong type: {name} longer than {MAX_ID_LENGTH} characters"),
            )
        )
    for name in OPTIONAL_NUMBERS:
        number = F.col(f"_n_{name}")
        not_number = (
            t(name).isin("STRING", "BOOLEAN") | t(name).startswith("OBJECT") | t(name).startswith("ARRAY")
        )
        infinite = t(name).isin("DOUBLE", "FLOAT") & (F.abs(number) == float("inf"))
        rules.append(
            (
                present(name) & (not_number | infinite),
                F.concat(F.lit(f"wrong type: {name} must be a number, got "), _python_type(t(name))),
            )
        )
        rules.append((number < 0, F.lit(f"out of range: {name} is negative")))
    head = F.substring(s("event_type"), 1, 40)
    rules += [
        (
            ~s("event_type").isin(*sorted(EVENT_TYPES)),
            or_python(F.concat(F.lit("unknown event_type: "), _python_repr(head))),
        ),
        (occurred_at.isNull(), F.lit(TO_PYTHON)),
        (
            occurred_at
            > F.col("timestamp") + F.expr(f"INTERVAL {int(FUTURE_TOLERANCE.total_seconds())} SECONDS"),
            F.concat(
                F.lit("occurred_at in the future: "),
                _isoformat(occurred_at),
                F.lit(" > received "),
                _isoformat(F.col("timestamp")),
            ),
        ),
    ]
    first, *rest = rules
    return reduce(lambda chain, rule: chain.when(*rule), rest, F.when(*first))


def decide(records: DataFrame) -> DataFrame:
    """Kafka records (value, partition, offset, timestamp) → VALIDATED_RECORD rows, in Spark.

    A row whose ``error`` is ``TO_PYTHON`` is not decided yet: ``decide_rest_in_python`` hands it
    to ``validate``.
    """
    fields = _fields(_parsed(records))
    normalised = F.replace(
        F.replace(F.col("_s_occurred_at"), F.lit("Z"), F.lit("+00:00")), F.lit("z"), F.lit("+00:00")
    )
    occurred_at = F.when(
        normalised.rlike(_TIMESTAMP_SHAPE), F.try_to_timestamp(normalised, F.lit(_TIMESTAMP_FORMAT))
    )
    with_time = fields.select("*", occurred_at.alias("_occurred_at"))
    decided = with_time.select("*", _reason(F.col("_occurred_at")).alias("error"))
    accepted = F.col("error").isNull()

    def kept(column: Column) -> Column:
        return F.when(accepted, column)

    event = {name: kept(F.col(f"_s_{name}")) for name in STRING_FIELDS}
    event.update({name: kept(F.col(f"_n_{name}")) for name in OPTIONAL_NUMBERS})
    event["occurred_at"] = kept(F.col("_occurred_at"))
    return decided.select(
        *[event[name].alias(name) for name in EVENT_FIELDS],
        F.col("timestamp").alias("received_at"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.to_date(F.when(accepted, F.col("_occurred_at")).otherwise(F.col("timestamp"))).alias("event_date"),
        "error",
        F.when(~accepted, F.col("value")).alias("raw"),
    )


def _validate_in_python(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas body: Kafka records → validated rows, by ``validate`` itself."""
    columns = [f.name for f in VALIDATED_RECORD.fields]
    for batch in batches:
        out = []
        for value, partition, offset, timestamp in zip(
            batch["value"], batch["partition"], batch["offset"], batch["timestamp"], strict=True
        ):
            received_at = pd.Timestamp(timestamp).tz_localize("UTC").to_pydatetime()
            result = validate(None if value is None else bytes(value), received_at)
            if result.event is not None:
                row = dict(result.event)
                row["event_date"] = row["occurred_at"].date()
                row["error"], row["raw"] = None, None
            else:
                row = dict.fromkeys(columns)
                row["event_date"] = received_at.date()
                row["error"], row["raw"] = result.error, None if value is None else bytes(value)
            row.update(received_at=received_at, kafka_partition=int(partition), kafka_offset=int(offset))
            out.append(row)
        yield pd.DataFrame(out, columns=columns)


def decide_rest_in_python(decided: DataFrame) -> DataFrame:
    """``decide``'s rows with the undecided ones decided by ``validate``: VALIDATED_RECORD rows.

    ``decided`` is read twice (each lane filters it): cache it.
    """
    in_spark = decided.where(F.col("error").isNull() | (F.col("error") != TO_PYTHON))
    to_python = decided.where(F.col("error") == TO_PYTHON).select(
        F.col("raw").alias("value"),
        F.col("kafka_partition").alias("partition"),
        F.col("kafka_offset").alias("offset"),
        F.col("received_at").alias("timestamp"),
    )
    return in_spark.unionByName(to_python.mapInPandas(_validate_in_python, VALIDATED_RECORD))
