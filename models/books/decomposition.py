"""The FFM's raw score split exactly into its terms, and said in words.

    score = bias + sum_f w(x_f) + sum_{i<j} <v(x_i, field j), v(x_j, field i)>

Every term is one number; they sum to the score the network returns (to float rounding).
The rating is that score through ``output`` (raw or 1 + 9 * sigmoid) clipped to [1, 10]:
the terms explain the score, and the rating follows from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.books.network import FieldAwareFactorizationMachine

# How each field reads in a sentence ("the author, for this user: +1.2").
FIELD_WORDS: dict[str, str] = {
    "user_id": "this user",
    "isbn": "this book",
    "age": "the user's age group",
    "location_city": "the user's city",
    "location_state": "the user's region",
    "location_country": "the user's country",
    "category": "the book's category",
    "publisher": "the publisher",
    "language": "the book's language",
    "book_author": "the author",
}


def words(field: str) -> str:
    return FIELD_WORDS.get(field, field)


@torch.inference_mode()
def decompose(
    model: FieldAwareFactorizationMachine, fields: tuple[str, ...], x: np.ndarray
) -> dict[str, Any]:
    """Terms of the raw score of one pair's per-field indices [F], in float64."""
    row = torch.as_tensor(x, dtype=torch.long)[None] + model.linear.offsets
    linear = model.linear.fc(row)[0, :, 0].double()  # [F]
    tables = model.ffm.embeddings
    terms: list[dict[str, Any]] = [
        {
            "kind": "bias",
            "fields": [],
            "text": "the average rating",
            "value": float(model.linear.bias.double()),
        },
    ]
    terms += [
        {"kind": "field", "fields": [f], "text": words(f), "value": float(linear[i])}
        for i, f in enumerate(fields)
    ]
    for i in range(len(fields)):
        for j in range(i + 1, len(fields)):
            left = tables[j].weight[row[0, i]].double()
            right = tables[i].weight[row[0, j]].double()
            value = float((left * right).sum())
            text = f"{words(fields[j])}, for {words(fields[i])}"
            terms.append(
                {
                    "kind": "interaction",
                    "fields": [fields[i], fields[j]],
                    "text": text,
                    "value": value,
                }
            )
    raw = float(model(torch.as_tensor(x, dtype=torch.long)[None])[0])
    return {"raw_score": raw, "terms": terms}


def top_terms(terms: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` terms of largest magnitude (bias excluded), largest first, each with a
    signed sentence."""
    ranked = sorted((t for t in terms if t["kind"] != "bias"), key=lambda t: -abs(t["value"]))
    return [{**t, "sentence": f"{t['text']}: {t['value']:+.2f}"} for t in ranked[:k]]


TOP = 5


def explain_pair(model: Any, user_id: int, isbn: str) -> dict[str, Any]:
    """A :class:`~models.books.model.BookRatingModel`'s rating of one pair, explained: the
    score's terms and the top ones in words, or which fallback answered and why."""
    [rating] = model.rate([(user_id, isbn)])
    if rating["cold_start"]:
        encoded = model.featurizer.encode([user_id], [isbn])
        book = int(encoded.x[0, model.featurizer.fields.index("isbn")])
        rated = bool(encoded.book_known[0]) and bool(model.catalogue.book_count[book])
        fallback = "the book's mean training rating" if rated else "the global mean rating"
        return {
            **rating,
            "explanation": {"available": False, "fallback": fallback, "reason": rating["reason"]},
        }
    x = model.featurizer.encode([user_id], [isbn]).x[0]
    parts = decompose(model.model, model.featurizer.fields, x)
    return {
        **rating,
        "explanation": {
            "available": True,
            "output": model.output,
            **parts,
            "top": top_terms(parts["terms"], TOP),
        },
    }
