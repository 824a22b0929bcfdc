"""Shards streamed from a URL list: a loopback HTTP server gives the same samples as local files."""

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from nonspeech.data.loader import batch_loader, batch_pipeline, shard_urls, split_size


@pytest.fixture
def shard_server(precomputed_repo: Path) -> Iterator[str]:
    """Serve the repo's data/shards on 127.0.0.1 for the duration of a test."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(precomputed_repo / "data/shards"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _read_all(root: str, splits: list[str]) -> dict[str, tuple[torch.Tensor, int]]:
    pipeline = batch_pipeline(shard_urls(root, splits), 4, shuffle=True, seed=0)
    return {cid: (xi, int(yi)) for x, y, ids in batch_loader(pipeline, workers=2) for xi, yi, cid in zip(x, y, ids)}


def test_http_shards_equal_local_shards(shard_server: str, precomputed_repo: Path) -> None:
    splits = ["fold0", "fold1", "fold2", "test"]
    remote = _read_all(shard_server, splits)
    local = _read_all(str(precomputed_repo / "data/shards"), splits)
    assert remote.keys() == local.keys() and len(remote) == split_size(shard_server, splits)
    for cid, (x, y) in local.items():
        assert torch.equal(remote[cid][0], x) and remote[cid][1] == y


def test_missing_split_names_the_url(shard_server: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"http://127\.0\.0\.1:\d+/fold9/sizes\.json"):
        shard_urls(shard_server, ["fold9"])
