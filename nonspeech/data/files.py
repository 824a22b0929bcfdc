"""Which files are audio: the extensions soundfile decodes, and folders expanded into the audio files below them;
what identifies a file's bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf

AUDIO_EXTENSIONS = frozenset(
    {f".{name.lower()}" for name in sf.available_formats() if name != "RAW"} | {".aif", ".oga", ".opus", ".wave"}
)


def is_audio(path: Path) -> bool:
    """Whether a path is a file with an audio extension (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()


def find_audio(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand folders recursively into audio files; return the files and (path, reason) for unusable inputs."""
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if is_audio(p))
            files.extend(found)
            if not found:
                errors.append((str(raw), "empty folder: no audio files in it or below"))
        elif path.is_file():
            files.append(path)
        else:
            errors.append((str(raw), "no such file or folder"))
    return files, errors


def file_md5(path: Path) -> str:
    """The md5 of a file's bytes; empty for a missing file (ingest names those)."""
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()
