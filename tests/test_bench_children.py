"""A benchmark's child processes die with it, even when it is killed outright (a simulator
left running once flooded the machine's broker for the tests that came after)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"
)

# A benchmark in miniature: a spawned worker and a subprocess, whose pids it prints.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from bench.children import child, die_with_parent

    if __name__ == "__main__":
        worker = child(time.sleep, (120,), "worker")
        worker.start()
        command = [sys.executable, "-c", "import time; time.sleep(120)"]
        process = subprocess.Popen(command, preexec_fn=die_with_parent)
        print(worker.pid, process.pid, flush=True)
        time.sleep(120)
    """
)


def test_a_killed_benchmarks_children_die_with_it() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd="."
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2
        children = [psutil.Process(pid) for pid in pids]
        assert all(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        parent.kill()  # SIGKILL: no handler, no atexit, no multiprocessing clean-up
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.05)
        assert [_alive(c) for c in children] == [False, False]
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
