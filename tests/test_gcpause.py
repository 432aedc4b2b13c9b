"""The cyclic collector is paused while a model is built, and only then."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobaudit import engine, flake8_plugin
from jobaudit.checks import ALL_RULES
from jobaudit.config import Config
from jobaudit.gcpause import paused

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "demo"


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Each test starts with the collector on and nothing frozen, and leaves it so."""
    gc.enable()
    gc.unfreeze()
    yield
    gc.enable()
    gc.unfreeze()


def test_paused_restores_the_collector_even_on_error() -> None:
    with pytest.raises(ValueError), paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()


def test_what_the_block_made_is_frozen_after_it() -> None:
    before = gc.get_freeze_count()
    with paused():
        kept = [[index] for index in range(1000)]
    assert gc.get_freeze_count() >= before + len(kept)


def test_a_run_leaves_no_cycles_behind(tmp_path: Path) -> None:
    tree = shutil.copytree(DEMO, tmp_path / "demo")
    rules = [rule() for rule in ALL_RULES]
    gc.collect()
    gc.disable()
    result = engine.run([tree], Config(root=tree, source=None), rules)
    assert result.findings
    del result
    assert gc.collect() == 0


def test_paused_nests_and_leaves_a_disabled_collector_disabled() -> None:
    with paused():
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()


def test_a_run_pauses_the_collector_while_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    original = engine.check

    def spying_check(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "check", spying_check)
    tree = shutil.copytree(DEMO, tmp_path / "demo")
    rules = [rule() for rule in ALL_RULES]
    result = engine.run([tree], Config(root=tree, source=None), rules)
    assert result.findings
    assert seen and not any(seen)
    assert gc.isenabled()


def test_the_plugin_freezes_the_model_it_keeps(tmp_path: Path) -> None:
    tree = shutil.copytree(DEMO, tmp_path / "demo")
    flake8_plugin.load_context.cache_clear()
    context = flake8_plugin.load_context(tree, None)
    assert context.findings
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert not any(context.corpus is obj for obj in gc.get_objects())
