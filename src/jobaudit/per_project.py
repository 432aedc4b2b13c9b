"""Results computed once per project model and shared by every rule that asks.

Several rules and the readiness report read the same project-wide index (the
enqueue calls, the error tracking found, the tests that name a job).  The
cache holds the project weakly, so an index dies with the run's model (a
process that runs many analyses, like the flake8 plugin or the test suite,
keeps none of them); a cached value must therefore not refer to its project.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


def per_project(compute: Callable[[Key], Value]) -> Callable[[Key], Value]:
    """``compute(project)``, run on the first call for each project and remembered."""
    cache: weakref.WeakKeyDictionary[Key, Value] = weakref.WeakKeyDictionary()

    @wraps(compute)
    def cached(project: Key) -> Value:
        if project not in cache:
            cache[project] = compute(project)
        return cache[project]

    return cached
