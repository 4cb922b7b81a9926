"""A benchmark's child processes die with it.

A benchmark stopped by Ctrl-C, a kill or a crash must not leave its simulator publishing
thousands of fixes a second into the machine's broker, or its ingest writing into a
database nobody reads: one did, and the test runs after it saw their own fixes drown in
the stranger's. On Linux the kernel sends each child SIGTERM when the benchmark's process
dies (``PR_SET_PDEATHSIG``); elsewhere a child outlives a killed benchmark, as before.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """In a child process: be sent SIGTERM when the parent dies (Linux; elsewhere nothing).
    Also ``preexec_fn`` of a subprocess (it holds across exec)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def child(
    target: Callable[..., object], args: tuple[Any, ...], name: str
) -> multiprocessing.process.BaseProcess:
    """A spawned process running ``target(*args)`` that dies with this one. Start it from
    the main thread: the kernel ties the child to the thread that made it."""
    return SPAWN.Process(target=_dying_with_parent, args=(os.getpid(), target, args), name=name)


def _dying_with_parent(
    parent_pid: int, target: Callable[..., object], args: tuple[Any, ...]
) -> None:
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the kernel was told
        return
    target(*args)
