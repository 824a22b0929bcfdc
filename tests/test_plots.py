"""`dvc plots show` on a trained pipeline: the plots dvc.yaml defines, every axis named, and an offline page that
renders in a real headless Chromium with the network blocked. Chromium is required where the environment variable CI
is set (`.ci/run` installs it from Debian's `chromium` package and sets CI); elsewhere that test skips without it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT, console_script, dvc, run_env

pytestmark = pytest.mark.pipeline

CURVES = {
    "Validation macro-F1 per epoch": ("Epoch", "Validation macro-F1", {"fold0", "fold1", "fold2"}),
    "Validation loss per epoch": ("Epoch", "Validation loss (weighted cross-entropy)", {"fold0", "fold1", "fold2"}),
    "Training loss per epoch": ("Epoch", "Training loss (weighted cross-entropy)", {"fold0", "fold1", "fold2", "final"}),
}
TABLES = {
    "data/eval/confusion.csv": ("Actual class", "Predicted class"),
    "data/eval/cv_folds.csv": ("Validation macro-F1", "CV fold"),
}
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def axis_titles(spec: object) -> list[str]:
    """The titles of every x and y encoding anywhere in a Vega-Lite spec (layers and facets included)."""
    if isinstance(spec, list):
        return [title for item in spec for title in axis_titles(item)]
    if not isinstance(spec, dict):
        return []
    own = [spec[axis].get("title") for axis in ("x", "y") if isinstance(spec.get(axis), dict) and "field" in spec[axis]]
    return own + [title for key, value in spec.items() if key not in ("x", "y") for title in axis_titles(value)]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium binary. Under CI a missing one is an error, not a skip; set up before `trained_repo`
    (same scope, earlier argument), so neither outcome waits for a training run."""
    if CHROMIUM is None:
        message = "headless Chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run the offline-page test (.ci/run installs it)")
        pytest.skip(message)
    return CHROMIUM


def test_plots_are_the_fold_overlays_confusion_and_fold_bars_with_named_axes(trained_repo: Path) -> None:
    plots = json.loads(dvc(trained_repo, "plots", "show", "--json").stdout)["data"]
    assert set(plots) == set(CURVES) | set(TABLES)
    for name, (x_title, y_title, runs) in CURVES.items():
        (plot,) = plots[name]
        spec = plot["content"]
        assert set(axis_titles(spec)) == {x_title, y_title}
        assert spec["encoding"]["color"]["field"] == "run"  # one colour per fold (and the final run)
        assert {re.match(r"(fold\d|final)/", row["filename"]).group(1) for row in spec["data"]["values"]} == runs
    for name, titles in TABLES.items():
        assert set(axis_titles(plots[name][0]["content"])) == set(titles)


def test_offline_page_renders_every_plot_in_headless_chromium_without_network(
    chromium: str, trained_repo: Path, tmp_path: Path
) -> None:
    template, out = tmp_path / "template.html", tmp_path / "plots"
    made = console_script("plots-template", "--out", template)
    assert made.returncode == 0, made.stderr
    dvc(trained_repo, "plots", "show", "--html-template", str(template), "-o", str(out))
    page = (out / "index.html").read_text()
    assert "<script src=" not in page  # nothing is fetched: the libraries are inline
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
               "--virtual-time-budget=20000", "--window-size=1000,2000"]
    url = (out / "index.html").as_uri()
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, env=run_env(), timeout=180).stdout
    shot = subprocess.run([*browser, f"--screenshot={tmp_path / 'plots.png'}", url], capture_output=True, env=run_env(),
                          timeout=180)
    assert shot.returncode == 0 and (tmp_path / "plots.png").stat().st_size > 20_000
    assert len(re.findall(r'<svg[^>]*class="marks"', dom)) == len(CURVES) + len(TABLES)
    drawn = set(re.findall(r"<text[^>]*>([^<]+)</text>", dom))
    titles = {title for x, y, _ in CURVES.values() for title in (x, y)} | {t for pair in TABLES.values() for t in pair}
    assert titles <= drawn, titles - drawn
    assert {"fold0", "fold1", "fold2", "final"} <= drawn


def test_dvc_plots_output_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=PROJECT)
    assert ignored.returncode == 0
