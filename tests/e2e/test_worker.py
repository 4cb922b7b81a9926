"""`sanitrack worker` as a process: it answers /health once its jobs ran, and stops cleanly
on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from broker import free_port
from storage import Pool


async def test_the_worker_runs_its_jobs_and_stops_on_sigterm(pool: Pool, database_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SANITRACK_DATABASE_URL": database_url,
        "SANITRACK_HTTP_PORT": str(port),
        "SANITRACK_LOG_LEVEL": "WARNING",
        "SANITRACK_CUSTOMERS__SWEEP_INTERVAL_S": "1",
        "SANITRACK_CUSTOMERS__MAP_CELLS_INTERVAL_S": "1",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sanitrack.cli", "worker", env=env
    )
    try:
        report: dict[str, object] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(150):
                try:
                    answer = await client.get("/health")
                    report = answer.json()
                    jobs = report.get("jobs_finished_at")
                    if answer.status_code == 200 and isinstance(jobs, dict) and len(jobs) == 2:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        assert report.get("ok") is True, report
        jobs = report["jobs_finished_at"]
        assert isinstance(jobs, dict)
        assert set(jobs) == {"changes", "map-cells"}
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), 20)
    assert code == 0
