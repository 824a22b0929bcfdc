"""A PNG of a timeline: each class's score over time, its threshold, and its events shaded (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nonspeech.decisions import decision_scores  # noqa: E402
from nonspeech.events import Event  # noqa: E402
from nonspeech.inference.detect import Windows, cell_scores  # noqa: E402
from nonspeech.labels import NEGATIVE  # noqa: E402


def plot_timeline(
    windows: Windows, classes: list[str], events: list[Event], thresholds: np.ndarray, pool: str, rule: str,
    out: Path, title: str,
) -> None:
    """Write one row per target class: the decision score (by `rule`) of every stretch between window edges, the
    class threshold dashed, and the class's events shaded."""
    edges, probabilities = cell_scores(windows, pool)
    scores = decision_scores(probabilities, classes, rule)
    targets = [i for i, label in enumerate(classes) if label != NEGATIVE]
    figure, axes = plt.subplots(len(targets), 1, sharex=True, squeeze=False,
                                figsize=(min(40.0, 6.0 + windows.seconds / 10.0), 0.9 * len(targets) + 1.2))
    colours = plt.get_cmap("tab10")
    for row, index in zip(axes[:, 0], targets):
        colour = colours(index % 10)
        for event in (e for e in events if e.label == classes[index]):
            row.axvspan(event.start, event.end, color=colour, alpha=0.25, linewidth=0)
        row.stairs(scores[:, index], edges, color=colour, linewidth=1.2)
        row.axhline(thresholds[index], color="grey", linestyle="--", linewidth=0.8)
        row.set_ylim(0, 1)
        row.set_yticks([0, 1])
        row.set_ylabel(classes[index], rotation=0, ha="right", va="center")
        row.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlim(0, windows.seconds)
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].set_title(f"{title}: class scores (dashed: threshold), events shaded", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
