"""Keep Python's cyclic garbage collector out of the analysis.

An analysis allocates millions of small objects (syntax trees, facts, values)
and frees almost all of them by reference counting: they form no cycles.  The
cyclic collector still runs every few hundred allocations, and each full
collection walks every object still alive, so its cost grows with the model
built so far.  On saleor it was a quarter of a cold run.  Pausing it while the
model is built removes that cost; memory is unchanged because the collector
had almost nothing to free.

When the pause ends, what is alive is frozen (:func:`gc.freeze`): otherwise
the first collection after it would walk every object the analysis made, all
still counted as young.  Frozen objects are still freed when nothing refers
to them; only a cycle among them would outlive its use, and a run makes none
(a test collects after one and finds nothing).  A model kept for the rest of
a process (the flake8 plugin's) is then never walked again, and workers
forked afterwards do not copy its pages by touching their reference counts.
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
            gc.freeze()
            gc.enable()
