"""The export in MLflow: an export run holding the figures, the table and the files that
passed; the ONNX flavour (served by ``mlflow models serve``); the registered versions."""

from __future__ import annotations

import json

import numpy as np

from experiments.tracking import store


def export_run(cfg, tracking_uri: str, src, rows: list, kept: list, text: str) -> str:
    """The export run: figures, table and the files that passed; its id."""
    import mlflow

    experiment_id = store.init_store(tracking_uri, cfg.mlflow.experiment_name)
    tags = {"experiments.kind": "export", "export.source_uri": src.uri}
    if src.run_id:
        tags["export.source_run_id"] = src.run_id
    name = f"export-{src.run_id[:8]}" if src.run_id else "export"
    client = mlflow.MlflowClient(tracking_uri)
    run = client.create_run(experiment_id, tags=tags, run_name=name)
    run_id = run.info.run_id
    try:
        params = {
            "formats": ",".join(cfg.formats),
            "litert.quantize": cfg.litert.quantize,
            "gate.max_accuracy_drop": str(cfg.gate.max_accuracy_drop),
            "gate.images": str(len(src.images)),
        }
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for row in rows:
            for key, value in row.metrics().items():
                client.log_metric(run_id, key, value)
        client.log_text(run_id, text + "\n", "export/parity.md")
        summary = {row.name: {"kept": row.failure is None, "why": row.failure} for row in rows[1:]}
        client.log_text(run_id, json.dumps(summary, indent=1), "export/gate.json")
        for row in kept:
            client.log_artifacts(run_id, str(row.path.parent), f"export/{row.path.parent.name}")
        if any(row.name == "onnx" for row in kept):
            _log_onnx_flavour(tracking_uri, run_id, next(r for r in kept if r.name == "onnx"), src)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    failed = len(kept) < len(rows) - 1
    client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
    return run_id


def _log_onnx_flavour(tracking_uri: str, run_id: str, row, src) -> None:
    """The ONNX file as MLflow's onnx flavour: ``mlflow models serve`` runs it in ONNX Runtime."""
    import mlflow
    import onnx
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    shape = (-1, *src.model.input_shape[1:])
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), shape)]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, len(src.class_names)))]),
    )
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        mlflow.onnx.log_model(
            onnx.load(str(row.path)),
            name="onnx",
            signature=signature,
            metadata={"class_names": list(src.class_names)},
        )
    mlflow.MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")


def register(cfg, tracking_uri: str, src, run_id: str, rows: list) -> None:
    """The ONNX model as ``<name>-onnx`` @champion; the source version tagged with figures."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    base = cfg.name or src.uri.removeprefix("models:/").partition("@")[0].partition("/")[0]
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    registered = {}
    if any(row.name == "onnx" for row in rows):
        logged = mlflow.search_logged_models(
            experiment_ids=[client.get_run(run_id).info.experiment_id],
            filter_string=f"source_run_id = '{run_id}' AND name = 'onnx'",
            output_format="list",
        )
        version = mlflow.register_model(logged[0].model_uri, f"{base}-onnx").version
        client.set_registered_model_alias(f"{base}-onnx", "champion", version)
        registered["onnx"] = f"models:/{base}-onnx/{version}"
    target = _source_version(client, src, base)
    if target is None:
        return
    for row in rows[1:]:
        p = row.parity
        figures = f"agreement {100 * p.agreement:.2f} %, max |dp| {p.max_dp:.1e}"
        if p.accuracy_change is not None:
            figures += f", accuracy change {p.accuracy_change:+.2f} points"
        client.set_model_version_tag(base, target, f"export.{row.name}", figures)
        client.set_model_version_tag(
            base,
            target,
            f"export.{row.name}.uri",
            registered.get(row.name, f"runs:/{run_id}/export/{row.path.parent.name}"),
        )
    for uri in registered.values():
        print(f"registered: {uri} (@champion)")


def _source_version(client, src, base: str) -> str | None:
    """The registered version of ``base`` that holds the source run's model, if any."""
    if src.uri.startswith("models:/"):
        name, sep, alias = src.uri.removeprefix("models:/").partition("@")
        if sep:
            return client.get_model_version_by_alias(name, alias).version
        return name.partition("/")[2]
    if not src.run_id:
        return None
    versions = client.search_model_versions(f"name = '{base}' and run_id = '{src.run_id}'")
    return versions[0].version if versions else None
