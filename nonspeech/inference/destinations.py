"""Where `predict` and `export` write, decided and checked before any work: never over an input or another output,
never into a folder given as a file, never where it cannot be written; one file per recording named uniquely."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

from nonspeech.errors import OutputError


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (existing or not)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_writable(path: Path, option: str) -> None:
    """OutputError unless `path` can be written: not a folder, and a file can be made in its nearest existing folder
    (tried, so that read-only mounts and root alike are answered truly)."""
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{option} {path}: {folder} is a file, not a folder")
    try:
        if path.exists():
            path.open("a").close()
        else:
            tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise OutputError(f"{option} {path} cannot be written ({exc.strerror})") from None


def recording_names(files: list[Path]) -> dict[Path, str]:
    """A distinct name per recording: its stem; where stems repeat, its path below the inputs' common folder with
    `_` for `/` (and its extension where that alone tells two apart)."""
    def distinct(names: dict[Path, str]) -> bool:
        return len(set(names.values())) == len(names)

    names = {f: f.stem for f in files}
    if distinct(names):
        return names
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in files]))
    relative = {f: f.resolve().relative_to(root) for f in files}
    for keep_suffix in (False, True):
        names = {f: "_".join((r if keep_suffix else r.with_suffix("")).parts) for f, r in relative.items()}
        if distinct(names):
            return names
    clash = next(name for name, n in Counter(names.values()).items() if n > 1)
    raise OutputError(f"two recordings would write the same per-recording file ({clash}): "
                      + ", ".join(str(f) for f, name in names.items() if name == clash))


def per_recording(out: Path, name: str) -> Path:
    """`out` with the recording's name appended to its stem: FILE_<name>.suffix."""
    return out.with_name(f"{out.stem}_{name}{out.suffix}")


def plan_predict(out: Path | None, plot: Path | None, files: list[Path], per_file_out: bool) -> dict[Path, str]:
    """Check --out and --plot against the inputs and each other before any work; return the recording names used
    in per-recording files (empty when every output is a single file)."""
    if plot is not None and plot.suffix.lower() != ".png":
        raise OutputError(f"--plot {plot}: writes a PNG image; give a file name ending in .png")
    several = len(files) > 1
    names = recording_names(files) if several and (plot is not None or per_file_out) else {}
    destinations: list[tuple[str, Path]] = []
    for option, path, split in (("--out", out, per_file_out), ("--plot", plot, True)):
        if path is None:
            continue
        check_writable(path, option)
        destinations += [(option, per_recording(path, name)) for name in names.values()] if split and names else [(option, path)]
    for i, (option, path) in enumerate(destinations):
        for source in files:
            if same_file(path, source):
                raise OutputError(f"{option} {path} is one of the input recordings; refusing to overwrite it")
        for other_option, other in destinations[:i]:
            if same_file(path, other):
                raise OutputError(f"{other_option} and {option} both write {path}; give them different names")
    return names


def check_export(out: Path, model: Path) -> None:
    """`export --out` must be writable and must not be the checkpoint it is made from."""
    check_writable(out, "--out")
    if same_file(out, model):
        raise OutputError(f"--out {out} is the checkpoint being exported; refusing to overwrite it")
