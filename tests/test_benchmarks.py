"""benchmarks/results.py keeps one RESULTS.md section per CPU kind and rewrites only its own."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import results  # noqa: E402


def test_a_run_rewrites_its_own_cpus_parts_and_keeps_the_rest():
    intel, amd = "Intel Xeon (AMX-BF16, AVX512-BF16, AVX512F)", "AMD EPYC (AVX512-BF16; no AMX)"
    first = results.merge(
        "", intel, {"network": "## 1. net\nintel 117 s", "cli": "## 4. cli\n0.2 s"}
    )
    assert "### 1. net" in first and "## 1. net" not in first.replace("### 1.", "")
    second = results.merge(first, amd, {"network": "## 1. net\namd 150 s"})
    third = results.merge(second, intel, {"network": "## 1. net\nintel 110 s"})
    assert "intel 110 s" in third and "intel 117 s" not in third
    assert "amd 150 s" in third and "0.2 s" in third  # the other CPU and the other part stay
    assert third.index(f"## {intel}") < third.index(f"## {amd}")
    assert results.merge(third, amd, {}) == third  # rewriting nothing changes nothing


def test_the_committed_results_parse_into_sections_per_cpu():
    text = results.RESULTS.read_text()
    assert results.merge(text, "none", {}).startswith(text.rstrip("\n"))
    kinds = [m["kind"] for m in results._SECTION.finditer(text)]
    assert kinds and all("(" in kind for kind in kinds)  # each names the CPU's features


def test_the_pruning_summary_judges_each_seed_against_its_own_unpruned_search():
    import search_pruning

    def row(seed, pruner, seconds, best, epochs):
        return {"seed": seed, "pruner": pruner, "seconds": seconds, "best": best,
                "epochs": epochs}  # fmt: skip

    rows = [
        row(1, "none", 100.0, 0.93, 200), row(1, "median", 55.0, 0.928, 110),
        row(2, "median", 70.0, 0.90, 130), row(2, "none", 200.0, 0.92, 200),
    ]  # fmt: skip
    text = search_pruning.summarise(rows, ["none", "median"])
    first, second, over = text.splitlines()
    assert first.startswith("seed 1, median/none wall time: 0.55;") and "+0.20 points" in first
    assert "point: met)" in first and "epochs trained: 0.55" in first
    # seed 2 is judged against seed 2's own search (200 s), not seed 1's (100 s)
    assert second.startswith("seed 2, median/none wall time: 0.35;") and "point: missed)" in second
    assert "+2.00 points" in second  # too far below: missed although faster
    assert over == (
        "over seeds 1, 2, median: wall time median 0.45 (each 0.55, 0.35); "
        "best val_accuracy at worst +2.00 points below none's"
    )


def test_the_suite_profile_puts_each_sample_in_one_activity_and_counts_importers(tmp_path):
    import suite_profile

    worker = 'process 1:"python -m pytest";process 2:"python -u -c import sys;exec(x)"'
    command = f'{worker};process 3:"python -m experiments -m seed=1,2'
    raw = tmp_path / "profile.txt"
    raw.write_text(
        f"{worker};run (experiments/train.py:1);fit (keras/src/trainer.py:2) 30\n"
        f'{command}";<module> (x.py:1);_find_and_load (<frozen>:1) 70\n'
        f"{worker};f (tensorflow/x.py:1);trace (tensorflow/func_graph.py:9);"
        "call (keras/src/layers/dense.py:5) 20\n"
        f'{command}\n  a second line";draw (matplotlib/figure.py:3) 5\n'
    )
    assert [count for _, count in suite_profile.samples(raw)] == [30, 70, 20, 5]
    table = suite_profile.summary(raw)
    assert "| imports | 7 | 56.0% |" in table
    assert "| keras | 3 | 24.0% |" in table  # the innermost library frame decides
    assert "| tracing (Keras' Python, run to build TensorFlow graphs) | 2 | 16.0% |" in table
    assert "| matplotlib | 0 | 4.0% |" in table  # a command line of two lines: one sample
    assert "| command (python -m experiments...) | 7 | 1 | 7.0 |" in table
