"""Which images a run was scored on: scores on different sets are never ranked together.

A run's evaluation set is named by its dataset, its classes, where its images came from
and the sizes of its validation and test splits (the params every run logs). Runs of one
set with the same seed were scored on the very same images; their ``data.test_digest``
tags say so, and the image-by-image tests check it before pairing two runs.
"""

from __future__ import annotations

PARAMS = ("data.source", "data.classes", "data.test_size", "data.val_size")


def key(run) -> tuple:
    """What identifies the evaluation set of an MLflow ``run``."""
    return (run.data.tags.get("dataset"), *(run.data.params.get(p) for p in PARAMS))


def split(table: list[dict]) -> list[list[dict]]:
    """The rows of ``table`` grouped by evaluation set, the set with the most runs first.

    A run that ended before it logged its data (a failure at start) was scored on nothing:
    it is listed with the first set rather than as a set of its own.
    """
    groups: dict[tuple, list[dict]] = {}
    unscored = []
    for row in table:
        if row["evaluation"][1:] == (None,) * len(PARAMS) and row["status"] != "FINISHED":
            unscored.append(row)
        else:
            groups.setdefault(row["evaluation"], []).append(row)
    ordered = sorted(groups.values(), key=lambda rows: -len(rows))
    if not ordered:
        return [unscored] if unscored else []
    ordered[0].extend(unscored)
    return ordered


def describe(rows: list[dict]) -> str:
    """``shapes: 3 classes, 12 test / 6 validation images (test digest 1a2b3c4d)``."""
    dataset, _, classes, test, val = rows[0]["evaluation"]
    count = len(classes.split(",")) if classes else "?"
    sizes = f"{_count(test)} test / {_count(val)} validation images"
    digests = {row.get("test_digest") for row in rows} - {None}
    if len(digests) == 1:
        where = f"test digest {next(iter(digests))[:8]}"
    elif digests:
        where = f"test images drawn by the seed: {len(digests)} digests, paired by seed"
    else:
        where = "no test digest logged"
    return f"{dataset or 'unknown dataset'}: {count} classes, {sizes} ({where})"


def _count(size) -> str:
    return f"{int(size):,}" if size is not None else "?"
