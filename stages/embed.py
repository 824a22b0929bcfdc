"""Stage embed@NAME: clip embeddings of the features by the frozen pretrained body configured as embed.NAME."""

import sys
from pathlib import Path

from common import run

from nonspeech.embed import compute_embeddings


def main(params: dict) -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in params["embed"]:
        raise ValueError(f"usage: python stages/embed.py NAME, NAME one of embed: {sorted(params['embed'])}")
    name = sys.argv[1]
    spec = params["embed"][name]
    compute_embeddings(
        Path("data/features/logmel.zarr"), Path(f"data/embed/{name}.zarr"), Path(spec["weights"]), spec["width"], spec["tags"],
    )


if __name__ == "__main__":
    run(main)
