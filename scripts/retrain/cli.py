"""Retrain a model on new data and send it out if it beats what is served.

    python -m scripts.retrain MODEL [the family's data options] [--margin 0.02]
        [--rollout canary|shadow|none] [--share 20] [--min-answers 200] [--min-feedback 0]
        [--if-drift] [--url URL] [--admin-key KEY] [--api-key KEY]

    credit_health, iris:  --data new.csv ... [--holdout clean.csv] [--feedback DIR | --no-feedback]
                          [--epochs 40]
    book_rating:          --ratings new.csv ... [--data-dir DIR] [--layout boostcamp|ids]
                          [--epochs 30]
    mask_classifier:      --photos DIR [--no-base] [--per-class 40] [--epochs 25]
                          [--from-scratch] [--temperature-scaling]

1. Asks the bundle what it serves (the primary to beat); with ``--if-drift``, stops unless
   the bundle's drift report says the model drifts.
2. Reads the new data (the family's: for the tabular models the files, CSV or Parquet with
   the features and ``label`` checked by the API's own rules, and the feedback the bundle
   joined to its answers, from its feedback log; for book_rating the new ``user_id, isbn,
   rating`` rows, checked as the training data is, added to the Boostcamp CSVs of
   ``--data-dir`` or by default to the generated sample the default version is trained on;
   for mask_classifier the photos of DIR/<class id 0..17>/, decoded as uploads are, added
   to the synthetic faces unless ``--no-base``).
3. Idempotent: the rows' hash is the new version's ``lineage.data_hash``; when the store
   holds a version with it, nothing is trained again (a run interrupted after training
   resumes at the decision).
4. Trains on all rows but a held-out part (20 % of the rows; of the new ratings; a fifth of
   every class of the new photos; or, tabular, all rows when ``--holdout`` is given),
   stores the version with its lineage (parent, data hash, rows, files) and, when
   ``MLFLOW_TRACKING_URI`` is set, an MLflow run.
5. Judges the primary and the new version on the same held-out rows, through the code that
   serves them (balanced accuracy for classifiers, RMSE for ratings). Only one better by
   ``--margin`` goes out, as a candidate under a rollout policy (docs/VERSIONS.md): the
   bundle moves it on while its live figures hold and removes it when they worsen. A worse
   one stays in the store, never served; nothing is ever deleted.

Exit status: 0 done (out, not better, or nothing new), 1 the bundle refused the candidate,
2 bad input or the bundle unreachable. A failure at any step leaves serving as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

from model_bundle import admin
from models.artifact import stored_versions
from models.tabular.contract import TASKS
from scripts.retrain.books import BooksFamily
from scripts.retrain.evaluate import decide
from scripts.retrain.family import Family
from scripts.retrain.mask import MaskFamily
from scripts.retrain.rows import DataError
from scripts.retrain.tabular import TabularFamily

MIN_ROWS = 50  # fewer labelled rows than this cannot be split and judged
FAMILIES: dict[str, Family] = {name: TabularFamily(task) for name, task in TASKS.items()}
FAMILIES.update(book_rating=BooksFamily(), mask_classifier=MaskFamily())


def parser(family: Family | None = None) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m scripts.retrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("model", choices=sorted(FAMILIES), help="the bundle's model")
    top.add_argument("--name", help="store name (default: the model's)")
    top.add_argument("--margin", type=float, default=0.02, help="required gain (default 0.02)")
    top.add_argument("--rollout", choices=("canary", "shadow", "none"), default="canary")
    top.add_argument("--share", type=float, default=20.0, help="canary share, percent")
    top.add_argument("--min-answers", type=int, default=200)
    top.add_argument("--min-feedback", type=int, default=0)
    top.add_argument("--if-drift", action="store_true", help="only when the model drifts")
    top.add_argument("--seed", type=int, default=0)
    top.add_argument("--url", default=os.environ.get("BUNDLE_URL", "http://localhost:3000"))
    top.add_argument("--admin-key", default=os.environ.get("BUNDLE_ADMIN_KEY"))
    top.add_argument("--api-key", default=os.environ.get("BUNDLE_API_KEY"))
    if family is not None:
        family.add_options(top)
    return top


def drifting(url: str, api_key: str | None, model: str) -> str:
    """The bundle's drift status of ``model`` (ok, drift, collecting, no_reference)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    answer = httpx.post(f"{url}/drift", json={"model": model}, headers=headers, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["models"][0]["status"])


