"""Row validation for batch files: the API's own rules (schemas.py), applied to whole columns.

Why column-wise: a pydantic model per row cost more than the model's forward pass; the
numeric fields are checked together as one matrix, a few comparisons per chunk. The
bounds, lengths and patterns are read from the request models, never restated here; the
rows a column check refuses are then validated by the request model itself, so their
reasons are pydantic's own messages, the ones the API's 400s carry.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)
def bounds(schema: type[BaseModel], fields: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(ge, le) of each field as float64 [fields, 1] columns; -inf and inf where unbounded.
    Once per schema and fields: reading them from the model's metadata cost more than
    comparing a chunk's values with them."""
    low = [constraint(schema, field, annotated_types.Ge, "ge") for field in fields]
    high = [constraint(schema, field, annotated_types.Le, "le") for field in fields]
    arrays = (
        np.array([-np.inf if v is None else v for v in low], np.float64)[:, None],
        np.array([np.inf if v is None else v for v in high], np.float64)[:, None],
    )
    for array in arrays:
        array.flags.writeable = False  # shared by every call
    return arrays


def check_numbers(
    frame: pd.DataFrame, schema: type[BaseModel], fields: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(values float64 [fields, N], valid [N]) for numeric fields, all fields at once: a few
    comparisons over one matrix instead of several per column (the per-call overhead, not
    the arithmetic, was the cost). Integer fields must also be whole numbers."""
    values = np.empty((len(fields), len(frame)), np.float64)
    for row, field in zip(values, fields, strict=True):
        row[:] = as_numbers(frame[field])
    low, high = bounds(schema, tuple(fields))
    ok = (values >= low) & (values <= high)  # NaN is refused by both comparisons
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        ok &= np.isfinite(values)  # an unbounded side would let an infinity through
    whole = [i for i, f in enumerate(fields) if schema.model_fields[f].annotation is int]
    if whole:
        ok[whole] &= np.mod(np.where(ok[whole], values[whole], 0), 1) == 0
    return values, ok.all(axis=0)


def as_numbers(column: pd.Series) -> np.ndarray:
    """float64 [N]; NaN for missing and non-numeric cells (booleans are not numbers)."""
    if column.dtype == np.float64:  # the usual case, first: the checks below cost more
        return column.to_numpy()
    if pd.api.types.is_bool_dtype(column):
        return np.full(len(column), np.nan)
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(np.float64, na_value=np.nan)
    if column.dtype == object and column.map(lambda v: isinstance(v, bool)).any():
        column = column.map(lambda v: None if isinstance(v, bool) else v)
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def is_text(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(column) and column.dtype != object:
        return column.notna().to_numpy()
    return column.map(lambda v: isinstance(v, str)).to_numpy(bool)


def check_text(
    column: pd.Series, schema: type[BaseModel], field: str
) -> tuple[np.ndarray, np.ndarray]:
    """(cleaned values, valid) for a text field: a string within the field's lengths and
    matching its pattern."""
    ok = np.array(is_text(column), bool)  # a copy: pandas hands out read-only arrays
    text = column.where(ok, "").astype(str)
    lengths = text.str.len().to_numpy()
    if (shortest := constraint(schema, field, annotated_types.MinLen, "min_length")) is not None:
        ok &= lengths >= shortest
    if (longest := constraint(schema, field, annotated_types.MaxLen, "max_length")) is not None:
        ok &= lengths <= longest
    if (pattern := constraint(schema, field, type(None), "pattern")) is not None:
        ok &= text.str.fullmatch(re.compile(pattern)).to_numpy(bool, na_value=False)
    return text.to_numpy(object), ok


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
    numeric = [f for f in fields if schema.model_fields[f].annotation in (float, int)]
    numbers, ok = check_numbers(frame, schema, numeric)
    for field, row in zip(numeric, numbers, strict=True):
        integer = schema.model_fields[field].annotation is int
        values[field] = np.where(ok, row, 0).astype(np.int64) if integer else row
    for field in fields:
        annotation = schema.model_fields[field].annotation
        if annotation is str:
            values[field], valid = check_text(frame[field], schema, field)
            ok &= valid
        elif field not in values:
            raise TypeError(f"{schema.__name__}.{field}: no column check for {annotation}")
    values = {field: values[field] for field in fields}  # in the fields' order
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
