"""Import a model registered in MLflow into the model store, or sync an alias to the bundle.

    python -m scripts.imports.mlflow MODEL_URI --model credit_health|iris [--name NAME]
        [--scaler Normalization.pkl] [--tracking-uri URI]
    python -m scripts.imports.mlflow sync MODEL_URI --model credit_health --as primary|candidate
        [--url http://localhost:3000] [--admin-key KEY]

MODEL_URI is ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``; the registry is
``--tracking-uri`` or ``MLFLOW_TRACKING_URI``. The registered version's files may be a
``state_dict`` (``mlflow.pytorch.log_state_dict``), a TorchScript program logged with
``mlflow.pytorch.log_model`` (MLflow writes it with ``torch.jit.save`` as ``data/model.pth``) or
a torch.export program (``data/model.pt2``). A whole module pickled by ``log_model`` is refused:
loading it would run arbitrary code from the registry. The scaler of a tabular model is the
run's ``scaler.json`` artifact (``data_min``, ``data_max``, ``scale``, ``min``, as the training
scripts log it) or ``--scaler``, a joblib ``MinMaxScaler`` as for ``scripts.imports.credit``.

The artifact's metadata keeps the lineage (``mlflow``: registered name, version, aliases, run
id, the run's params and metrics). ``sync`` imports a version only once (the same registered
version is found in the store by that lineage) and then asks the running bundle, through the
admin API, to load it as candidate or to load and promote it. Needs the ``requirements-mlflow.txt``
extra; serving does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import httpx
import joblib
import torch

from model_bundle import admin
from models.tabular.contract import TASKS, TabularTask
from models.tabular.network import MinMaxScaler, TabularClassifier, tabular_metadata
from scripts.imports.checkpoints import check_logits, how_to_serve, save_imported
from scripts.imports.credit import read_network
from scripts.train.tracking import SCALER_FILE

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")
SUPPORTED = tuple(TASKS)  # the tabular models; the book and mask models are not imported yet


class RefusedError(ValueError):
    """An input this command will not import (a clear message, exit 2)."""


@dataclass(frozen=True)
class Registered:
    """One registered model version and the run that produced it."""

    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    source: str
    params: dict[str, str]
    metrics: dict[str, float]
    tracking_uri: str

    def lineage(self) -> dict[str, Any]:
        lineage = {
            "registered_name": self.name,
            "version": self.version,
            "aliases": self.aliases,
            "run_id": self.run_id,
            "source": self.source,
            "params": self.params,
            "metrics": self.metrics,
            "tracking_uri": self.tracking_uri,
        }
        return {key: value for key, value in lineage.items() if value is not None}


def connect(tracking_uri: str | None) -> Any:
    """An ``MlflowClient`` on the given registry (MLflow imported only here: it is optional)."""
    try:
        import mlflow
    except ImportError:
        raise RefusedError(
            "mlflow is not installed: pip install -r requirements-mlflow.txt"
        ) from None
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise RefusedError("say where the registry is: --tracking-uri or MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def resolve(client: Any, model_uri: str) -> Registered:
    """The registered version ``model_uri`` names, with its run's params and metrics."""
    from mlflow.exceptions import MlflowException

    match = URI.match(model_uri)
    if match is None:
        raise RefusedError(f"{model_uri!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    name = match["name"]
    try:
        if match["alias"]:
            found = client.get_model_version_by_alias(name, match["alias"])
        else:
            found = client.get_model_version(name, match["version"])
    except MlflowException as error:
        raise RefusedError(f"{model_uri} is not in the registry: {error.message}") from None
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if found.run_id:
        try:
            run = client.get_run(found.run_id)
            params, metrics = dict(run.data.params), dict(run.data.metrics)
        except MlflowException:
            pass  # a version registered from files outside any run keeps no run lineage
    return Registered(
        name=name,
        version=str(found.version),
        aliases=sorted(found.aliases or []),
        run_id=found.run_id or None,
        source=found.source,
        params=params,
        metrics=metrics,
        tracking_uri=client.tracking_uri,
    )


def weights_file(root: Path) -> Path:
    """The weights among a registered version's files; refuse a pickled whole module."""
    mlmodel = root / "MLmodel"
    if mlmodel.is_file():
        import yaml  # a dependency of mlflow

        flavours = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
        if "pytorch" not in flavours:
            raise RefusedError(f"the model has no pytorch flavour (flavours: {sorted(flavours)})")
        data = root / flavours["pytorch"].get("model_data", "data")
        if (data / "model.pt2").is_file():
            return data / "model.pt2"
        program = data / "model.pth"
        if program.is_file():
            try:
                torch.jit.load(program, map_location="cpu")
            except RuntimeError:
                raise RefusedError(
                    "the registered model is a pickled whole module (mlflow.pytorch.log_model "
                    "of an nn.Module): loading it would run arbitrary code. Register its "
                    "state_dict (mlflow.pytorch.log_state_dict), a TorchScript program "
                    "(torch.jit.script) or a torch.export program instead"
                ) from None
            return program
        raise RefusedError(f"no model.pth or model.pt2 under {data.relative_to(root)}")
    candidates = sorted(p for p in root.rglob("*") if p.suffix in (".pth", ".pt", ".pt2", ".ts"))
    if len(candidates) != 1:
        found = [str(p.relative_to(root)) for p in candidates]
        raise RefusedError(f"expected one weights file in the registered files, found {found}")
    return candidates[0]


def read_scaler(client: Any, registered: Registered, scaler_path: Path | None) -> MinMaxScaler:
    """``--scaler`` if given, else the run's ``scaler.json``."""
    if scaler_path is not None:
        return MinMaxScaler.from_sklearn(joblib.load(scaler_path))
    if registered.run_id is None:
        raise RefusedError("the version has no run to take scaler.json from: pass --scaler")
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = client.download_artifacts(registered.run_id, SCALER_FILE, directory)
        except Exception:
            raise RefusedError(
                f"run {registered.run_id} logged no {SCALER_FILE} "
                "(data_min, data_max, scale, min): pass --scaler"
            ) from None
        try:
            return MinMaxScaler.from_metadata(json.loads(Path(path).read_text()))
        except (KeyError, TypeError, ValueError) as error:
            raise RefusedError(
                f"{SCALER_FILE} of run {registered.run_id} is malformed: {error}"
            ) from None


def import_version(
    client: Any,
    registered: Registered,
    task: TabularTask,
    *,
    name: str | None = None,
    scaler_path: Path | None = None,
) -> str:
    """Download, check and store one registered version; return the new store tag."""
    scaler = read_scaler(client, registered, scaler_path)
    if len(scaler.scale) != len(task.features):
        raise RefusedError(
            f"the scaler has {len(scaler.scale)} features; {task.name} needs {len(task.features)}"
        )
    with tempfile.TemporaryDirectory() as directory:
        import mlflow

        uri = f"models:/{registered.name}/{registered.version}"
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=directory))
        path = weights_file(root)
        checkpoint, network, hidden = read_network(path, task)
    probe = torch.zeros(3, len(task.features))
    check_logits(TabularClassifier(scaler.module(), network), probe, len(task.labels))
    metadata = tabular_metadata(
        task,
        scaler,
        hidden=hidden,
        metrics=registered.metrics,
        data_hash=registered.params.get("data_hash"),
        source=f"mlflow {uri} (run {registered.run_id})",
    )
    metadata["mlflow"] = registered.lineage()
    return save_imported(name or task.name, metadata, checkpoint, network)


