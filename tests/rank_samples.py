"""Run under torchrun: each rank writes the clip ids the training loader gives it for one epoch."""

import json
import sys
from pathlib import Path

import torch

from nonspeech.data.loader import batch_loader, batch_pipeline, shard_urls
from nonspeech.devices.distributed import join_world, leave_world

if __name__ == "__main__":
    shards_root, splits, out_dir = sys.argv[1], sys.argv[2].split(","), Path(sys.argv[3])
    world = join_world(torch.device("cpu"))
    pipeline = batch_pipeline(shard_urls(shards_root, splits), 3, shuffle=True, seed=5, epoch=1)
    ids = [cid for _, _, batch_ids in batch_loader(pipeline, workers=2) for cid in batch_ids]
    (out_dir / f"rank{world.rank}.json").write_text(json.dumps({"world": world.size, "ids": ids}))
    leave_world(finished=True)
