"""Every setting of the bundle, read from the environment once, when a process starts.

Each setting is one ``MODEL_BUNDLE_*`` variable, typed and range-checked: a bad value stops
the process at start with an error naming the variable, instead of surfacing on some later
request. An unknown ``MODEL_BUNDLE_*`` variable is refused too (a typo such as
``MODEL_BUNDLE_API_KEY`` must not silently leave authentication off), and so are the names
these settings had before they shared the prefix.

Values that depend on one another are derived here, not repeated: a runner's timeout and
concurrency follow from the front's (see :attr:`Settings.runner_timeout_s`).

BentoML's own variables (``BENTOML_CONFIG_OVERRIDES``, ``BENTOML_DO_NOT_TRACK``, ...) are
BentoML's business and are not read here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_bundle.catalogue import CATALOGUE
from models.mask.images import DEFAULT_MAX_PIXELS

PREFIX = "MODEL_BUNDLE_"


class SettingsError(ValueError):
    """A setting's value is not acceptable; the message names the variable."""


def words(text: str) -> tuple[str, ...]:
    """Comma-separated values, blanks dropped."""
    return tuple(value.strip() for value in text.split(",") if value.strip())


def integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:,} and {high:,}, got {value:,}")
        return value

    return parse


def seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"must be a number of seconds, got {text!r}") from None
        if not low <= value <= high:  # also refuses NaN
            raise ValueError(f"must be between {low:g} and {high:g} seconds, got {text!r}")
        return value

    return parse


def switch(on: str, off: str) -> Callable[[str], bool]:
    def parse(text: str) -> bool:
        value = text.strip().lower()
        if value not in (on, off):
            raise ValueError(f"must be {on!r} or {off!r}, got {text!r}")
        return value == on

    return parse