def stored_tag(name: str, registered: Registered) -> str | None:
    """The store's tag of an earlier import of the same registered version, if any."""
    try:
        models = bentoml.models.list(name)
    except bentoml.exceptions.NotFound:
        return None
    for model in models:
        lineage = model.info.metadata.get("mlflow") or {}
        if (
            lineage.get("registered_name") == registered.name
            and lineage.get("version") == registered.version
            and lineage.get("tracking_uri") == registered.tracking_uri
        ):
            return str(model.tag)
    return None


def served(url: str, admin_key: str | None, model: str) -> dict[str, Any]:
    """What the bundle serves for ``model`` now (primary, candidate): a sync run twice, or
    after a partial run, then does only what is left instead of a refused second load."""
    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    try:
        answer = httpx.get(f"{url}/admin/models", headers=headers, timeout=admin.TIMEOUT_S)
    except httpx.HTTPError as error:
        raise RefusedError(f"cannot reach {url}: {error}") from None
    if not answer.is_success:
        raise RefusedError(f"{url}/admin/models answered {answer.status_code}: {answer.text}")
    for entry in answer.json().get("models", []):
        if entry.get("model") == model:
            return {"primary": entry.get("primary"), "candidate": entry.get("candidate")}
    raise RefusedError(f"{url} serves no model {model}")


