"""The cost protocol, checked: what it adds to a run, and whether it repeats.

    python benchmarks/cost_protocol.py           # on this machine
    python benchmarks/cost_protocol.py --write   # and into RESULTS.md, this CPU's section

1. One default run (`python -m experiments`, the whole command, timed): how long the cost
   measurement took (`cost_time_s`, logged by every run) against the command's wall time.
   The goal: at most 5%.
2. The latency protocol run again on that run's model, in two fresh processes one after
   the other: their batch-1 medians should agree within 10% on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_kind, last_run, machine, run  # noqa: E402

PROTOCOL = """
import json, sys
from omegaconf import OmegaConf
from experiments.commands import quiet
quiet.import_tensorflow()
import mlflow
from experiments.training import cost
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.keras.load_model(sys.argv[2])
cfg = OmegaConf.load(sys.argv[3])
print(json.dumps(cost.timings(model, cfg)))
"""


def measure(folder: Path) -> dict:
    wall, _ = run(["-m", "experiments", "trainer.verbose=0"], cwd=folder)
    client, trained = last_run(folder / "mlflow.db")
    metrics = trained.data.metrics
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    model = f"runs:/{trained.info.run_id}/model"
    conf = Path(__file__).resolve().parents[1] / "conf" / "cost" / "default.yaml"
    repeats = []
    for _ in range(2):
        _, result = run(["-c", PROTOCOL, uri, model, str(conf)], cwd=folder)
        repeats.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {
        "wall_s": wall,
        "cost_time_s": metrics["cost_time_s"],
        "train_time_s": metrics["train_time_s"],
        "latency_ms": [metrics["latency_ms"], *(r["latency_ms"] for r in repeats)],
        "throughput_ips": [metrics["throughput_ips"], *(r["throughput_ips"] for r in repeats)],
        "test_accuracy": metrics["test_accuracy"],
        "threads": trained.data.tags["cost.threads"],
        "precision": trained.data.tags["cost.precision"],
    }


def report(found: dict) -> str:
    share = found["cost_time_s"] / found["wall_s"]
    first, again, third = found["latency_ms"]
    gap = abs(again - third) / min(again, third)
    return "\n".join(
        [
            "### The cost protocol",
            "",
            f"{machine()}; the default run, {found['threads']} threads, {found['precision']}.",
            "",
            "| | figure |",
            "| --- | ---: |",
            f"| whole default command | {found['wall_s']:.1f} s |",
            f"| cost measurement within it (`cost_time_s`) | {found['cost_time_s']:.2f} s "
            f"({share:.1%} of the command) |",
            f"| latency at batch 1, median: in the run / again / again | {first:.3f} / "
            f"{again:.3f} / {third:.3f} ms (the two repeats {gap:.1%} apart) |",
            "| throughput at batch 64: in the run / again / again | "
            + " / ".join(f"{v:,.0f}" for v in found["throughput_ips"])
            + " images/s |",
            "",
            "Goals: the cost measurement at most 5% of a run; two runs of the latency "
            "protocol within 10% (median).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write RESULTS.md's part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = measure(Path(tmp))
    text = report(found)
    print(text)
    if args.write:
        from results import write_part

        write_part(cpu_kind(), "cost", "python benchmarks/cost_protocol.py --write", text)


if __name__ == "__main__":
    main()
