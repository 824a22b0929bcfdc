"""Give the C heap's free memory back to the system, where the C library can (glibc's `malloc_trim`)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def release_free_memory() -> None:
    """Return the free pages of every malloc arena to the system; nothing where the C library cannot."""
    trim = malloc_trim()
    if trim is not None:
        trim(0)
