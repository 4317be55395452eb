"""A synthetic book-rating data set in the Boostcamp competition's format, deterministic by seed.

    python -m scripts.sample_data.books DIR [--size small|competition] [--seed 0]

Ratings carry a planted structure an FFM can learn: user and book biases, latent tastes
tied to the users' age and country and to the books' category and author, plus noise.
The awkward cases of the real data are there too: missing ages, locations with extra or
missing parts and leading spaces, ISBNs with leading zeros and a trailing X, users with no
rating, books nobody rated.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Size:
    users: int
    books: int
    ratings: int


SIZES = {
    "tiny": Size(users=300, books=400, ratings=4000),
    "small": Size(users=1500, books=2000, ratings=30000),
    "competition": Size(users=68000, books=150000, ratings=300000),
}
COUNTRIES = ("usa", "canada", "united kingdom", "germany", "spain", "australia", "n/a")
CATEGORIES = (
    "['Fiction']",
    "['Juvenile Fiction']",
    "['Biography & Autobiography']",
    "['History']",
    "['Religion']",
    "['Cooking']",
    "['Science']",
    "['Poetry']",
)
LANGUAGES = ("en", "en", "en", "en", "de", "es", "fr")
WORDS = (
    "silent",
    "river",
    "night",
    "garden",
    "secret",
    "winter",
    "city",
    "stone",
    "dream",
    "house",
    "shadow",
    "light",
    "journey",
    "letter",
    "summer",
    "island",
)
TASTE = 4  # latent dimensions


def isbn(rng: np.random.Generator) -> str:
    digits = "".join(rng.choice(list("0123456789"), 9))
    return digits + rng.choice(list("0123456789X"))


def generate(size: Size, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    # users: location "city, state, country" with the real data's spaces and oddities
    country = rng.integers(0, len(COUNTRIES), size.users)
    state = rng.integers(0, 4, size.users)
    city = rng.integers(0, 6, size.users)
    locations = [
        f"city{c}{s}, state{s}{k}, {COUNTRIES[k]}"
        for c, s, k in zip(city, state, country, strict=True)
    ]
    for i in rng.choice(size.users, size.users // 50, replace=False):
        locations[i] = locations[i] + ", extra part"
    age = np.clip(rng.normal(36, 13, size.users), 8, 90).round()
    age_missing = rng.random(size.users) < 0.35
    users = pd.DataFrame(
        {
            "user_id": rng.choice(np.arange(8, 300000), size.users, replace=False),
            "location": locations,
            "age": np.where(age_missing, np.nan, age),
        }
    )

    silent = pd.DataFrame(  # in users.csv, never in a rating
        {
            "user_id": np.arange(300000, 300000 + max(1, size.users // 50)),
            "location": "nowhere, n/a, n/a",
            "age": 40.0,
        }
    )

    authors = [f"Author {i}" for i in range(max(5, size.books // 6))]
    publishers = [f"Publisher {i}" for i in range(max(5, size.books // 40))]
    isbns = list(dict.fromkeys(isbn(rng) for _ in range(size.books * 2)))[: size.books]
    book_author = rng.integers(0, len(authors), size.books)
    category = rng.integers(0, len(CATEGORIES), size.books)
    titles = [" ".join(rng.choice(WORDS, 3)).title() for _ in range(size.books)]
    books = pd.DataFrame(
        {
            "isbn": isbns,
            "book_title": titles,
            "book_author": [authors[a] for a in book_author],
            "year_of_publication": rng.integers(1950, 2006, size.books).astype(float),
            "publisher": rng.choice(publishers, size.books),
            "img_url": [f"http://images.amazon.com/images/P/{b}.01.THUMBZZZ.jpg" for b in isbns],
            "language": np.where(
                rng.random(size.books) < 0.2, None, rng.choice(LANGUAGES, size.books)
            ),
            "category": np.where(
                rng.random(size.books) < 0.3, None, np.array(CATEGORIES)[category]
            ),
            "summary": [f"A story of the {t.lower()}." for t in titles],
            "img_path": [f"images/{b}.01.THUMBZZZ.jpg" for b in isbns],
        }
    )

    # planted tastes: users by country and age group, books by category and author
    country_taste = rng.normal(0, 1, (len(COUNTRIES), TASTE))
    age_taste = rng.normal(0, 1, (8, TASTE))
    user_taste = 0.6 * country_taste[country] + 0.6 * age_taste[(age // 12).astype(int) % 8]
    user_taste += rng.normal(0, 0.5, (size.users, TASTE))
    category_taste = rng.normal(0, 1, (len(CATEGORIES), TASTE))
    author_taste = rng.normal(0, 0.7, (len(authors), TASTE))
    book_taste = category_taste[category] + author_taste[book_author]
    user_bias = rng.normal(0, 0.8, size.users)
    book_bias = rng.normal(0, 0.8, size.books)

    activity = rng.pareto(1.5, size.users) + 1
    popularity = rng.pareto(1.2, size.books) + 1
    pairs = (
        pd.DataFrame(
            {
                "u": rng.choice(size.users, size.ratings * 2, p=activity / activity.sum()),
                "b": rng.choice(size.books, size.ratings * 2, p=popularity / popularity.sum()),
            }
        )
        .drop_duplicates()
        .head(size.ratings)
    )
    u, b = pairs["u"].to_numpy(), pairs["b"].to_numpy()
    score = 7.0 + user_bias[u] + book_bias[b] + 0.5 * (user_taste[u] * book_taste[b]).sum(1)
    rating = np.clip(np.round(score + rng.normal(0, 1.0, len(u))), 1, 10).astype(int)
    ratings = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[u],
            "isbn": books["isbn"].to_numpy()[b],
            "rating": rating,
        }
    )

    test_mask = rng.random(len(ratings)) < 0.1
    train, test = ratings[~test_mask], ratings[test_mask].assign(rating=0)
    # a few users exist only in users.csv, a few books only in books.csv: nobody rated them
    return {
        "users": pd.concat([users, silent], ignore_index=True),
        "books": books,
        "train_ratings": train.reset_index(drop=True),
        "test_ratings": test.reset_index(drop=True),
        "sample_submission": test.reset_index(drop=True),
    }


def write(directory: Path, size: str = "small", seed: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in generate(SIZES[size], seed).items():
        frame.to_csv(directory / f"{name}.csv", index=False)
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {write(args.directory, args.size, args.seed)}")
