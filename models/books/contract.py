"""The book-rating model's contract, torch-free: what its answers mean.

The featurisation of (user, book) pairs is torch-free too (:mod:`models.books.featurizer`);
the network and its loading are in :mod:`models.books.network` and :mod:`models.books.model`.
"""

from __future__ import annotations

# Why a pair is a cold start, by (user known, book known): the fallback answered.
COLD_REASONS: dict[tuple[bool, bool], str] = {
    (False, True): "unknown_user",
    (True, False): "unknown_book",
    (False, False): "unknown_user_and_book",
}
