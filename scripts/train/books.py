"""Train the default book-rating FFM (RMSE loss, early stopping) and store it as ``book_rating``.

    python -m scripts.train.books [--data-dir DIR] [--layout boostcamp|ids] [--seed 0]

Without --data-dir it trains on the generated sample (scripts.sample_data.books, size "small").
Reports validation RMSE next to two baselines it must beat: the global mean and a
regularised user + book bias model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from model_bundle.catalogue import BOOK_RATING
from model_bundle.monitoring.reference import books_reference
from models.artifact import data_hash
from models.books.featurizer import BookCatalogue, BookFeaturizer, Layout
from models.books.model import BookRatingModel
from models.books.network import FieldAwareFactorizationMachine
from scripts.sample_data import books as book_sample
from scripts.train.book_data import BookData, load_boostcamp
from scripts.train.threads import one_thread
from scripts.train.tracking import log_training_run

OUTPUT = "raw"  # the network's output is the rating itself (not pytorch-fm's sigmoid)


@dataclass(frozen=True)
class FFMConfig:
    embed_dim: int = 8
    learning_rate: float = 5e-3
    weight_decay: float = 1e-5
    batch_size: int = 512
    max_epochs: int = 30
    # The best epoch is kept; on the default sample it came 3 epochs before the stop, so a
    # patience of 2 keeps the same model one epoch sooner.
    patience: int = 2
    validation_fraction: float = 0.2
    seed: int = 0


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def bias_baseline(
    users: np.ndarray,
    books: np.ndarray,
    y: np.ndarray,
    sizes: tuple[int, int],
    reg: float = 5.0,
    iterations: int = 10,
) -> tuple[float, np.ndarray, np.ndarray]:
    """mean + user bias + book bias, fitted by alternating regularised least squares."""
    mean = float(y.mean())
    user_bias, book_bias = np.zeros(sizes[0]), np.zeros(sizes[1])
    for _ in range(iterations):
        residual = y - mean - book_bias[books]
        user_bias = np.bincount(users, residual, len(user_bias)) / (
            np.bincount(users, minlength=len(user_bias)) + reg
        )
        residual = y - mean - user_bias[users]
        book_bias = np.bincount(books, residual, len(book_bias)) / (
            np.bincount(books, minlength=len(book_bias)) + reg
        )
    return mean, user_bias, book_bias


def split_rows(rows: int, config: FFMConfig) -> tuple[np.ndarray, np.ndarray]:
    """The seeded (training, validation) row indices: the validation part is held out."""
    order = np.random.default_rng(config.seed).permutation(rows)
    cut = int(rows * (1 - config.validation_fraction))
    return order[:cut], order[cut:]


def training_reference(books: BookRatingModel, data: BookData, config: FFMConfig) -> dict[str, Any]:
    """The drift reference: cold-start shares over the pairs the model is asked to rate (the
    test ratings; the held-out pairs when there are none) and the ratings it predicts for the
    held-out pairs."""
    valid = data.train.iloc[split_rows(len(data.train), config)[1]]
    asked = data.test if len(data.test) else valid
    reasons = books.rate_arrays(asked["user_id"].tolist(), asked["isbn"].tolist()).reasons()
    ratings = books.rate_arrays(valid["user_id"].tolist(), valid["isbn"].tolist()).ratings
    return books_reference(reasons, ratings.tolist())


def fit_ffm(
    x: np.ndarray, y: np.ndarray, field_dims: tuple[int, ...], config: FFMConfig
) -> tuple[FieldAwareFactorizationMachine, dict[str, float]]:
    """Train with MSE on a seeded split; keep the weights of the best validation epoch."""
    torch.manual_seed(config.seed)
    train, valid = split_rows(len(x), config)
    x_train, y_train = torch.from_numpy(x[train]), torch.from_numpy(y[train]).float()
    x_valid, y_valid = torch.from_numpy(x[valid]), y[valid]

    model = FieldAwareFactorizationMachine(field_dims, config.embed_dim)
    with torch.no_grad():
        model.linear.bias.fill_(float(y_train.mean()))  # start at the mean rating
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    best = (float("inf"), 0, model.state_dict())
    baseline = bias_baseline(x[train, 0], x[train, 1], y[train], field_dims[:2])
    mean, user_bias, book_bias = baseline
    metrics = {
        "global_mean_rmse": rmse(np.full(len(valid), y[train].mean()), y_valid),
        "bias_rmse": rmse(mean + user_bias[x[valid, 0]] + book_bias[x[valid, 1]], y_valid),
    }
    with Progress() as progress:
        epochs = progress.add_task("FFM epochs", total=config.max_epochs)
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            for batch in torch.randperm(len(x_train), generator=generator).split(config.batch_size):
                optimiser.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x_train[batch]), y_train[batch])
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.inference_mode():
                valid_rmse = rmse(model(x_valid).numpy(), y_valid)
            progress.update(
                epochs, advance=1, description=f"epoch {epoch} valid RMSE {valid_rmse:.4f}"
            )
            if valid_rmse < best[0]:
                best = (valid_rmse, epoch, {k: v.clone() for k, v in model.state_dict().items()})
            elif epoch - best[1] >= config.patience:
                break
    model.load_state_dict(best[2])
    metrics.update(
        valid_rmse=best[0],
        best_epoch=best[1],
        epochs=epoch,
        train_rows=len(train),
        valid_rows=len(valid),
    )
    return model.eval(), {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


@one_thread()
def train_on(
    data: BookData,
    layout: Layout,
    config: FFMConfig,
    source: str,
    name: str = BOOK_RATING.name,
    lineage: dict[str, Any] | None = None,
) -> str:
    """Train, store as ``name`` and log the run to MLflow when asked; return the store tag.
    ``lineage``: stored as it is (a retrain's parent version, data hash and rows)."""
    started = time.perf_counter()
    featurizer = BookFeaturizer.fit(
        data.users, data.books, data.train, data.test, data.submission, layout
    )
    catalogue = BookCatalogue.fit(data.books, data.train, featurizer)
    encoded = featurizer.encode(data.train["user_id"].tolist(), data.train["isbn"].tolist())
    y = data.train["rating"].to_numpy(np.float32)
    print(
        f"book_rating: {len(y)} ratings, {len(featurizer.user_ids)} users, "
        f"{len(featurizer.isbns)} books, fields {featurizer.field_dims}"
    )
    model, metrics = fit_ffm(encoded.x, y, featurizer.field_dims, config)
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"book_rating: validation RMSE {metrics['valid_rmse']:.4f} (global mean "
        f"{metrics['global_mean_rmse']:.4f}, user+book bias {metrics['bias_rmse']:.4f})"
    )
    books = BookRatingModel(model, featurizer, catalogue, OUTPUT)
    digest = data_hash(data.train, data.users, data.books)
    metadata: dict[str, Any] = {
        "metrics": metrics,
        "data_hash": digest,
        "source": source,
        "age_fill": featurizer.age_fill,
        "reference": training_reference(books, data, config),
    }
    if lineage is not None:
        metadata["lineage"] = lineage
    tag = books.save(metadata, name=name)
    print(f"book_rating: saved {tag}")
    log_training_run(
        name,
        params={**asdict(config), "layout": layout, "output": OUTPUT, "data_hash": digest},
        metrics=metrics,
        state_dict=model.state_dict(),
        tag=tag,
        write_tables=books.write_tables,
    )
    return tag


def train(data_dir: Path | None = None, layout: Layout = "boostcamp", seed: int = 0) -> str:
    if data_dir is not None:
        data = load_boostcamp(data_dir)
        print(data.report.summary())
        return train_on(data, layout, FFMConfig(seed=seed), f"scripts.train.books ({data_dir})")
    return train_on(
        sample(seed), layout, FFMConfig(seed=seed), f"scripts.train.books ({SAMPLE} seed={seed})"
    )


SAMPLE = "book_sample small"  # what the default version is trained on


def sample(seed: int = 0) -> BookData:
    """The generated sample the default version is trained on (size "small"), read back as
    the CSVs are: the same frames a retrain starts from."""
    with tempfile.TemporaryDirectory() as tmp:
        return load_boostcamp(book_sample.write(Path(tmp), "small", seed))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="Boostcamp-format CSVs (default: sample)")
    parser.add_argument("--layout", choices=("boostcamp", "ids"), default="boostcamp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(args.data_dir, args.layout, args.seed)