def registered_with(name: str, digest: str) -> str | None:
    """The stored version of ``name`` trained on exactly this data, if any."""
    for model in stored_versions(name):
        if (model.info.metadata.get("lineage") or {}).get("data_hash") == digest:
            return str(model.tag)
    return None


def send_out(options: argparse.Namespace, tag: str, reasons: tuple[str, ...]) -> int:
    """Load ``tag`` as the candidate under the rollout policy; 0, or 1 when refused."""
    policy = {"min_answers": options.min_answers, "min_feedback": options.min_feedback}
    policy["canary_share"] = options.share
    body: dict[str, Any] = {"tag": tag, "mode": options.rollout, "by": "retrain"}
    body.update(share=options.share if options.rollout == "canary" else 0.0, rollout=policy)
    headers = {"Authorization": f"Bearer {options.admin_key}"} if options.admin_key else {}
    path = f"{options.url}/admin/models/{options.model}/candidate"
    answer = httpx.post(path, json=body, headers=headers, timeout=admin.TIMEOUT_S)
    print(json.dumps(answer.json(), indent=1) if answer.is_success else answer.text)
    if not answer.is_success:
        print(f"retrain: the bundle refused {tag}: {answer.status_code}", file=sys.stderr)
        return 1
    print(f"retrain: {tag} is out as a {options.rollout} ({'; '.join(reasons)})")
    return 0


def run(options: argparse.Namespace, family: Family) -> int:
    served = admin.served(options.url, options.admin_key, options.model)
    primary = served["primary"]
    if options.if_drift:
        status = drifting(options.url, options.api_key, options.model)
        if status != "drift":
            print(f"retrain: {options.model} does not drift ({status}); nothing to do")
            return 0
    data = family.read(options)
    if family.size(data) < MIN_ROWS:
        raise DataError(f"{family.size(data)} labelled rows; a retrain needs {MIN_ROWS}")
    digest = family.digest(options, data)
    rows, holdout = family.split(options, data)
    tag = registered_with(options.name or options.model, digest)
    if tag is not None:
        print(f"retrain: this data trained {tag} already; nothing new is registered")
    else:
        lineage = {"parent": primary, "data_hash": digest, "rows": family.size(data)}
        tag = family.train(options, rows, holdout, {**lineage, "trained_by": "scripts.retrain"})
    if tag in (primary, served.get("candidate")):
        print(f"retrain: {tag} is served already ({'primary' if tag == primary else 'candidate'})")
        return 0
    ours, theirs = family.score(tag, holdout), family.score(primary, holdout)
    decision = decide(ours, theirs, options.margin, family.measure)
    print(f"retrain: {tag} vs {primary}, the same held-out rows: {decision.reasons[0]}")
    if not decision.deploy:
        print(f"retrain: {tag} stays in the store, not served")
        return 0
    if options.rollout == "none":
        print(f"retrain: {tag} is better; --rollout none: not sent out")
        return 0
    return send_out(options, tag, decision.reasons)


def main(argv: list[str] | None = None) -> int:
    which = argparse.ArgumentParser(add_help=False)
    which.add_argument("model", nargs="?", choices=sorted(FAMILIES))
    family = FAMILIES.get(which.parse_known_args(argv)[0].model or "")
    options = parser(family).parse_args(argv)  # without a model: its usage, exit 2
    assert family is not None
    try:
        return run(options, family)
    except (DataError, admin.UnreachableError, httpx.HTTPError) as error:
        print(f"retrain: {error}", file=sys.stderr)
        return 2