def fraction(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:  # also refuses NaN
        raise ValueError(f"must be between 0 and 1, got {text!r}")
    return value


def directory(text: str) -> Path:
    return Path(text.strip()).expanduser()


def model_tag(text: str) -> str:
    """A model-store tag, ``name:version`` (``name`` alone means ``name:latest``). The name may
    differ from the served one (a model imported under a name of its own); the runner checks
    at load that the artifact fits."""
    import bentoml  # lazy: its import costs nothing until a tag is read

    try:
        tag = bentoml.Tag.from_taglike(text.strip())
    except Exception:  # ValueError or BentoMLException, by what is wrong
        raise ValueError(f"must be a model tag such as name:version, got {text!r}") from None
    return f"{tag.name}:{tag.version or 'latest'}"


@dataclass(frozen=True)
class Declared:
    """One setting: its variable, how its text is read, its default and what it does."""

    field: str
    variable: str
    parse: Callable[[str], Any]
    default: Any
    default_text: str
    meaning: str
    renamed_from: str | None = None


def declare(
    field: str,
    parse: Callable[[str], Any],
    default: Any,
    meaning: str,
    default_text: str | None = None,
    renamed_from: str | None = None,
) -> Declared:
    text = default_text if default_text is not None else str(default)
    return Declared(
        field, PREFIX + field.upper(), parse, default, text, meaning, renamed_from=renamed_from
    )


SETTINGS: tuple[Declared, ...] = (
    declare("api_keys", words, (), "comma-separated API keys; unset: no authentication", "unset"),
    declare(
        "admin_keys",
        words,
        (),
        "comma-separated keys of the admin API (`/admin/...`, model versions); unset: the "
        "admin API is off (404)",
        "unset",
    ),
    declare(
        "state_dir",
        directory,
        None,
        "where each model's routing state (primary, candidate, share ...) is kept; replicas "
        "sharing it serve the same versions",
        "$BENTOML_HOME/model_bundle-state",
    ),
    declare(
        "cors_origins",
        words,
        (),
        "comma-separated browser origins allowed to call the API; unset: none",
        "unset",
    ),
    declare(
        "max_concurrent_requests",
        integer(1, 100_000),
        128,
        "requests in flight beyond which the front answers 503 with Retry-After",
        renamed_from="MAX_CONCURRENT_REQUESTS",
    ),
    declare(
        "max_request_bytes",
        integer(1024, 2**31),
        10 * 1024 * 1024,
        "larger request bodies get 413",
        renamed_from="MAX_REQUEST_BYTES",
    ),
    declare(
        "max_image_pixels",
        integer(1, 10**9),
        DEFAULT_MAX_PIXELS,
        "larger images get 400 (decompression bombs)",
        renamed_from="MAX_IMAGE_PIXELS",
    ),
    declare(
        "request_timeout_s",
        seconds(1, 3600),
        30.0,
        "the front's request timeout (504 beyond it); runners get two thirds of it",
        "30",
    ),
    declare(
        "batching",
        switch("on", "off"),
        True,
        "`off` sends every model call on its own, neither merged in the front nor batched",
        "on",
    ),
    declare(
        "tracing",
        switch("true", "false"),
        False,
        "`true` keeps BentoML's OpenTelemetry spans (configure an exporter in BentoML's "
        "configuration)",
        "false",
    ),
    declare(
        "payload_sample_rate",
        fraction,
        0.1,
        "share of answered items whose inputs and outputs are logged under the state "
        "directory's `payloads/` (0 turns logging off)",
    ),
    declare(
        "drift_window",
        integer(10, 1_000_000),
        500,
        "live items per model the drift tests compare with the reference",
    ),
    declare(
        "drift_min_samples",
        integer(1, 1_000_000),
        100,
        "items a model's window needs before drift is tested",
    ),
    declare(
        "feedback_window",
        integer(1, 1_000_000),
        500,
        "feedback items per model version live accuracy / RMSE is computed over; the last "
        "100 times as many answers accept feedback",
    ),
    declare(
        "gc_young_threshold",
        integer(100, 10_000_000),
        10_000,
        "new objects between two young garbage collections in each serving process "
        "(Python's default is 700; docs/PERFORMANCE-GUIDE.md says why ours is higher)",
    ),
    *(
        declare(
            f"{entry.name}_model",
            model_tag,
            f"{entry.name}:latest",
            f"the {entry.name} version its runner serves",
            renamed_from=f"{entry.name.upper()}_MODEL",
        )
        for entry in CATALOGUE
    ),
)


@dataclass(frozen=True)
class Settings:
    """The settings in force, typed; :func:`from_environ` reads them."""

    api_keys: tuple[str, ...]
    admin_keys: tuple[str, ...]
    state_dir: Path
    cors_origins: tuple[str, ...]
    max_concurrent_requests: int
    max_request_bytes: int
    max_image_pixels: int
    request_timeout_s: float
    batching: bool
    tracing: bool
    payload_sample_rate: float
    drift_window: int
    drift_min_samples: int
    feedback_window: int
    gc_young_threshold: int
    model_tags: Mapping[str, str]

    @property
    def runner_timeout_s(self) -> float:
        """A runner gives up (504) before the front does, so the front can answer a clear 503
        naming the runner rather than its own bare 504."""
        return self.request_timeout_s * 2 / 3

    @property
    def runner_max_concurrency(self) -> int:
        """Twice what the front ever sends: a safeguard, never reached in normal operation
        (its 429 becomes a 503 for the client)."""
        return 2 * self.max_concurrent_requests

    def model_tag(self, name: str) -> str:
        """The tag the runner of store name ``name`` serves."""
        return self.model_tags[name]

    def tracing_config(self) -> dict[str, Any]:
        """BentoML's ``tracing`` service config: every URL excluded unless tracing is on.
        BentoML opens a span for every request even with no exporter to send it to."""
        return {} if self.tracing else {"excluded_urls": [".*"]}


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise :class:`SettingsError` naming each bad variable."""
    environ = os.environ if environ is None else environ
    problems = []
    known = {setting.variable for setting in SETTINGS}
    for variable in sorted(environ):
        if variable.startswith(PREFIX) and variable not in known:
            problems.append(f"{variable}: not a setting of model_bundle")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.renamed_from and setting.renamed_from in environ:
            problems.append(f"{setting.renamed_from}: renamed to {setting.variable}")
        text = environ.get(setting.variable)
        if text is None or not text.strip():
            values[setting.field] = setting.default
            continue
        try:
            values[setting.field] = setting.parse(text)
        except ValueError as error:
            problems.append(f"{setting.variable}: {error}")
    if problems:
        raise SettingsError("; ".join(problems))
    tags = {entry.name: values.pop(f"{entry.name}_model") for entry in CATALOGUE}
    if values["state_dir"] is None:  # BentoML's own default home
        home = environ.get("BENTOML_HOME") or str(Path.home() / "bentoml")
        values["state_dir"] = Path(home) / "model_bundle-state"
    return Settings(**values, model_tags=tags)


# Read once, when the process imports its code: every module uses this one object.
settings = from_environ()
