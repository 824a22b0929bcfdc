"""Wall time of a whole `dvc repro` of the demo pipeline, in a throwaway git + DVC copy of the project.

Usage: python bench/repro_time.py [-S train.epochs=4 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "dvc.yaml", "params.yaml", "stages", "nonspeech", "models", "configs", "data/raw/negatives", "data/sources", ".dvc/config",
    ".dvc/plots", ".dvcignore",
)
ERROR_LINES = 15  # of the failed run's stderr, in its error


def copy_pipeline(dest: Path) -> None:
    """Copy the files a `dvc repro` needs into dest and commit them to a fresh git repo."""
    for name in PIPELINE_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True)


def timed_repro(repo: Path, overrides: list[str]) -> tuple[float, dict[str, float]]:
    """Run `dvc exp run -S ...` (or `dvc repro` without overrides); total seconds and seconds per stage."""
    env = {  # the stages import the copy's library, not the checkout's, so editing the checkout meanwhile is safe
        **os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo),
    }
    sets = [arg for override in overrides for arg in ("-S", override)]
    cmd = [sys.executable, "-m", "dvc", *(["exp", "run", *sets] if overrides else ["repro"])]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:  # the stages' progress bars and messages, shown when one fails
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        stages, current, since = {}, None, start
        for line in proc.stdout:
            match = re.match(r"Running stage '([^']+)'", line)
            if match or line.startswith("Updating lock file"):
                now = time.perf_counter()
                if current:
                    stages[current] = now - since
                current, since = (match.group(1), now) if match else (None, now)
        if proc.wait():
            errors.seek(0)
            tail = "".join(line.rsplit("\r", 1)[-1] for line in errors.readlines()[-ERROR_LINES:])
            raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode} in stage {current}; "
                             f"its last messages:\n{tail}")
    return time.perf_counter() - start, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-S", "--set-param", action="append", default=[], help="param override, as dvc exp run -S")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        copy_pipeline(repo)
        total, stages = timed_repro(repo, args.set_param)
        test = json.loads((repo / "data/eval/metrics.json").read_text())
    print(f"\n== dvc repro of the demo pipeline ({os.cpu_count()} cores) ==")
    for stage, seconds in stages.items():
        print(f"  {stage:<12} {seconds:6.1f} s")
    print(f"  {'total':<12} {total:6.1f} s  ({total / 60:.1f} min, DVC's own work included)")
    print(f"  test macro-F1 {test['test']['macro_f1']:.3f}, CV macro-F1 {test['cv']['macro_f1']:.3f} ± {test['cv']['macro_f1_std']:.3f}")


if __name__ == "__main__":
    main()
