"""The README's demo results are the committed metrics, and it says what reproduces where."""

from __future__ import annotations

import json

import pandas as pd
from conftest import PROJECT


def test_readme_results_are_the_committed_metrics_with_their_reproducibility() -> None:
    readme = (PROJECT / "README.md").read_text()
    results = readme[readme.index("## Results on the demo set"):readme.index("## Experiments")]
    metrics = json.loads((PROJECT / "data/eval/metrics.json").read_text())
    folds = pd.read_csv(PROJECT / "data/eval/cv_folds.csv")["macro_f1"]
    test, cv = metrics["test"], metrics["cv"]
    for row in (f"| test accuracy | {test['accuracy']:.3f} |", f"| test macro-F1 | {test['macro_f1']:.3f} (chance:",
                f"| test loss | {test['loss']:.3f} |",
                f"| CV macro-F1 (grouped 3-fold) | {cv['macro_f1']:.3f} ± {cv['macro_f1_std']:.3f} "
                f"({' / '.join(f'{f:.3f}' for f in folds)}) |"):
        assert row in results, row
    assert "**Same machine**" in results and "bit for bit" in results
    assert "**Another x86 CPU**" in results and "within" in results
