"""Where runs land and how they are named: the UI's view, names that tell a sweep's runs apart."""

from __future__ import annotations

import os
import signal
import time

import mlflow
import pytest

from experiments.tracking import store, sweeps
from experiments.tracking.run_context import run_context
from experiments.training.settings import compose


def test_experiments_open_in_the_model_training_view(store_uri):
    client = mlflow.MlflowClient(store_uri)
    created = store.init_store(store_uri, "fresh")
    assert client.get_experiment(created).tags[store.EXPERIMENT_KIND] == store.MODEL_TRAINING
    # One made elsewhere without the tag gets it; a kind a user chose stays.
    older = client.create_experiment("older")
    chosen = client.create_experiment("chosen", tags={store.EXPERIMENT_KIND: "genai_development"})
    store.init_store(store_uri, "older")
    store.init_store(store_uri, "chosen")
    assert client.get_experiment(older).tags[store.EXPERIMENT_KIND] == store.MODEL_TRAINING
    assert client.get_experiment(chosen).tags[store.EXPERIMENT_KIND] == "genai_development"


def test_a_sweep_child_is_named_by_what_the_sweep_varies_first():
    cfg = compose(["optimizer.lr=0.003", "seed=2", "backbone=custom_cnn"])
    name = store.run_name(cfg, ["optimizer.lr", "seed", "backbone"])
    assert name == "lr=0.003 · seed=2 · custom_cnn · custom_cnn-scratch-adam-lr0.003"
    assert store.run_name(cfg) == "custom_cnn-scratch-adam-lr0.003"
    named = compose(["mlflow.run_name=mine"])
    assert store.run_name(named, ["optimizer.lr"]) == "mine"  # the user's name stays


def test_the_varying_keys_are_the_sweep_overrides_and_the_sweepers_params():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.config.schema import CONF_DIR

    overrides = [
        "optimizer.lr=1e-3,1e-2",
        "trainer.epochs=2",
        "backbone=vgg16,mobilenet",
        "seed=range(1,4)",
    ]
    # As the sweep callback receives it: the command line's overrides, the basic sweeper.
    cfg = OmegaConf.create({"hydra": {"overrides": {"task": overrides}, "sweeper": {}}})
    assert sweeps.varying_keys(cfg) == ["optimizer.lr", "backbone", "seed"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", ["hparams_search=optuna"], return_hydra_config=True)
    assert sweeps.varying_keys(cfg) == ["optimizer.lr", "trainer.batch_size", "backbone.dropout"]


def test_a_server_killed_mid_answer_counts_as_gone_and_a_refusal_does_not():
    from mlflow.exceptions import MlflowException

    from experiments.tracking import outbox

    # What async logging raised in CI when the server was killed while it answered a batch.
    cut = MlflowException(
        "The following failures occurred while performing one or more async logging "
        'operations: [MlflowException("API request to http://127.0.0.1:40091/api/2.0/mlflow/'
        "runs/log-batch failed with exception ('Connection broken: IncompleteRead(0 bytes "
        "read, 2 more expected)', IncompleteRead(0 bytes read, 2 more expected))\")]"
    )
    assert outbox.is_unreachable(cut)
    assert outbox.is_unreachable(ConnectionRefusedError("[Errno 111] Connection refused"))
    assert not outbox.is_unreachable(MlflowException("INVALID_PARAMETER_VALUE: bad metric name"))


def test_a_run_whose_server_is_gone_asks_its_health_and_replays_once_it_answers(
    tmp_path, monkeypatch
):
    """Asked whether a stopped server is back, the outbox does not go through MLflow's
    client (which retried for 3 to 4 s, stalling training at each question): one health
    check, refused at once. Once the server answers, what was kept is sent."""
    import http.server
    import threading

    from helpers import free_port

    from experiments.tracking import outbox

    port = free_port()
    sent = []
    monkeypatch.setattr(outbox.replay, "send_kept", lambda folder: sent.append(folder))
    box = outbox.Outbox(tmp_path / "unsent", f"http://127.0.0.1:{port}", wait_s=0.0)
    box.reason = "gone"  # given up on, as after a failed call
    began = time.monotonic()
    assert not box.reconnect(now=True)
    assert time.monotonic() - began < 1.0 and sent == []  # not asked through MLflow

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert box.reconnect(now=True)
    finally:
        server.shutdown()
        server.server_close()
    assert sent == [tmp_path / "unsent"] and not box.offline


def test_a_signal_that_c_code_reports_as_a_system_error_ends_the_run_killed(store_uri):
    """SIGTERM while TensorFlow imported a module lazily came out as ``SystemError: <built-in
    function __import__> returned a result with an exception set``: the SLURM job printed a
    traceback instead of its one line. The run ends KILLED and the interruption goes on."""
    client = mlflow.MlflowClient(store_uri)
    experiment = store.init_store(store_uri, "experiments")
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with run_context(store_uri, {}, experiment_id=experiment) as run:
            try:
                raise KeyboardInterrupt("signal 15")  # what the handler raises
            except KeyboardInterrupt:
                raise SystemError("<built-in function __import__> returned a result") from None
    ended = client.get_run(run.id)
    assert ended.info.status == "KILLED"
    assert ended.data.tags["failure_reason"] == "KeyboardInterrupt: signal 15"


def test_a_sigterm_that_c_code_swallowed_still_ends_the_run_killed(store_uri):
    """scancel while Keras converted a batch: TensorFlow's C code caught the KeyboardInterrupt
    and raised ``TypeError: Failed to convert elements of (None,) to Tensor`` instead. The
    job ended as a failed training (no "SLURM stopped the job" line, its sweep's summary
    without it). Whatever ends the run after SIGTERM, the run was stopped by it."""
    client = mlflow.MlflowClient(store_uri)
    experiment = store.init_store(store_uri, "experiments")
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with run_context(store_uri, {}, experiment_id=experiment) as run:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here, at once
            except KeyboardInterrupt:
                pass  # lost, as TensorFlow's C code lost it
            raise TypeError("Failed to convert elements of (None,) to Tensor")
    assert client.get_run(run.id).info.status == "KILLED"
    # The next run of this process starts afresh: an error of its own is a failure.
    with pytest.raises(TypeError):
        with run_context(store_uri, {}, experiment_id=experiment) as again:
            raise TypeError("a bug")
    assert client.get_run(again.id).info.status == "FAILED"
