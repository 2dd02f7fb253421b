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
- text with more ``[`` and ``{`` than the nesting limit (Python measures the depth outside strings);
- a number beyond a double (Python tells an integer too large from a float that overflowed), and an
  ``occurred_at`` whose UTC instant is past year 9999 (Python's ``datetime`` cannot hold it) or
  before ``EARLIEST``;
- a non-string value where a string belongs, if its Python type cannot be told from the parsed
  value (a whole number of 19+ digits written with a fraction, ``…0.0``).
Well-formed traffic and the common faults stay in the JVM.

Two steps, so the pass over every record builds no text: ``decide`` names the first rule broken
(``error`` holds its family, "wrong type", and ``why`` the details), ``word`` writes the full
reason for the rejected rows alone.

Timestamps are compared as instants; dates and texts are rendered in the session time zone,
which podrec's Spark configuration fixes to UTC (``podrec.lake.spark``), as ``validate`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial, reduce

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from podrec.ids import EVENT_ID_FIELDS, ID_RULE, RESERVED_PREFIXES, SPARK_ID_REGEX
from podrec.ingest.events import (
    DEFAULT_LIMITS,
    EARLIEST,
    EVENT_FIELDS,
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_ID_LENGTH,
    OPTIONAL_NUMBERS,
    REQUIRED,
    STRING_FIELDS,
    RecordLimits,
    Validated,
    validate,
)
from podrec.lake.schemas import VALIDATED_RECORD

# The reason of a record Spark leaves to ``validate``; never a reason a user sees.
TO_PYTHON = "\x00decided in Python"
# The family of the reason a record gets when its validator raised (``guarded``).
VALIDATOR_ERROR = "validator error"
# Shapes of ``occurred_at`` that Spark parses exactly as ``validate`` does (its Z → +00:00 then
# ``datetime.fromisoformat``); years below 1000 and a lower-case ``z`` are left to Python.
_TIMESTAMP_SHAPE = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([+-][0-9]{2}:[0-9]{2}|Z)$"
)
_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]XXX"
_CHECKED = (*STRING_FIELDS, *OPTIONAL_NUMBERS)  # validate's order of the per-field checks
_AS_VARIANTS = "struct<" + ", ".join(f"`{f}`: variant" for f in _CHECKED) + ">"
_AS_TEXT = "struct<" + ", ".join(f"`{f}`: string" for f in STRING_FIELDS) + ">"
# A whole number of 19+ digits: from an integer literal (int) or one with a fraction (float).
_AMBIGUOUS_NUMBER = r"^DECIMAL\(([0-9]{3,}|19|[2-9][0-9]),0\)$"
# An integer literal of more digits than a DECIMAL(38) holds is read as a DOUBLE, which Python calls a
# float; a record with such a run of digits goes to Python when a DOUBLE decides its reason.
_LONG_DIGITS = "[0-9]{39}"
_TYPE_NAMES = {
    "STRING": "str", "BOOLEAN": "bool", "BIGINT": "int", "INT": "int", "SMALLINT": "int",
    "TINYINT": "int", "DOUBLE": "float", "FLOAT": "float", "VOID": "NoneType",
}  # fmt: skip
# The rules Spark words itself, by number, with each reason's family (its text before ':').
(_NOT_OBJECT, _MISSING, _NOT_STRING, _TOO_LONG, _NOT_NUMBER, _NEGATIVE, _UNKNOWN_TYPE, _FUTURE,
 _RESERVED_ID, _BAD_ID) = range(1, 11)  # fmt: skip
_FAMILIES = {
    _NOT_OBJECT: "bad JSON", _MISSING: "missing field(s)", _NOT_STRING: "wrong type",
    _TOO_LONG: "wrong type", _NOT_NUMBER: "wrong type", _NEGATIVE: "out of range",
    _UNKNOWN_TYPE: "unknown event_type", _FUTURE: "occurred_at in the future",
    _RESERVED_ID: "reserved id", _BAD_ID: "bad id",
}  # fmt: skip
# Issues of one field's check (``_field_issue``); a number beyond a double is Python's to word.
_WRONG_TYPE, _OUT_OF_BOUNDS, _INFINITE = 1, 2, 3


def validation_session(spark: SparkSession) -> SparkSession:
    """A session of ``spark``'s context (own settings, same cache) tuned for validating a batch.

    - Fused into one method, ``decide``'s generated code exceeds the 8000 bytes of bytecode past
      which HotSpot never compiles a method, and would run interpreted for every record; at the
      limit Spark's documentation recommends for HotSpot, it keeps per-operator code instead.
    - The decided batch is cached for the few passes over it; compressing that short-lived
      cache costs about as much CPU as validating, so it is kept uncompressed (a backlog larger
      than memory spills to disk).
    """
    session = spark.newSession()
    session.conf.set("spark.sql.codegen.hugeMethodLimit", "8000")
    session.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    return session


def _literal_map(mapping: dict) -> Column:
    return F.create_map(*[F.lit(x) for pair in mapping.items() for x in pair])


def _python_type(variant_type: Column) -> Column:
    """``type(value).__name__`` of a JSON value from its variant type (not ``_AMBIGUOUS_NUMBER``).

    An integer literal of up to 18 digits is a BIGINT, so a DECIMAL(p≤18, 0) was written with a
    fraction ("5.0", a float).
    """
    t = variant_type
    return F.coalesce(
        F.element_at(_literal_map(_TYPE_NAMES), t),
        F.when(t.startswith("DECIMAL"), F.lit("float")),
        F.when(t.startswith("OBJECT"), F.lit("dict")),
        F.when(t.startswith("ARRAY"), F.lit("list")),
    )


def _python_repr(text: Column) -> Column:
    """``repr(text)`` of printable ASCII: double quotes only around a lone ``'``."""
    escaped = F.replace(text, F.lit("\\"), F.lit("\\\\"))
    return F.when(
        text.contains("'") & ~text.contains('"'), F.concat(F.lit('"'), escaped, F.lit('"'))
    ).otherwise(F.concat(F.lit("'"), F.replace(escaped, F.lit("'"), F.lit("\\'")), F.lit("'")))


def _isoformat(ts: Column) -> Column:
    """``datetime.isoformat()`` of a UTC instant: microseconds only when there are any."""
    fraction = F.when(F.unix_micros(ts) % 1_000_000 != 0, F.date_format(ts, ".SSSSSS")).otherwise("")
    return F.concat(F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss"), fraction, F.lit("+00:00"))


def _parsed(records: DataFrame) -> DataFrame:
    """Each record: whether it is UTF-8, whether it is exactly one JSON value (an object or not),
    and per field its variant type (null: absent), its text and its number.

    The JVM's parser reads the first value and ignores what follows, where Python refuses
    "extra data". Wrapped as ``[text]``, one value parses as an array of one; so does a value
    followed by ``]`` and anything, which ``[text,0]`` (an array of two only for one value)
    tells apart — read only for text holding a ``]``.
    """
    text = F.col("value").cast("string")
    utf8 = F.is_valid_utf8(text)
    one = F.when(utf8, F.try_parse_json(F.concat(F.lit("["), text, F.lit("]"))))
    two = F.try_parse_json(F.concat(F.lit("["), text, F.lit(",0]")))
    alone = F.when(
        text.contains("]"),
        F.try_variant_get(two, "$[1]", "variant").isNotNull()
        & F.try_variant_get(two, "$[2]", "variant").isNull(),
    ).otherwise(F.lit(True))
    value = F.try_variant_get(one, "$[0]", "variant")
    single = value.isNotNull() & F.try_variant_get(one, "$[1]", "variant").isNull() & alone
    fields = F.try_variant_get(one, "$[0]", _AS_VARIANTS)
    as_text = F.try_variant_get(one, "$[0]", _AS_TEXT)
    types = [F.schema_of_variant(fields.getField(n)).alias(f"_t_{n}") for n in _CHECKED]
    texts = [as_text.getField(n).alias(f"_s_{n}") for n in STRING_FIELDS]
    numbers = [
        F.try_variant_get(fields.getField(n), "$", "double").alias(f"_n_{n}") for n in OPTIONAL_NUMBERS
    ]
    return records.select(
        "value", "partition", "offset", "timestamp",
        utf8.alias("_utf8"),
        F.coalesce(single, F.lit(False)).alias("_single"),
        fields.isNull().alias("_not_object"),
        F.when(single & fields.isNull(), F.schema_of_variant(value)).alias("_doc_type"),
        *types, *texts, *numbers,
    )  # fmt: skip


def _field_issue(name: str) -> Column:
    """0, or which of validate's checks of this field fails: the type, the length or the sign, or a
    number beyond a double."""
    t = F.col(f"_t_{name}")
    present = t.isNotNull() & (t != "VOID")
    infinite = F.lit(False)
    if name in STRING_FIELDS:
        wrong_type = present & (t != "STRING")
        out_of_bounds = (t == "STRING") & (F.char_length(F.col(f"_s_{name}")) > MAX_ID_LENGTH)
    else:
        number = F.col(f"_n_{name}")
        wrong_type = present & (t.isin("STRING", "BOOLEAN") | t.startswith("OBJECT") | t.startswith("ARRAY"))
        infinite = present & (F.abs(number) == float("inf"))
        out_of_bounds = number < 0
    return (
        F.when(wrong_type, _WRONG_TYPE)
        .when(infinite, _INFINITE)
        .when(out_of_bounds, _OUT_OF_BOUNDS)
        .otherwise(0)
    )


def _id_issue(name: str) -> Column:
    """0, or which id check of this (string, present) field fails: 1 a reserved prefix, 2 the id rule."""
    text = F.col(f"_s_{name}")
    reserved = reduce(lambda a, b: a | b, [text.startswith(p) for p in RESERVED_PREFIXES])
    return F.when(text.isNull(), 0).when(reserved, 1).when(~text.rlike(SPARK_ID_REGEX), 2).otherwise(0)


def _first_of(issues: list[Column]) -> Column:
    """The 1-based position of the first non-zero issue; null when all are 0."""
    return reduce(
        lambda chain, i: chain.when(issues[i] != 0, i + 1), range(1, len(issues)), F.when(issues[0] != 0, 1)
    )


def _checked(fields: DataFrame) -> DataFrame:
    """The parsed ``occurred_at``, the missing required fields, and the first failing field check."""
    text = F.col("_s_occurred_at")
    occurred_at = F.when(text.rlike(_TIMESTAMP_SHAPE), F.try_to_timestamp(text, F.lit(_TIMESTAMP_FORMAT)))
    missing = [
        F.when(F.col(f"_t_{n}").isNull() | (F.col(f"_t_{n}") == "VOID") | (F.col(f"_s_{n}") == ""), F.lit(n))
        for n in REQUIRED
    ]
    staged = fields.select(
        "*",
        occurred_at.alias("_occurred_at"),
        F.concat_ws(", ", *missing).alias("_missing"),
        *[_field_issue(n).alias(f"_i_{n}") for n in _CHECKED],
        *[_id_issue(n).alias(f"_d_{n}") for n in EVENT_ID_FIELDS],
    )
    # 1-based in _CHECKED / EVENT_ID_FIELDS; null: every field passes.
    return staged.select(
        "*",
        _first_of([F.col(f"_i_{n}") for n in _CHECKED]).alias("_first"),
        _first_of([F.col(f"_d_{n}") for n in EVENT_ID_FIELDS]).alias("_first_id"),
    )


def _ambiguous(variant_type: Column) -> Column:
    """Is a number of this type one whose Python type the variant cannot tell (int or float)?"""
    long_integer = (variant_type == "DOUBLE") & F.col("value").cast("string").rlike(_LONG_DIGITS)
    return variant_type.rlike(_AMBIGUOUS_NUMBER) | long_integer


def _rule(limits: RecordLimits) -> Column:
    """The first rule a record breaks, in ``validate``'s order: the number of one Spark words
    (``word``), a reason in full, or ``TO_PYTHON``; null: none."""

    def number(rule: int) -> Column:
        return F.lit(str(rule))

    first, head = F.col("_first"), F.substring("_s_event_type", 1, 40)
    first_type = F.element_at(F.array(*[F.col(f"_t_{n}") for n in _CHECKED]), first)
    issue = F.element_at(F.array(*[F.col(f"_i_{n}") for n in _CHECKED]), first)
    is_string = first <= len(STRING_FIELDS)
    field_rule = (
        F.when(issue == _INFINITE, F.lit(TO_PYTHON))
        .when(is_string & (issue == _WRONG_TYPE) & _ambiguous(first_type), F.lit(TO_PYTHON))
        .when(is_string & (issue == _WRONG_TYPE), number(_NOT_STRING))
        .when(is_string, number(_TOO_LONG))
        .when(issue == _WRONG_TYPE, number(_NOT_NUMBER))
        .otherwise(number(_NEGATIVE))
    )
    # A CASE, not element_at: Spark 4.2 can evaluate element_at at a null position as index 0, and fail.
    first_id = F.col("_first_id")
    id_issue = reduce(
        lambda chain, i: chain.when(first_id == i + 1, F.col(f"_d_{EVENT_ID_FIELDS[i]}")),
        range(1, len(EVENT_ID_FIELDS)),
        F.when(first_id == 1, F.col(f"_d_{EVENT_ID_FIELDS[0]}")),
    )
    occurred_at = F.col("_occurred_at")
    tolerance = F.expr(f"INTERVAL {int(FUTURE_TOLERANCE.total_seconds())} SECONDS")
    size = F.octet_length("value")
    text = F.col("value").cast("string")
    brackets = F.length(text) - F.length(F.translate(text, "[{", ""))
    return (
        F.when(F.col("value").isNull(), F.lit("empty record"))
        .when(
            size > limits.max_bytes,
            F.concat(
                F.lit("too large: "), size.cast("string"), F.lit(f" bytes, more than {limits.max_bytes}")
            ),
        )
        .when(~F.col("_utf8"), F.lit("not UTF-8"))
        .when(brackets > limits.max_depth, F.lit(TO_PYTHON))
        .when(~F.col("_single"), F.lit(TO_PYTHON))
        .when(F.col("_not_object") & _ambiguous(F.col("_doc_type")), F.lit(TO_PYTHON))
        .when(F.col("_not_object"), number(_NOT_OBJECT))
        .when(F.col("_missing") != "", number(_MISSING))
        .when(first.isNotNull(), field_rule)
        .when(id_issue == 1, number(_RESERVED_ID))
        .when(id_issue == 2, number(_BAD_ID))
        # \z, not $: Java's $ also matches before a final line break ("u1\n" is not printable ASCII).
        .when(
            ~F.col("_s_event_type").isin(*sorted(EVENT_TYPES)) & ~head.rlike(r"^[ -~]*\z"), F.lit(TO_PYTHON)
        )
        .when(~F.col("_s_event_type").isin(*sorted(EVENT_TYPES)), number(_UNKNOWN_TYPE))
        .when(
            occurred_at.isNull() | (F.year(occurred_at) > 9999) | (occurred_at < F.lit(EARLIEST)),
            F.lit(TO_PYTHON),
        )
        .when(occurred_at > F.col("timestamp") + tolerance, number(_FUTURE))
    )


def _name_at(position: Column, names: tuple[str, ...]) -> Column:
    """``names[position - 1]`` as a CASE over the names."""
    return reduce(
        lambda chain, i: chain.when(position == i + 1, F.lit(names[i])),
        range(1, len(names)),
        F.when(position == 1, F.lit(names[0])),
    )


def decide(records: DataFrame, limits: RecordLimits = DEFAULT_LIMITS) -> DataFrame:
    """Kafka records (value, partition, offset, timestamp) → VALIDATED_RECORD rows and ``why``.

    ``error`` is null (accepted), a reason, the family of a reason ``word`` completes from
    ``why``, or ``TO_PYTHON`` (``decide_rest_in_python`` hands the record to ``validate``).
    """
    checked = _checked(_parsed(records))
    rule = _rule(limits)
    numbered = rule.isin(*[str(n) for n in _FAMILIES])
    accepted = rule.isNull()
    first = F.col("_first")
    first_id = F.col("_first_id")
    is_id_rule = rule.isin(str(_RESERVED_ID), str(_BAD_ID))
    why = F.struct(
        rule.cast("int").alias("rule"),
        # A CASE, not element_at over a literal array: Spark 4.2 reads a null index there as a
        # valid one (element_at(array('a', 'b'), NULL-valued CASE) gives 'b').
        F.when(is_id_rule, _name_at(first_id, EVENT_ID_FIELDS))
        .otherwise(_name_at(first, _CHECKED))
        .alias("name"),
        F.coalesce(F.element_at(F.array(*[F.col(f"_t_{n}") for n in _CHECKED]), first), "_doc_type").alias(
            "type"
        ),
        F.col("_missing").alias("missing"),
        F.substring("_s_event_type", 1, 40).alias("head"),
        F.col("_occurred_at").alias("occurred_at"),
    )

    def kept(column: Column) -> Column:
        return F.when(accepted, column)

    event = {name: kept(F.col(f"_s_{name}")) for name in STRING_FIELDS}
    event.update({name: kept(F.col(f"_n_{name}")) for name in OPTIONAL_NUMBERS})
    event["occurred_at"] = kept(F.col("_occurred_at"))
    return checked.select(
        *[event[name].alias(name) for name in EVENT_FIELDS],
        F.col("timestamp").alias("received_at"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.to_date(F.when(accepted, F.col("_occurred_at")).otherwise(F.col("timestamp"))).alias("event_date"),
        F.when(numbered, F.element_at(_literal_map(_FAMILIES), rule.cast("int")))
        .otherwise(rule)
        .alias("error"),
        F.when(~accepted, F.col("value")).alias("raw"),
        F.when(numbered, why).alias("why"),
    )


def word(decided: DataFrame) -> DataFrame:
    """``decided`` with each reason in full: the family ``decide`` named, completed from ``why``."""
    why = F.col("why")
    rule, name = why.getField("rule"), why.getField("name")
    got = _python_type(why.getField("type"))
    future = F.concat(
        F.lit("occurred_at in the future: "),
        _isoformat(why.getField("occurred_at")),
        F.lit(" > received "),
        _isoformat(F.col("received_at")),
    )
    text = (
        F.when(why.isNull(), F.col("error"))
        .when(rule == _NOT_OBJECT, F.concat(F.lit("bad JSON: expected an object, got "), got))
        .when(rule == _MISSING, F.concat(F.lit("missing field(s): "), why.getField("missing")))
        .when(
            rule == _NOT_STRING,
            F.concat(F.lit("wrong type: "), name, F.lit(" must be a string, got "), got),
        )
        .when(
            rule == _TOO_LONG,
            F.concat(F.lit("wrong type: "), name, F.lit(f" longer than {MAX_ID_LENGTH} characters")),
        )
        .when(
            rule == _NOT_NUMBER,
            F.concat(F.lit("wrong type: "), name, F.lit(" must be a number, got "), got),
        )
        .when(rule == _NEGATIVE, F.concat(F.lit("out of range: "), name, F.lit(" is negative")))
        .when(
            rule == _RESERVED_ID,
            F.concat(F.lit("reserved id: "), name, F.lit(" starts with a prefix podrec keeps for itself")),
        )
        .when(rule == _BAD_ID, F.concat(F.lit("bad id: "), name, F.lit(f" must be {ID_RULE}")))
        .when(
            rule == _UNKNOWN_TYPE,
            F.concat(F.lit("unknown event_type: "), _python_repr(why.getField("head"))),
        )
        .otherwise(future)
    )
    return decided.withColumn("error", text)


Validator = Callable[[bytes | None, datetime], Validated]  # raw record, received at → event or reason


def guarded(validate: Validator, raw: bytes | None, received_at: datetime) -> Validated:
    """``validate``'s answer, or — should it still raise — a rejection naming the error's type.

    Validators are total by design (property tests hold them to it); this is the last line, so that
    a record no test imagined is kept in the rejected table and the run goes on without it."""
    try:
        return validate(raw, received_at)
    except Exception as exc:  # any exception at all: one record must never stop a run
        return Validated(None, f"{VALIDATOR_ERROR}: {type(exc).__name__}")


def validate_batches(
    batches: Iterator[pd.DataFrame], validate: Validator, record: StructType, time_field: str
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: Kafka records → validated rows (``record``'s columns, or an error), each
    record by ``validate`` itself; its ``time_field`` dates an accepted row, arrival a rejected one."""
    columns = [f.name for f in record.fields]
    for batch in batches:
        out = []
        for value, partition, offset, timestamp in zip(
            batch["value"], batch["partition"], batch["offset"], batch["timestamp"], strict=True
        ):
            received_at = pd.Timestamp(timestamp).tz_localize("UTC").to_pydatetime()
            result = guarded(validate, None if value is None else bytes(value), received_at)
            if result.event is not None:
                row = dict(result.event)
                row["event_date"] = row[time_field].date()
                row["error"], row["raw"] = None, None
            else:
                row = dict.fromkeys(columns)
                row["event_date"] = received_at.date()
                row["error"], row["raw"] = result.error, None if value is None else bytes(value)
            row.update(received_at=received_at, kafka_partition=int(partition), kafka_offset=int(offset))
            out.append(row)
        yield pd.DataFrame(out, columns=columns)


def decide_rest_in_python(decided: DataFrame, limits: RecordLimits = DEFAULT_LIMITS) -> DataFrame:
    """``decide``'s rows with the undecided ones decided by ``validate`` (their ``why`` is null).

    ``decided`` is read twice (each lane filters it): cache it.
    """
    in_spark = decided.where(F.col("error").isNull() | (F.col("error") != TO_PYTHON))
    to_python = decided.where(F.col("error") == TO_PYTHON).select(
        F.col("raw").alias("value"),
        F.col("kafka_partition").alias("partition"),
        F.col("kafka_offset").alias("offset"),
        F.col("received_at").alias("timestamp"),
    )
    in_python = to_python.mapInPandas(
        lambda batches: validate_batches(
            batches, partial(validate, limits=limits), VALIDATED_RECORD, "occurred_at"
        ),
        VALIDATED_RECORD,
    )
    return in_spark.unionByName(in_python.withColumn("why", F.lit(None).cast(decided.schema["why"].dataType)))
