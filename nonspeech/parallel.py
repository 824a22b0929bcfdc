"""Order-preserving parallel map over worker processes with a progress bar."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch
from tqdm import tqdm

In = TypeVar("In")
Out = TypeVar("Out")


def _single_thread() -> None:
    torch.set_num_threads(1)


def parallel_map(
    fn: Callable[[In], Out], items: Iterable[In], workers: int, desc: str, total: int | None = None,
    per_task: int = 4,
) -> Iterator[Out]:
    """Yield fn(item) in input order, using `workers` single-threaded forked processes (in-process if <= 1), each
    task `per_task` items (1 for items that are themselves large, such as chunks of clips).

    Fork starts workers at once and needs no importable __main__; callers run no torch ops before it."""
    bar = tqdm(total=total, desc=desc, unit="item", mininterval=1.0)
    if workers <= 1:
        for item in items:
            yield fn(item)
            bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_single_thread) as pool:
            for result in pool.imap(fn, items, chunksize=per_task):
                yield result
                bar.update()
    bar.close()

