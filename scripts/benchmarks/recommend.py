"""Benchmark: top-10 books for one user over a competition-sized catalogue.

    python -m scripts.benchmarks.recommend [--size competition] [--users 50]

Compares ``BookRatingModel.recommend`` (the FFM's structure: book-only part precomputed,
cross terms as matrix-vector products per book field) with the brute-force forward over
every book. Weights are random: speed does not depend on them. Prints a table and writes
``docs/PERFORMANCE-recommend.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from models.books.featurizer import BookCatalogue, BookFeaturizer
from models.books.model import BookRatingModel
from models.books.network import FieldAwareFactorizationMachine
from scripts.sample_data import books as book_sample
from scripts.train.book_data import load_boostcamp

REPORT = Path(__file__).resolve().parents[2] / "docs" / "PERFORMANCE-recommend.md"


def timed_ms(function: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(size: str, users: int, embed_dim: int) -> str:
    torch.set_num_threads(1)  # as in the runner
    with tempfile.TemporaryDirectory() as tmp:
        data = load_boostcamp(book_sample.write(Path(tmp), size))
    featurizer = BookFeaturizer.fit(data.users, data.books, data.train, data.test, data.submission)
    catalogue = BookCatalogue.fit(data.books, data.train, featurizer)
    model = FieldAwareFactorizationMachine(featurizer.field_dims, embed_dim)
    started = time.perf_counter()
    books = BookRatingModel(model, featurizer, catalogue, "raw")
    precompute_ms = (time.perf_counter() - started) * 1000
    all_isbns = featurizer.isbns.tolist()

    def brute_force(user_id: int) -> None:
        x = featurizer.encode([user_id] * len(all_isbns), all_isbns).x
        with torch.inference_mode():
            torch.topk(model(torch.from_numpy(x)), 10)

    user_ids = featurizer.user_ids[:users].tolist()
    fast = [t for u in user_ids for t in timed_ms(lambda u=u: books.recommend(u, 10), 1)]
    slow = [t for u in user_ids[:5] for t in timed_ms(lambda u=u: brute_force(u), 1)]
    rows = [
        ("recommend_books (structured)", statistics.median(fast), max(fast)),
        ("brute-force forward + top-k", statistics.median(slow), max(slow)),
    ]
    table = "\n".join(
        [
            "| path | p50 ms | max ms |",
            "|---|---|---|",
            *(f"| {name} | {p50:.1f} | {worst:.1f} |" for name, p50, worst in rows),
        ]
    )
    report = (
        f"# Top-10 recommendation for one user\n\n"
        f"Catalogue: {len(all_isbns):,} books, {len(featurizer.user_ids):,} users, "
        f"{len(data.train):,} ratings (`scripts.sample_data.books --size {size}`), FFM with 10 "
        f"fields, embedding size {embed_dim}, one torch thread, "
        f"{platform.machine()} {platform.processor() or ''} ({torch.get_num_threads()} thread).\n"
        f"Precomputing the book-only part at load: {precompute_ms:.0f} ms.\n\n{table}\n\n"
        f"Speed-up at p50: {rows[1][1] / rows[0][1]:.0f}x. Reproduce: "
        f"`python -m scripts.benchmarks.recommend --size {size}`.\n"
    )
    print(report)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=book_sample.SIZES, default="competition")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--write", action="store_true", help=f"write {REPORT.name}")
    args = parser.parse_args()
    text = main(args.size, args.users, args.embed_dim)
    if args.write:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(text)
