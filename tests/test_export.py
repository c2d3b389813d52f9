"""``python -m experiments.export``: each format written, run by its own runtime, gated.

One small Fashion-MNIST run, registered as ``fashion@champion``, is exported once to the
three formats (module fixture); the tests read that export, predict from its files, and
export again where the options differ. The runtimes are the real ones: TensorFlow,
LiteRT's interpreter, ONNX Runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from helpers import in_process
from PIL import Image

from experiments.commands import export as export_command
from experiments.commands import predict as predict_command
from experiments.exporting import formats, parity, runtimes


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fashion_dir):
    """A trained, registered run; the export command run on it; a folder of its images."""
    from experiments.training import train
    from experiments.training.settings import compose

    root = tmp_path_factory.mktemp("export")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        train.run(
            compose(
                [
                    f"mlflow.tracking_uri={uri}",
                    "dataset.limit=300",
                    "trainer.epochs=1",
                    "trainer.verbose=0",
                    "cost=quick",
                    "interpretation=off",
                    "mlflow.samples=0",
                ]
            )
        )
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    run_id = client.search_runs(["1"])[0].info.run_id
    mlflow.set_registry_uri(uri)
    version = mlflow.register_model(f"runs:/{run_id}/model", "fashion").version
    client.set_registered_model_alias("fashion", "champion", version)
    result = in_process(
        export_command.main,
        "model=models:/fashion@champion",
        "gate.images=500",
        "register=true",
        f"mlflow.tracking_uri={uri}",
        cwd=root,
    )
    images = root / "images"
    images.mkdir()
    from experiments.data.fashion_mnist import FILES
    from experiments.data.idx import read_idx

    pixels = read_idx(fashion_dir / FILES["x_test"])[:6]
    for i, image in enumerate(pixels):
        Image.fromarray(image.squeeze()).save(images / f"{i}.png")
    return {"root": root, "uri": uri, "run_id": run_id, "result": result, "images": images}


def _export_run(exported):
    client = mlflow.MlflowClient(exported["uri"])
    runs = client.search_runs(
        [client.get_experiment_by_name("exports").experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    return client, runs[0]


@pytest.mark.slow
def test_every_format_passes_the_gate_and_is_logged_kept_and_registered(exported):
    result = exported["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("Compared on 500 of run") for line in lines)
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert set(rows) >= {"keras", "tf_saved_model", "litert", "onnx"}
    assert all(rows[name].rstrip().endswith("| pass |") for name in formats.FORMATS)

    client, run = _export_run(exported)
    assert run.info.status == "FINISHED"
    assert run.data.tags["export.source_run_id"] == exported["run_id"]
    metrics = run.data.metrics
    for name in formats.FORMATS:
        assert metrics[f"{name}.agreement"] >= parity.FLOAT_AGREEMENT
        assert metrics[f"{name}.max_abs_dp"] <= parity.FLOAT_MAX_DP
        assert metrics[f"{name}.accuracy_change"] == pytest.approx(0, abs=0.21)
        assert metrics[f"{name}.latency_ms"] > 0 and metrics[f"{name}.throughput_ips"] > 0
        assert metrics[f"{name}.size_mb"] > 0
    assert "keras.latency_ms" in metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "export")}
    assert {f"export/{name}" for name in formats.FORMATS} <= logged
    assert "export/parity.md" in logged
    # The passing files, whole, in output/<export run id>/; no partial folder left.
    kept = exported["root"] / "exports" / run.info.run_id
    assert (kept / "onnx" / "model.onnx").is_file() and (kept / "litert" / "model.tflite").is_file()
    assert (kept / "tf_saved_model" / "saved_model" / "saved_model.pb").is_file()
    assert json.loads((kept / "onnx" / "model.json").read_text())["class_names"][0] == "T-shirt/top"
    assert [p.name for p in (exported["root"] / "exports").iterdir()] == [run.info.run_id]
    # Registered: the ONNX flavour as fashion-onnx@champion; figures on the source version.
    registry = mlflow.MlflowClient(exported["uri"], registry_uri=exported["uri"])
    onnx_version = registry.get_model_version_by_alias("fashion-onnx", "champion")
    assert onnx_version.run_id == run.info.run_id
    tags = registry.get_model_version_by_alias("fashion", "champion").tags
    assert tags["export.onnx.uri"] == f"models:/fashion-onnx/{onnx_version.version}"
    assert (
        tags["export.litert"].startswith("agreement 100.00 %")
        or "agreement 99.9" in tags["export.litert"]
    )


def _predicted(model: str, exported) -> list[str]:
    result = in_process(
        predict_command.main,
        f"model={model}",
        f"inputs={exported['images']}",
        "output=json",
        "top_k=1",
        f"mlflow.tracking_uri={exported['uri']}",
        cwd=exported["root"],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [entry["predictions"][0]["class"] for entry in json.loads(result.stdout)]


@pytest.mark.slow
def test_predict_reads_every_export_and_answers_as_the_keras_model(exported):
    _, run = _export_run(exported)
    kept = exported["root"] / "exports" / run.info.run_id
    keras_answers = _predicted(f"runs:/{exported['run_id']}/model", exported)
    assert len(keras_answers) == 6
    for model in (
        kept / "onnx" / "model.onnx",
        kept / "litert" / "model.tflite",
        kept / "tf_saved_model" / "saved_model",
        kept / "litert",  # the format's folder, as logged
        "models:/fashion-onnx@champion",  # MLflow's onnx flavour
        f"runs:/{run.info.run_id}/export/litert",  # the export run's files
    ):
        assert _predicted(str(model), exported) == keras_answers, model


@pytest.mark.slow
def test_a_format_that_changes_the_answers_is_refused_and_nothing_registered(exported, monkeypatch):
    """A converter that silently changes outputs (tensorflow #62709): the gate stops it."""
    real = runtimes.runner

    def drifting(path: Path):
        run = real(path)
        if formats.format_of(path).name != "onnx":
            return run
        return lambda batch: np.roll(run(batch), 1, axis=1)  # every answer off by one class

    monkeypatch.setattr(runtimes, "runner", drifting)
    registry = mlflow.MlflowClient(exported["uri"], registry_uri=exported["uri"])
    before = len(registry.search_model_versions("name = 'fashion-onnx'"))
    out = exported["root"] / "drift"
    result = in_process(
        export_command.main,
        f"model=runs:/{exported['run_id']}/model",
        "formats=[onnx,litert]",
        "gate.images=200",
        "timing=false",
        "register=true",
        "name=fashion",
        f"output={out}",
        f"mlflow.tracking_uri={exported['uri']}",
        cwd=exported["root"],
    )
    assert result.returncode == 1
    assert "| onnx |" in result.stdout and "top-1 agreement 0.00 %" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: not kept: onnx: top-1")
    assert len(registry.search_model_versions("name = 'fashion-onnx'")) == before
    _, run = _export_run(exported)
    assert run.info.status == "FAILED"
    [folder] = out.iterdir()  # the export run's; no partial folder
    assert [p.name for p in folder.iterdir()] == ["litert"]  # only what passed


@pytest.mark.slow
def test_dynamic_int8_is_a_quarter_of_the_size_within_a_point(exported):
    result = in_process(
        export_command.main,
        f"model=runs:/{exported['run_id']}/model",
        "formats=[litert]",
        "litert.quantize=dynamic_int8",
        "gate.images=500",
        "timing=false",
        f"output={exported['root'] / 'int8'}",
        f"mlflow.tracking_uri={exported['uri']}",
        cwd=exported["root"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _, run = _export_run(exported)
    assert run.data.params["litert.quantize"] == "dynamic_int8"
    assert run.data.metrics["litert_dynamic_int8.accuracy_change"] >= -1.0
    float_size = (
        mlflow.MlflowClient(exported["uri"])
        .search_runs([run.info.experiment_id], filter_string="params.`litert.quantize` = 'none'")[
            -1
        ]
        .data.metrics["litert.size_mb"]
    )
    assert run.data.metrics["litert_dynamic_int8.size_mb"] <= 0.3 * float_size


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["formats=[tflite]"],
            "formats: unknown format 'tflite'; known: tf_saved_model, litert, onnx",
        ),
        (
            ["litert.quantize=int4"],
            "litert.quantize: must be one of none, float16, dynamic_int8, int8",
        ),
        (["register=true"], "register: needs name=<registered model>"),
    ],
)
def test_bad_options_are_refused_before_anything_loads(args, message, tmp_path):
    result = in_process(export_command.main, "model=runs:/abc/model", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {message}")


def test_a_missing_runtime_names_the_extra(monkeypatch, tmp_path):
    real = formats.importlib.util.find_spec
    monkeypatch.setattr(
        formats.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    result = in_process(export_command.main, "model=runs:/abc/model", cwd=tmp_path)
    assert result.returncode == 2
    assert "onnx needs onnxruntime, which is not installed: pip install 'experiments[export]'" in (
        result.stderr
    )


@pytest.mark.slow
def test_a_refused_conversion_is_named_and_the_other_formats_kept(exported, monkeypatch):
    """tf2onnx logs the ops it cannot translate and still writes a file no runtime loads."""

    def refusing(saved, path):
        path.write_bytes(b"")
        log = "ERROR - Tensorflow op [m_1/base_1/stage_0_gelu_1/Gelu/Erfc: Erfc] is not supported"
        return 0, f"some progress\n{log}\nsome more\n"

    monkeypatch.setattr(formats, "_tf2onnx", refusing)
    out = exported["root"] / "refused"
    result = in_process(
        export_command.main,
        f"model=runs:/{exported['run_id']}/model",
        "formats=[onnx,litert]",
        "gate.images=100",
        "timing=false",
        f"output={out}",
        f"mlflow.tracking_uri={exported['uri']}",
        cwd=exported["root"],
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "error: not kept: onnx: export failed: onnx has no equivalent for the TensorFlow op(s) "
        "Erfc (layer stage_0_gelu)"
    )
    [folder] = out.iterdir()
    assert [p.name for p in folder.iterdir()] == ["litert"]


@pytest.mark.slow
def test_grouped_convolutions_and_exact_gelu_reach_onnx_unchanged(tmp_path):
    """ConvNeXt's two layers tf2onnx cannot translate (a grouped convolution, which Keras
    runs on the CPU inside an XLA function, and the exact GELU, written with Erfc) are
    exported as a depthwise convolution and a GELU written with Erf: same answers."""
    import keras

    from experiments.exporting import onnx_ready

    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", groups=4, name="grouped")(image)
    x = keras.layers.Activation("gelu", name="gelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))
    images = np.random.default_rng(0).normal(0, 2, (16, 8, 8, 4)).astype(np.float32)
    reference = np.asarray(model.predict_on_batch(images))

    copy = onnx_ready.rewritten(model, images)
    assert type(copy.get_layer("grouped")) is keras.layers.DepthwiseConv2D
    assert model.get_layer("grouped").groups == 4  # the model itself is left as it was
    np.testing.assert_allclose(copy.predict_on_batch(images), reference, atol=1e-6)

    path = formats.export(model, formats.FORMATS["onnx"], tmp_path, "none", images[:4])
    np.testing.assert_allclose(runtimes.runner(path)(images), reference, atol=1e-5)


def test_a_conversion_the_system_kills_fails_onnx_with_the_signal(tmp_path, monkeypatch):
    """tf2onnx runs in a process of its own: killed for memory, it takes only ONNX down."""
    import keras

    image = keras.Input((8, 8, 1))
    model = keras.Model(image, keras.layers.Dense(2)(keras.layers.Flatten()(image)))
    monkeypatch.setattr(formats, "_tf2onnx", lambda saved, path: (-9, ""))
    with pytest.raises(formats.ConversionRefused) as refused:
        formats.export(model, formats.FORMATS["onnx"], tmp_path, "none", np.zeros((1, 8, 8, 1)))
    assert str(refused.value) == "onnx: tf2onnx was stopped by SIGKILL (out of memory?)"
