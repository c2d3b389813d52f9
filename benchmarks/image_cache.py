"""Image folders larger than memory: the on-disk cache against the loader that held every image.

    python benchmarks/image_cache.py --before /tmp/before/src     # the whole comparison
    python benchmarks/image_cache.py --images 2000 --sizes 1000    # a smoke check

``--before`` is the ``src`` folder of a checkout from before the cache (``git worktree add
/tmp/before aac6745``); its runs use that code through ``PYTHONPATH``. Each run is the real
command line, ``backbone=mobilenet backbone.weights=null phase=transfer
dataset.image_size=224 trainer.epochs=1``, over generated 224x224 JPEGs in 4 class folders:

1. Each loader twice over ``--images`` files: the peak resident memory of the process
   (``wait4``), and the seconds from its start until its MLflow run opened (the run's
   ``start_time``). The cache loader also runs once over each of ``--sizes``: its peak
   memory must not grow with the folder.
2. Decode throughput: the cache's build, from its log line; the loader before, timed
   loading the same folder in a process of its own.
3. The epoch time through the frozen base (``phase.cache_features=false``, so every epoch
   runs every image through it: the images come from disk, or from memory), on the
   ``--subset`` folder: 3 epochs, the mean ``epoch_time_s`` of the second and third (the
   first traces). Three loaders: streamed from the cache, this code in memory
   (``dataset.cache=false``), and the code before.
4. A 3-job learning-rate sweep of ``phase=transfer`` on the subset (cache on) against three
   independent runs, each with an empty cache: how many frozen-base feature passes ran
   (the runs' ``frozen_features`` tags) and the wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import environment, machine
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "bar", "cross")
RUN = [
    "-m",
    "experiments",
    "backbone=mobilenet",
    "backbone.weights=null",
    "phase=transfer",
    "dataset=image_folder",
    "dataset.image_size=224",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "mlflow.log_model=false",
]
DECODED = re.compile(r"Decoded (\d+) images in ([\d.]+) s \(([\d.]+) images/s\)")


def write_images(root: Path, count: int) -> Path:
    """``count`` 224x224 JPEGs (about 20 KB each) in 4 class folders; kept between runs."""
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == str(count):
        return root

    def draw(i: int) -> None:
        rng = np.random.default_rng(i)
        k = i % len(CLASSES)
        base = rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, 224)[None, :, None] * rng.integers(-80, 80, 3)
        noise = rng.normal(0, 12, (224, 224, 3))
        pixels = np.clip(base + ramp + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        pen = ImageDraw.Draw(image)
        x, y, r = rng.integers(50, 174), rng.integers(50, 174), rng.integers(20, 50)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = (x - r, y - r, x + r, y + r)
        [pen.ellipse, pen.rectangle][k % 2](box, fill=colour) if k < 2 else None
        if k == 2:
            pen.rectangle((x - r, y - 8, x + r, y + 8), fill=colour)
        if k == 3:
            pen.line((x - r, y - r, x + r, y + r), fill=colour, width=10)
            pen.line((x - r, y + r, x + r, y - r), fill=colour, width=10)
        image.save(root / CLASSES[k] / f"{i:06d}.jpg", quality=90)

    shutil.rmtree(root, ignore_errors=True)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(draw, range(count)))
    marker.write_text(str(count))
    return root


def subset(source: Path, root: Path, count: int) -> Path:
    """The first ``count`` images of ``source`` as hard links (same bytes, no new files)."""
    shutil.rmtree(root, ignore_errors=True)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
    for i in range(count):
        name = f"{i:06d}.jpg"
        os.link(source / CLASSES[i % len(CLASSES)] / name, root / CLASSES[i % len(CLASSES)] / name)
    return root


def run(overrides: list[str], work: Path, before: Path | None) -> dict:
    """One training run: its peak memory (GiB), seconds until its run opened, its log."""
    env = environment()
    if before is not None:
        env["PYTHONPATH"] = str(before)
    store = work / "mlflow.db"
    command = [sys.executable, *RUN, f"mlflow.tracking_uri=sqlite:///{store}", *overrides]
    started = time.time()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=log, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        log.seek(0)
        text = log.read()
    wall = time.time() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{text[-3000:]}")
    run_info = newest_run(store)
    return {
        "peak_gib": usage.ru_maxrss / 2**20,
        "opened_s": run_info.info.start_time / 1000 - started,
        "wall_s": wall,
        "log": text,
        "run": run_info,
        "store": store,
    }


def newest_run(store: Path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("experiments")
    return client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0]


def decode_before(root: Path, before: Path) -> float:
    """Images per second of the loader before the cache, loading ``root`` in its own process."""
    script = (
        "import sys, time\n"
        "from omegaconf import OmegaConf\n"
        "from experiments.data import image_folder\n"
        "cfg = OmegaConf.create(dict(root=sys.argv[1], limit=None, val_split=0.15,"
        " test_split=0.15, image_size=224, channels=3))\n"
        "t = time.perf_counter(); s = image_folder.load(cfg, 0)\n"
        "n = len(s.y_train) + len(s.y_val) + len(s.y_test)\n"
        "print(n / (time.perf_counter() - t))\n"
    )
    env = {**environment(), "PYTHONPATH": str(before)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.split()[-1])


def epoch_time(root: Path, work: Path, before: Path | None, extra: tuple = ()) -> float:
    """The mean of epochs 2 and 3 when every epoch runs every image through the frozen base
    (the first epoch also traces the model, so it is left out)."""
    import mlflow

    overrides = [f"dataset.root={root}", "phase.cache_features=false", "trainer.epochs=3"]
    done = run([*overrides, *extra], work, before)
    client = mlflow.MlflowClient(f"sqlite:///{done['store']}")
    times = client.get_metric_history(done["run"].info.run_id, "epoch_time_s")
    later = [m.value for m in sorted(times, key=lambda m: m.step)[1:]]
    return sum(later) / len(later)


def sweep(root: Path, work: Path) -> dict:
    """A 3-job learning-rate sweep against 3 independent runs, each with an empty cache."""
    import mlflow

    rates = ["0.001", "0.003", "0.01"]
    shared = [f"dataset.root={root}", f"dataset.cache_dir={work / 'sweep-cache'}"]
    started = time.perf_counter()
    store = work / "sweep.db"
    env = environment()
    command = [
        sys.executable,
        *RUN[:2],
        "-m",
        *RUN[2:],
        f"mlflow.tracking_uri=sqlite:///{store}",
        *shared,
        f"optimizer.lr={','.join(rates)}",
    ]
    subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=True)
    sweep_s = time.perf_counter() - started
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("experiments")
    tags = [
        r.data.tags.get("frozen_features")
        for r in client.search_runs([experiment.experiment_id])
        if "frozen_features" in r.data.tags
    ]
    started = time.perf_counter()
    for i, rate in enumerate(rates):
        alone = [f"dataset.root={root}", f"dataset.cache_dir={work / f'alone-{i}'}"]
        run([*alone, f"optimizer.lr={rate}"], work, None)
    alone_s = time.perf_counter() - started
    passes = sum(1 for tag in tags if tag != "reused")
    return {"tags": tags, "passes": passes, "sweep_s": sweep_s, "alone_s": alone_s}


def measure(args) -> dict:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    full = write_images(work / f"jpegs-{args.images}", args.images)
    small = subset(full, work / f"jpegs-{args.subset}", args.subset)
    results: dict = {"images": args.images, "subset": args.subset, "rows": []}
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    loaders = [("cache (new)", None)] + (
        [("in memory (before)", args.before)] if args.before else []
    )
    for name, before in loaders:
        extra = [] if before else [f"dataset.cache_dir={cache}"]
        for attempt in ("first", "second"):
            print(
                f"{name}, {attempt} run over {args.images} images...", file=sys.stderr, flush=True
            )
            done = run([f"dataset.root={full}", *extra], work, before)
            found = DECODED.search(done["log"])
            results["rows"].append(
                {
                    "loader": name,
                    "attempt": attempt,
                    "images": args.images,
                    "peak_gib": done["peak_gib"],
                    "opened_s": done["opened_s"],
                    "wall_s": done["wall_s"],
                    "decode_rate": float(found.group(3)) if found else None,
                    "features": done["run"].data.tags.get("frozen_features", "computed"),
                }
            )
    for size in args.sizes:
        folder = subset(full, work / f"jpegs-{size}", size)
        print(f"cache (new), first run over {size} images...", file=sys.stderr, flush=True)
        done = run([f"dataset.root={folder}", f"dataset.cache_dir={cache}"], work, None)
        found = DECODED.search(done["log"])
        results["rows"].append(
            {
                "loader": "cache (new)",
                "attempt": "first",
                "images": size,
                "peak_gib": done["peak_gib"],
                "opened_s": done["opened_s"],
                "wall_s": done["wall_s"],
                "decode_rate": float(found.group(3)) if found else None,
                "features": done["run"].data.tags.get("frozen_features"),
            }
        )
    if args.before:
        print("decode throughput before...", file=sys.stderr, flush=True)
        results["decode_before"] = decode_before(full, args.before)
    print("epoch times through the frozen base...", file=sys.stderr, flush=True)
    results["epoch_new"] = epoch_time(small, work, None, (f"dataset.cache_dir={cache}",))
    results["epoch_memory"] = epoch_time(small, work, None, ("dataset.cache=false",))
    if args.before:
        results["epoch_before"] = epoch_time(small, work, args.before)
    print("sweep...", file=sys.stderr, flush=True)
    results["sweep"] = sweep(small, work)
    return results


def report(r: dict) -> str:
    lines = [
        f"Machine: {machine()}",
        "",
        f"### Runs over {r['images']:,} JPEGs (224x224, 4 classes)",
        "",
        "| loader | images | run | peak memory (GiB) | run opened after (s) | whole run (s) "
        "| decode (images/s) | frozen-base features |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in r["rows"]:
        rate = row["decode_rate"]
        if rate is None and row["loader"].endswith("(before)") and row["attempt"] == "first":
            rate = r.get("decode_before")
        lines.append(
            f"| {row['loader']} | {row['images']:,} | {row['attempt']} | {row['peak_gib']:.2f} "
            f"| {row['opened_s']:.1f} | {row['wall_s']:.1f} "
            f"| {'-' if rate is None else f'{rate:.0f}'} | {row['features']} |"
        )
    heading = f"### Epoch through the frozen base ({r['subset']:,} images, mean of epochs 2-3)"
    lines += ["", heading, ""]
    lines.append(f"- images streamed from the cache: {r['epoch_new']:.1f} s")
    ratio = r["epoch_new"] / r["epoch_memory"]
    lines.append(
        f"- images in memory (dataset.cache=false): {r['epoch_memory']:.1f} s; ratio {ratio:.3f}"
    )
    if "epoch_before" in r:
        ratio = r["epoch_new"] / r["epoch_before"]
        lines.append(f"- images in memory (before): {r['epoch_before']:.1f} s; ratio {ratio:.3f}")
    s = r["sweep"]
    lines += [
        "",
        f"### A 3-job learning-rate sweep of phase=transfer ({r['subset']:,} images)",
        "",
        f"- feature passes: {s['passes']} (tags {', '.join(s['tags'])})",
        f"- the sweep: {s['sweep_s']:.1f} s; three independent runs: {s['alone_s']:.1f} s",
    ]
    return "\n".join(lines)


def section(results: dict) -> str:
    """The part of RESULTS.md: its heading and the report."""
    return "## 6. Image folders larger than memory\n\n" + report(results)


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--subset", type=int, default=2_000)
    parser.add_argument("--before", type=Path, default=None, help="src/ of the code before")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "image-cache")
    parser.add_argument("--write", action="store_true", help="into RESULTS.md, this CPU's section")
    return parser.parse_args(argv)


def main() -> None:
    args = options()
    text = section(measure(args))
    print(text)
    if args.write:
        import results
        from common import cpu_kind

        command = "python benchmarks/image_cache.py"
        command += " --before <src of aac6745>" if args.before else ""
        results.write_part(cpu_kind(), "cache", command, text)


if __name__ == "__main__":
    main()
