"""Batch validation (column-wise, model_bundle.batch.rules) agrees with the API's pydantic
request models row by row: same rows refused, same reasons. The edge rows are built from
the schema's own bounds, so a bound restated (and drifted) in rules.py fails here."""

from __future__ import annotations

import math

import annotated_types
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from model_bundle.batch.rules import cell, check, constraint, reason
from model_bundle.batch.tasks import InputError, require
from model_bundle.schemas import TABULAR_REQUESTS


def pydantic_verdicts(frame: pd.DataFrame, schema: type, fields: list[str]) -> list[str | None]:
    """What the API says of each row (None: accepted), the row sent as JSON would be."""
    verdicts: list[str | None] = []
    for position in range(len(frame)):
        body = {}
        for field in fields:
            value = cell(frame[field].iloc[position], schema.model_fields[field].annotation)
            if value is not None:
                body[field] = value
        try:
            schema.model_validate(body)
            verdicts.append(None)
        except ValidationError as error:
            verdicts.append(reason(error))
    return verdicts


def bad_rows(schema: type, fields: list[str]) -> pd.DataFrame:
    """Per field: on and just beyond each bound, NaN, inf, -inf, a string, a boolean, empty."""
    base = {}
    for field in fields:
        low = constraint(schema, field, annotated_types.Ge, "ge")
        high = constraint(schema, field, annotated_types.Le, "le")
        base[field] = (low + high) / 2
    rows = [dict(base)]
    for field in fields:
        low = constraint(schema, field, annotated_types.Ge, "ge")
        high = constraint(schema, field, annotated_types.Le, "le")
        for value in (
            low,
            high,
            math.nextafter(low, -math.inf),
            math.nextafter(high, math.inf),
            low - 1,
            high + 1,
            math.nan,
            math.inf,
            -math.inf,
            "abc",
            "1.5",
            True,
            None,
        ):
            rows.append({**base, field: value})
    return pd.DataFrame(rows, dtype=object)


@pytest.mark.parametrize("model", sorted(TABULAR_REQUESTS))
def test_column_checks_refuse_exactly_what_pydantic_refuses_with_its_reasons(model: str) -> None:
    schema = TABULAR_REQUESTS[model]
    fields = list(schema.model_fields)
    frame = bad_rows(schema, fields)
    expected = pydantic_verdicts(frame, schema, fields)
    checked = check(frame, schema, fields)
    got: list[str | None] = [None] * len(frame)
    for position, text in checked.errors:
        got[position] = text
    assert got == expected
    assert checked.ok.tolist() == [verdict is None for verdict in expected]
    assert sum(v is None for v in expected) > len(fields)  # bounds themselves are accepted
    # numeric columns (as Parquet gives them) agree too
    numeric = frame[[f for f in fields]].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    numeric_checked = check(numeric, schema, fields)
    assert numeric_checked.ok.tolist() == [
        v is None for v in pydantic_verdicts(numeric, schema, fields)
    ]


def test_a_missing_column_is_refused_and_an_extra_column_is_carried_through() -> None:
    schema = TABULAR_REQUESTS["iris"]
    fields = tuple(schema.model_fields)
    frame = pd.DataFrame({name: [1.0] for name in fields[1:]} | {"id": [7]})
    with pytest.raises(InputError, match=fields[0]):
        require(frame, fields)
    frame[fields[0]] = 1.0
    assert check(frame, schema, list(fields)).ok.tolist() == [True]
