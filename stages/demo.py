"""Stage demo: synthesise the offline demo dataset."""

from pathlib import Path

from common import run

from nonspeech.data.sources.demo import generate_demo


def main(params: dict) -> None:
    generate_demo(Path("data/raw/demo"), params["demo"]["clips_per_class"], params["demo"]["seed"])


if __name__ == "__main__":
    run(main)
