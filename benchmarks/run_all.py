"""Every performance benchmark of the project, side by side, into benchmarks/RESULTS.md.

    python benchmarks/run_all.py            # the full run (about 20 minutes on 2 cores)
    python benchmarks/run_all.py --quick    # a smoke check in a few minutes; prints only
    python benchmarks/run_all.py --only network,overhead   # some parts

Parts: network (1, the default network against the reference), overhead (2, the
framework against bare Keras), transfer (3, feature caching and feature-pass speed),
cli (4, command-line latency), predict (5, prediction speed), cache (6, image folders
larger than memory; ``benchmarks/image_cache.py --before`` adds the loader before it).
One run at a time: these are timings on a shared machine, so run nothing else meanwhile.

RESULTS.md holds one section per CPU kind (the model and its AMX-BF16, AVX512-BF16 and
AVX512F features), since speed depends on them: a run replaces the parts it measured in
its own CPU's section and leaves the other parts and the other CPUs as they were.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_latency  # noqa: E402
import image_cache  # noqa: E402
import network  # noqa: E402
import overhead  # noqa: E402
import predict_speed  # noqa: E402
import results  # noqa: E402
import transfer_cache  # noqa: E402
from common import cpu_kind, machine  # noqa: E402

PARTS = {
    "network": lambda quick: network.section(network.measure(quick)),
    "overhead": lambda quick: overhead.section(overhead.measure(quick)),
    "transfer": lambda quick: transfer_cache.section(transfer_cache.measure(quick)),
    "cli": lambda quick: cli_latency.section(cli_latency.measure(2 if quick else 5)),
    "predict": lambda quick: predict_speed.section(
        predict_speed.measure(200 if quick else 1000, 1 if quick else 3)
    ),
    "cache": lambda quick: image_cache.section(
        image_cache.measure(
            image_cache.options(
                ["--images", "1000", "--sizes", "500", "--subset", "200"] if quick else []
            )
        )
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke check; prints only")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--output", type=Path, default=None, help="where to write the report")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")

    started = time.perf_counter()
    sections = []
    for name in chosen:
        print(f"[{time.perf_counter() - started:6.0f} s] {name}...", file=sys.stderr, flush=True)
        sections.append(PARTS[name](args.quick))
        print(sections[-1] + "\n", flush=True)
    minutes = (time.perf_counter() - started) / 60
    command = (
        f"`python benchmarks/run_all.py{' --quick' if args.quick else ''}"
        f"{'' if args.only == ','.join(PARTS) else ' --only ' + args.only}` "
        f"({minutes:.0f} min)"
    )
    stamp = f"*Measured {datetime.date.today().isoformat()} by {command} on {machine()}.*"
    parts = {name: f"{stamp}\n\n{text}" for name, text in zip(chosen, sections, strict=True)}
    if args.quick and args.output is None:
        return
    output = args.output or results.RESULTS
    previous = output.read_text() if output.is_file() else ""
    output.write_text(results.merge(previous, cpu_kind(), parts))
    print(f"written to {output}, section {cpu_kind()}", file=sys.stderr)


if __name__ == "__main__":
    main()
