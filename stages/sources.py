"""Stage sources@NAME: list data.sources entry NAME (class map, hold-out rule, file fingerprints) for ingest."""

import sys
from pathlib import Path

from common import run

from nonspeech.data.sources.extra import list_extra_source


def main(params: dict) -> None:
    name, data = sys.argv[1], params["data"]
    listing = list_extra_source(name, data["sources"][name], data["test_fraction"], data["split_seed"])
    out = Path("data/sources") / f"{name}.csv"
    listing.to_csv(out, index=False)
    kept = listing[listing["reason"] == ""]
    print(f"sources@{name}: {len(kept)} clips ({', '.join(f'{label} {n}' for label, n in kept['label'].value_counts().sort_index().items())}), "
          f"{len(listing) - len(kept)} left out by its class_map")


if __name__ == "__main__":
    run(main)
