"""The collector's settings while serving (`_collector`): no collections from request churn,
cyclic garbage still collected, start-up frozen, everything restored afterwards."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from tenantvault._collector import YOUNG_THRESHOLD, tuned_collector


class _Node:
    """A container object that can be put in a reference cycle."""

    def __init__(self) -> None:
        self.other: Any = None


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection that runs while the test does."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


def _churn(rounds: int, size: int) -> None:
    # A request's objects: allocated, used, and freed by reference counting when it is done.
    for _ in range(rounds):
        objects = [{"n": n} for n in range(size)]
        del objects


def test_request_churn_triggers_no_collection(collections: list[int]) -> None:
    with tuned_collector():
        collections.clear()
        in_flight = [[n] for n in range(5_000)]  # what the requests in flight hold
        _churn(rounds=200, size=2_000)
        del in_flight
        assert collections == []


def test_request_churn_collects_with_the_default_threshold(collections: list[int]) -> None:
    # The problem the module solves: without it the same churn collects again and again.
    in_flight = [[n] for n in range(5_000)]
    collections.clear()
    _churn(rounds=200, size=2_000)
    del in_flight
    assert len(collections) > 10


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)  # unreachable on return: only a collection frees it


def test_cyclic_garbage_is_collected_within_the_threshold(collections: list[int]) -> None:
    with tuned_collector():
        oldest = _cycle()
        made = 2
        while oldest() is not None:
            _cycle()
            made += 2
            assert made <= YOUNG_THRESHOLD + 2  # garbage is bounded: freed by then
        assert made > YOUNG_THRESHOLD // 2  # ...and not freed much sooner (the setting holds)
        assert 0 in collections


def test_start_up_objects_are_frozen_while_serving_and_released_after() -> None:
    before = gc.get_freeze_count()
    start_up = _Node()
    with tuned_collector():
        assert gc.get_freeze_count() > before
        assert not any(tracked is start_up for tracked in gc.get_objects())
    assert gc.get_freeze_count() == 0
    assert any(tracked is start_up for tracked in gc.get_objects())


def test_thresholds_are_raised_while_serving_and_restored_after() -> None:
    previous = gc.get_threshold()
    with tuned_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *previous[1:])
    assert gc.get_threshold() == previous


def test_thresholds_are_restored_when_serving_fails() -> None:
    previous = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_collector():
        raise RuntimeError("the server failed")
    assert gc.get_threshold() == previous
    assert gc.get_freeze_count() == 0
