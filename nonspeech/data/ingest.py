"""Check that every listed clip decodes into a fixed-length mono waveform; write the manifest of those kept, with
the file each stage decodes it from, and a quarantine report of the rest. The waveforms are not stored: stages
that read audio decode the kept files again (docs/pipeline.md, "Storage": what that trades)."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from nonspeech.data.audio import AudioError, load_clip
from nonspeech.data.files import file_md5
from nonspeech.data.sources.listing import class_names
from nonspeech.parallel import parallel_map
from nonspeech.report import print_summary


class IngestError(RuntimeError):
    """The listed input cannot be ingested as a whole."""


TRUNCATED_POLICIES = ("quarantine", "warn")


@dataclass(frozen=True)
class DecodedClip:
    """What decoding one listed file gave: its origin and md5 (and a warning) when it is usable, else a quarantine
    reason."""

    rate: int = 0
    channels: int = 0
    seconds: float = 0.0
    md5: str = ""
    reason: str = ""
    warning: str = ""

    @property
    def usable(self) -> bool:
        """No quarantine reason."""
        return not self.reason


def _decode(path: str, sample_rate: int, length: int, truncated: str) -> DecodedClip:
    try:
        _, decoded = load_clip(path, sample_rate, length)
    except AudioError as exc:
        return DecodedClip(reason=str(exc))
    if decoded.truncation and truncated == "quarantine":
        return DecodedClip(reason=decoded.truncation)
    return DecodedClip(decoded.sample_rate, decoded.channels, decoded.seconds, file_md5(Path(path)),
                       warning=decoded.truncation)


def relative_path(path: str, root: Path) -> str:
    """The path relative to the dataset root (a directory, or a CSV file's directory) when it lies inside it."""
    base = root if root.is_dir() else root.parent
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def clip_ids(relative_paths: list[str]) -> list[str]:
    """Stable, unique, tar-safe ids made from root-relative paths."""
    ids: list[str] = []
    seen: set[str] = set()
    for rel in relative_paths:
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", str(Path(rel).with_suffix(""))).strip("_")
        cid, n = base, 1
        while cid in seen:
            n += 1
            cid = f"{base}_{n}"
        seen.add(cid)
        ids.append(cid)
    return ids


def ingest(
    clips: pd.DataFrame,
    excluded: pd.DataFrame,
    root: Path,
    out_dir: Path,
    sample_rate: int,
    seconds: float,
    max_quarantine_fraction: float,
    workers: int,
    truncated: str = "quarantine",
    source_roots: dict[str, Path] | None = None,
) -> dict[str, object]:
    """Decode every listed clip; write manifest.csv (`path` relative to its source's root, `file` as decoded and
    its `md5`, so that new bytes reach the stages that decode it again), quarantine.csv and classes.json.
    A file holding less audio than its header claims is quarantined, or kept with a warning (truncated="warn").
    Paths are kept relative to `root`, or to their source's root in `source_roots` (whose clip ids start with the
    source's name)."""
    start = time.perf_counter()
    if truncated not in TRUNCATED_POLICIES:
        raise ValueError(f"ingest.truncated must be one of {', '.join(TRUNCATED_POLICIES)}, got {truncated!r}")
    missing = [p for p in clips["path"] if not Path(p).is_file()]
    if missing:
        shown = "\n  ".join(missing[:10])
        raise IngestError(f"{len(missing)} listed file(s) missing under {root}, e.g.:\n  {shown}")
    length = int(round(sample_rate * seconds))
    out_dir.mkdir(parents=True, exist_ok=True)
    roots = source_roots or {}
    relative = [relative_path(p, roots.get(source, root)) for p, source in zip(clips["path"], clips["source"])]
    id_paths = [f"{source}/{rel}" if source in roots else rel for rel, source in zip(relative, clips["source"])]
    kept_rows, quarantined, warned = [], [], []
    decode = partial(_decode, sample_rate=sample_rate, length=length, truncated=truncated)
    outcomes = parallel_map(decode, list(clips["path"]), workers, "ingest", total=len(clips))
    for outcome, rel, cid, row in zip(outcomes, relative, clip_ids(id_paths), clips.itertuples(index=False)):
        if not outcome.usable:
            quarantined.append({"path": row.path, "label": row.label, "split": row.split, "source": row.source,
                                "reason": outcome.reason})
            continue
        if outcome.warning:
            warned.append(f"warning: {row.path}: {outcome.warning}; kept (ingest.truncated=warn)")
        kept_rows.append({
            "clip_id": cid, "split": row.split, "label": row.label, "group": row.group, "source": row.source,
            "path": rel, "file": row.path, "md5": outcome.md5, "orig_rate": outcome.rate,
            "orig_channels": outcome.channels, "orig_seconds": round(outcome.seconds, 4),
        })

    listed = len(clips) + len(excluded)
    columns = ["path", "label", "split", "source", "reason"]
    report = pd.DataFrame(quarantined, columns=columns)
    loader_dropped = excluded.reindex(columns=columns, fill_value="")
    report = pd.concat([report, loader_dropped], ignore_index=True)
    report.to_csv(out_dir / "quarantine.csv", index=False)
    manifest = pd.DataFrame(kept_rows)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    classes = class_names(manifest) if len(manifest) else []
    (out_dir / "classes.json").write_text(json.dumps(classes, indent=1) + "\n")

    bad_fraction = len(quarantined) / max(len(clips), 1)
    if bad_fraction > max_quarantine_fraction:
        raise IngestError(
            f"{len(quarantined)} of {len(clips)} clips ({bad_fraction:.1%}) could not be used, over "
            f"ingest.max_quarantine_fraction={max_quarantine_fraction}; see {out_dir / 'quarantine.csv'}"
        )
    summary = {
        "listed": listed, "kept": len(manifest), "quarantined": len(quarantined),
        "excluded_by_loader": len(excluded), "train": int((manifest["split"] == "train").sum()),
        "test": int((manifest["split"] == "test").sum()), "classes": len(classes),
        "kept_truncated": len(warned),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    for line in warned:
        print(line, file=sys.stderr)
    if classes:
        print_summary(f"classes ({len(classes)}: clips per split)", class_counts(manifest))
    if classes and manifest["source"].nunique() > 1:
        print_summary("sources (clips per class, train / test)", source_counts(manifest))
    print_summary("ingest", {**summary, "seconds": round(time.perf_counter() - start, 1)})
    return summary


def class_counts(manifest: pd.DataFrame) -> dict[str, str]:
    """'N train, M test' per class of the manifest, in class order."""
    counts = manifest.groupby(["label", "split"]).size()
    return {
        label: ", ".join(f"{counts.get((label, split), 0)} {split}" for split in ("train", "test"))
        for label in class_names(manifest)
    }


def source_counts(manifest: pd.DataFrame) -> dict[str, str]:
    """'label train/test, ...' per source of the manifest, in order of first appearance."""
    counts = manifest.groupby(["source", "label", "split"]).size()
    return {
        source: ", ".join(f"{label} {counts.get((source, label, 'train'), 0)}/{counts.get((source, label, 'test'), 0)}"
                          for label in class_names(manifest[manifest["source"] == source]))
        for source in manifest["source"].unique()
    }

