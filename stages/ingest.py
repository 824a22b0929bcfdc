"""Stage ingest: list the sources' clips, decode, resample and fix their length."""

from pathlib import Path

import pandas as pd
from common import run

from nonspeech.data.ingest import ingest
from nonspeech.data.sources.extra import read_listing
from nonspeech.data.sources.listing import list_clips

LISTINGS = Path("data/sources")  # stage sources@NAME writes NAME.csv here


def main(params: dict) -> None:
    data, audio = params["data"], params["audio"]
    root = Path(data["root"])
    extra = {name: read_listing(LISTINGS / f"{name}.csv", name) for name in data["sources"]}
    clips, excluded = list_clips(
        data["source"], root, data["test_fraction"], data["split_seed"], data["classes"], Path(data["negatives"]),
        {name: listed for name, (listed, _) in extra.items()},
    )
    unmapped = [dropped for _, dropped in extra.values()]
    ingest(
        clips, pd.concat([excluded, *unmapped], ignore_index=True), root, Path("data/ingest"), audio["sample_rate"],
        audio["seconds"], params["ingest"]["max_quarantine_fraction"], params["ingest"]["workers"],
        params["ingest"]["truncated"], {name: Path(spec["root"]) for name, spec in data["sources"].items()},
    )


if __name__ == "__main__":
    run(main)
