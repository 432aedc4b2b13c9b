"""Keep Python's cyclic garbage collector out of the analysis.

An analysis allocates millions of small objects (syntax trees, facts, values)
and frees almost all of them by reference counting: they form no cycles.  The
cyclic collector still runs every few thousand allocations, and each full
collection walks every object still alive, so its cost grows with the model
built so far.  On saleor it was a quarter of a cold run.  Pausing it while the
model is built, then freezing what the model holds, removes that cost; memory
is unchanged because the collector had almost nothing to free.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; as before after it (nesting is fine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze() -> None:
    """Leave every object alive now out of later collections.

    For a model kept for the rest of the process (the flake8 plugin's): the
    host's own collections then do not walk it again and again, and workers
    forked afterwards do not copy its pages by touching their reference counts.
    """
    gc.freeze()