def sync(
    client: Any,
    registered: Registered,
    task: TabularTask,
    *,
    role: str,
    name: str | None,
    scaler_path: Path | None,
    url: str,
    admin_key: str | None,
) -> tuple[str, bool, int]:
    """(tag, whether it was imported now, the admin client's exit code). The bundle is asked
    first, so that an unreachable bundle or a wrong key imports nothing."""
    serving = served(url, admin_key, task.name)
    tag = stored_tag(name or task.name, registered)
    imported = tag is None
    if tag is None:
        tag = import_version(client, registered, task, name=name, scaler_path=scaler_path)
    common = ["--url", url, *(["--key", admin_key] if admin_key else [])]
    by = ["--by", f"mlflow sync models:/{registered.name}/{registered.version}"]
    code = 0
    if tag not in (serving.get("primary"), serving.get("candidate")):
        code = admin.main([*common, *by, "candidate", task.name, tag])
    if code == 0 and role == "primary" and serving.get("primary") != tag:
        code = admin.main([*common, *by, "promote", task.name])
    return tag, imported, code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m scripts.imports.mlflow", description=__doc__)
    top.add_argument("args", nargs="+", metavar="[sync] MODEL_URI")
    top.add_argument("--model", required=True, help=f"the bundle's model: {', '.join(SUPPORTED)}")
    top.add_argument("--name", help="store name (default: the model's name)")
    top.add_argument("--scaler", type=Path, help="joblib MinMaxScaler (default: scaler.json)")
    top.add_argument("--tracking-uri", help="the registry (default: $MLFLOW_TRACKING_URI)")
    top.add_argument("--as", dest="role", choices=("primary", "candidate"), default="candidate")
    top.add_argument("--url", default=os.environ.get("BUNDLE_URL", "http://localhost:3000"))
    top.add_argument("--admin-key", default=os.environ.get("BUNDLE_ADMIN_KEY"))
    return top


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    syncing = args.args[0] == "sync"
    uris = args.args[1:] if syncing else args.args
    if len(uris) != 1:
        cli.error("give exactly one MODEL_URI")
    try:
        if args.model not in TASKS:
            raise RefusedError(
                f"importing {args.model} from MLflow is not supported yet; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        task = TASKS[args.model]
        client = connect(args.tracking_uri)
        registered = resolve(client, uris[0])
        if not syncing:
            tag = import_version(client, registered, task, name=args.name, scaler_path=args.scaler)
            print(how_to_serve(tag, task.name))
            return 0
        tag, imported, code = sync(
            client,
            registered,
            task,
            role=args.role,
            name=args.name,
            scaler_path=args.scaler,
            url=args.url,
            admin_key=args.admin_key,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"import_mlflow: {error}", file=sys.stderr)
        return 2
    print(f"{'imported' if imported else 'already in the store:'} {tag}; {args.role}: code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
