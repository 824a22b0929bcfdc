"""Stage ingest: list the source's clips, decode, resample and fix their length."""

from pathlib import Path

from common import run

from nonspeech.data.ingest import ingest
from nonspeech.data.sources.listing import list_clips


def main(params: dict) -> None:
    data, audio = params["data"], params["audio"]
    root = Path(data["root"])
    clips, excluded = list_clips(
        data["source"], root, data["test_fraction"], data["split_seed"], data["classes"], Path(data["negatives"]),
    )
    ingest(
        clips, excluded, root, Path("data/ingest"), audio["sample_rate"], audio["seconds"],
        params["ingest"]["max_quarantine_fraction"], params["ingest"]["workers"], params["ingest"]["truncated"],
    )


if __name__ == "__main__":
    run(main)
