"""Progress for long CLI operations: a `rich` bar or spinner on a terminal, nothing when the
output is piped or redirected (scripts and logs get only the result)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import IO, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_lines", "working"]

# Advance the bar once per this many bytes: a per-line update would cost more than the
# hashing it reports on, for logs of millions of entries.
_STEP_BYTES = 1 << 16


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def progress_lines(
    handle: IO[bytes], *, total_bytes: int, label: str, stream: TextIO
) -> Iterator[Iterable[bytes]]:
    """The lines of `handle`, drawing a bar of bytes read on `stream` if it is a terminal."""
    if not _is_terminal(stream):
        yield handle
        return
    console = Console(file=stream, highlight=False)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total_bytes)

        def lines() -> Iterator[bytes]:
            pending = 0
            for line in handle:
                pending += len(line)
                if pending >= _STEP_BYTES:
                    progress.advance(task, pending)
                    pending = 0
                yield line
            progress.advance(task, pending)

        yield lines()


@contextlib.contextmanager
def working(label: str, *, stream: TextIO) -> Iterator[None]:
    """A spinner on `stream` while a long call runs (a report built by the server), if it is
    a terminal; nothing otherwise."""
    if not _is_terminal(stream):
        yield
        return
    console = Console(file=stream, highlight=False)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
    ) as progress:
        progress.add_task(label, total=None)
        yield
