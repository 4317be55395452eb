"""Settings: one prefix, typed and range-checked at start, coupled values derived."""

from __future__ import annotations

import pytest

from model_bundle.catalogue import CATALOGUE
from model_bundle.settings import SETTINGS, SettingsError, from_environ
from tests.support.commands import fresh_python


def test_defaults() -> None:
    settings = from_environ({})
    assert settings.api_keys == () and settings.cors_origins == ()
    assert settings.max_concurrent_requests == 128
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert settings.max_image_pixels == 40_000_000
    assert settings.request_timeout_s == 30
    assert settings.batching is True and settings.tracing is False
    assert settings.model_tags == {entry.name: f"{entry.name}:latest" for entry in CATALOGUE}


def test_every_setting_shares_the_prefix_and_every_served_model_has_a_tag_setting() -> None:
    variables = [setting.variable for setting in SETTINGS]
    assert all(variable.startswith("MODEL_BUNDLE_") for variable in variables)
    assert len(set(variables)) == len(variables)
    for entry in CATALOGUE:
        assert f"MODEL_BUNDLE_{entry.name.upper()}_MODEL" in variables


def test_values_are_read_typed() -> None:
    settings = from_environ(
        {
            "MODEL_BUNDLE_API_KEYS": " first , second,, ",
            "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS": "8",
            "MODEL_BUNDLE_REQUEST_TIMEOUT_S": "12",
            "MODEL_BUNDLE_BATCHING": "OFF",
            "MODEL_BUNDLE_IRIS_MODEL": "iris:abc123",
            "MODEL_BUNDLE_BOOK_RATING_MODEL": "my_books",  # a name alone means its latest
        }
    )
    assert settings.api_keys == ("first", "second")
    assert settings.max_concurrent_requests == 8
    assert settings.batching is False
    assert settings.model_tag("iris") == "iris:abc123"
    assert settings.model_tag("book_rating") == "my_books:latest"
    assert settings.request_timeout_s == 12


def test_coupled_values_are_derived() -> None:
    """A runner gives up before the front and accepts twice what the front sends."""
    for timeout, capacity in [("30", "128"), ("9", "4")]:
        settings = from_environ(
            {
                "MODEL_BUNDLE_REQUEST_TIMEOUT_S": timeout,
                "MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS": capacity,
            }
        )
        assert settings.runner_timeout_s == pytest.approx(float(timeout) * 2 / 3)
        assert settings.runner_timeout_s < settings.request_timeout_s
        assert settings.runner_max_concurrency == 2 * int(capacity)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MODEL_BUNDLE_MAX_REQUEST_BYTES": "ten"}, "MODEL_BUNDLE_MAX_REQUEST_BYTES: must be a"),
        ({"MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS": "0"}, "MAX_CONCURRENT_REQUESTS: must be betw"),
        ({"MODEL_BUNDLE_REQUEST_TIMEOUT_S": "nan"}, "MODEL_BUNDLE_REQUEST_TIMEOUT_S: must be"),
        ({"MODEL_BUNDLE_TRACING": "yes"}, "MODEL_BUNDLE_TRACING: must be 'true' or 'false'"),
        ({"MODEL_BUNDLE_IRIS_MODEL": "not a tag!"}, "MODEL_BUNDLE_IRIS_MODEL: must be a model"),
        ({"MODEL_BUNDLE_IRIS_MODEL": "iris:"}, "MODEL_BUNDLE_IRIS_MODEL: must be a model tag"),
        ({"MODEL_BUNDLE_API_KEY": "k"}, "MODEL_BUNDLE_API_KEY: not a setting of model_bundle"),
        ({"MAX_CONCURRENT_REQUESTS": "8"}, "renamed to MODEL_BUNDLE_MAX_CONCURRENT_REQUESTS"),
        ({"CREDIT_HEALTH_MODEL": "credit_health:x"}, "renamed to MODEL_BUNDLE_CREDIT_HEALTH"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_variable(environ: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_environ(environ)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        from_environ({"MODEL_BUNDLE_BATCHING": "maybe", "MODEL_BUNDLE_MAX_IMAGE_PIXELS": "-1"})
    assert "MODEL_BUNDLE_BATCHING" in str(refused.value)
    assert "MODEL_BUNDLE_MAX_IMAGE_PIXELS" in str(refused.value)


def test_a_process_with_a_bad_setting_stops_at_start_naming_it() -> None:
    """Importing the service (what `bentoml serve` does first) fails, before any request."""
    env = {"MODEL_BUNDLE_MAX_REQUEST_BYTES": "lots", "BENTOML_DO_NOT_TRACK": "true"}
    result = fresh_python("import service", env=env)
    assert result.returncode != 0
    assert "SettingsError: MODEL_BUNDLE_MAX_REQUEST_BYTES: must be a whole number" in result.stderr
