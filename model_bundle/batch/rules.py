"""Row validation for batch files: the API's own rules (schemas.py), applied column by column.

Why column-wise: a pydantic model per row cost more than the model's forward pass. The
bounds, lengths and patterns are read from the request models, never restated here; the
rows a column check refuses are then validated by the request model itself, so their
reasons are pydantic's own messages, the ones the API's 400s carry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Checked:
    """Cleaned values of every row (per field), which rows are valid, and why the others
    are not: (position in the chunk, reason)."""

    values: dict[str, np.ndarray]
    ok: np.ndarray
    errors: list[tuple[int, str]]


def constraint(schema: type[BaseModel], field: str, kind: type, attribute: str) -> Any:
    """One constraint of a request model's field (e.g. its ``annotated_types.Ge``), or None."""
    for item in schema.model_fields[field].metadata:
        if isinstance(item, kind) or getattr(item, attribute, None) is not None:
            value = getattr(item, attribute, None)
            if value is not None:
                return value
    return None


def in_bounds(values: np.ndarray, schema: type[BaseModel], field: str) -> np.ndarray:
    ok = np.isfinite(values)
    if (low := constraint(schema, field, annotated_types.Ge, "ge")) is not None:
        ok &= values >= low
    if (high := constraint(schema, field, annotated_types.Le, "le")) is not None:
        ok &= values <= high
    return ok


def as_numbers(column: pd.Series) -> np.ndarray:
    """float64 [N]; NaN for missing and non-numeric cells (booleans are not numbers)."""
    if pd.api.types.is_bool_dtype(column):
        return np.full(len(column), np.nan)
    if pd.api.types.is_numeric_dtype(column):  # a copy: pandas hands out read-only arrays
        return np.array(column.to_numpy(np.float64, na_value=np.nan))
    if column.dtype == object and column.map(lambda v: isinstance(v, bool)).any():
        column = column.map(lambda v: None if isinstance(v, bool) else v)
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def is_text(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(column) and column.dtype != object:
        return column.notna().to_numpy()
    return column.map(lambda v: isinstance(v, str)).to_numpy(bool)


def check_column(
    column: pd.Series, schema: type[BaseModel], field: str
) -> tuple[np.ndarray, np.ndarray]:
    """(cleaned values, valid) for one field, by the field's type and constraints."""
    annotation = schema.model_fields[field].annotation
    if annotation is float or annotation is int:
        values = as_numbers(column)
        ok = in_bounds(values, schema, field)
        if annotation is int:
            ok &= np.mod(np.where(ok, values, 0), 1) == 0
            values = np.where(ok, values, 0).astype(np.int64)
        return values, ok
    if annotation is str:
        ok = np.array(is_text(column), bool)  # a copy: pandas hands out read-only arrays
        text = column.where(ok, "").astype(str)
        lengths = text.str.len().to_numpy()
        if (
            shortest := constraint(schema, field, annotated_types.MinLen, "min_length")
        ) is not None:
            ok &= lengths >= shortest
        if (longest := constraint(schema, field, annotated_types.MaxLen, "max_length")) is not None:
            ok &= lengths <= longest
        if (pattern := constraint(schema, field, type(None), "pattern")) is not None:
            ok &= text.str.fullmatch(re.compile(pattern)).to_numpy(bool, na_value=False)
        return text.to_numpy(object), ok
    raise TypeError(f"{schema.__name__}.{field}: no column check for {annotation}")


def cell(value: Any, annotation: Any) -> Any:
    """A file's cell as the JSON value a client would have sent (None: left out)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if annotation in (float, int) and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def reason(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())


def check(frame: pd.DataFrame, schema: type[BaseModel], fields: Sequence[str]) -> Checked:
    """Validate ``fields`` of every row of ``frame`` against ``schema``."""
    values: dict[str, np.ndarray] = {}
    ok = np.ones(len(frame), bool)
    for field in fields:
        values[field], valid = check_column(frame[field], schema, field)
        ok &= valid
    errors = []
    for position in np.flatnonzero(~ok).tolist():
        body = {}
        for field in fields:
            value = cell(frame[field].iloc[position], schema.model_fields[field].annotation)
            if value is not None:
                body[field] = value
        try:
            accepted = schema.model_validate(body)
        except ValidationError as error:
            errors.append((position, reason(error)))
            continue
        for field in fields:  # the model's word is final (never expected to differ)
            values[field][position] = getattr(accepted, field)
        ok[position] = True
    return Checked(values, ok, errors)
