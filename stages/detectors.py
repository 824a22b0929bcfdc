"""What the detector stages share: the detector named on their command line."""

from __future__ import annotations


def detector_name(params: dict, argv: list[str]) -> str:
    """The detector named on the command line (a key of params `detector`); ValueError with the usage otherwise."""
    names = sorted(params.get("detector") or {})
    if len(argv) != 2 or argv[1] not in names:
        raise ValueError(f"usage: python {argv[0]} NAME, NAME one of detector: {names}")
    return argv[1]
