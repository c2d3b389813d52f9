"""Report helpers compute what they claim, on numbers checked by hand."""

from __future__ import annotations

import io

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


def test_class_names_in_any_script_are_drawn_or_named_by_index(caplog):
    """A class named 狗 came out as empty boxes, with a 'Glyph missing' warning per glyph."""
    import logging
    import warnings

    import matplotlib.pyplot as plt

    from experiments.reporting import fonts

    names = ["狗", "cat", "Ωmega"]
    with caplog.at_level(logging.INFO):
        shown, families = fonts.plot_names(names)
    assert shown[1:] == ["cat", "Ωmega"]  # DejaVu Sans has Greek
    if shown[0] != "狗":  # no installed font has it: named by its index, and said so
        assert shown[0] == "class 0"
        assert "the plots show '狗' as 'class 0'" in caplog.text and "fonts-noto-cjk" in caplog.text
    with warnings.catch_warnings(record=True) as caught, fonts.drawing(families):
        warnings.simplefilter("always")
        figure = reports.confusion_figure(np.eye(3, dtype=int), shown)
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)
    assert not [w for w in caught if "missing from font" in str(w.message)]
