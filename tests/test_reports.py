"""Report helpers compute what they claim, on numbers checked by hand."""

from __future__ import annotations

import numpy as np

from experiments.reporting import ranking, reports


def test_confusion_matrix_and_per_class_scores():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    matrix = reports.confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    scores = reports.per_class_scores(matrix, ["a", "b", "c"])
    assert scores["precision"] == [1.0, 0.5, 0.5]
    assert scores["recall"] == [round(2 / 3, 4), 0.5, 1.0]
    assert scores["f1"] == [0.8, 0.5, round(2 / 3, 4)]
    assert scores["support"] == [3, 2, 1]


def test_a_class_never_predicted_scores_zero_not_nan():
    matrix = reports.confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2)
    scores = reports.per_class_scores(matrix, ["a", "b"])
    assert scores["precision"][1] == 0.0 and scores["f1"][1] == 0.0


def test_top_k_format_is_the_reference_reports_sorted():
    text = ranking.format_top_k(np.array([0.0252, 0.9748, 0.0]), ["crab", "avocado", "cat"], 2)
    assert text.splitlines() == [
        "Results provided by selected model:",
        "        #1 avocado @ 97.48%",
        "        #2 crab @ 2.52%",
    ]
