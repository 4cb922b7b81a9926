"""`sanitrack demo` on its embedded defaults: PostgreSQL from the wheel, amqtt, ingest, and the
simulated city."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from broker import free_port


def test_demo_runs_on_embedded_defaults_and_stores_rows(tmp_path: Path) -> None:
    http_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SANITRACK_") or k.startswith("SANITRACK_TEST_")
    }
    env.update(
        {
            "SANITRACK_DATA_DIR": str(tmp_path / "data"),
            "SANITRACK_HTTP_PORT": str(http_port),
            "SANITRACK_BROKER__PORT": str(free_port()),
            "SANITRACK_DEMO__INTERVAL_S": "1",
            "SANITRACK_DEMO__FAULTS": "none",
            "SANITRACK_LIVE_TOKENS": '{"e2e-token": "hadong-urenco"}',
        }
    )
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sanitrack.cli",
            "demo",
            "--duration",
            "12",
            "--vehicles",
            "3",
            "--phones",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    health = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and demo.poll() is None:
        try:
            health = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1)
            if health.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    assert health is not None
    assert health.status_code == 200
    assert health.json()["database"] is True
    # The live feed answers a subscription with a snapshot of the company's alerts.
    snapshot = asyncio.run(_live_snapshot(f"ws://127.0.0.1:{http_port}/ws/live?token=e2e-token"))
    assert snapshot["type"] == "snapshot"
    assert isinstance(snapshot["alerts"], list)
    # The live map's page and the API it reads.
    page = httpx.get(f"http://127.0.0.1:{http_port}/", timeout=5)
    assert page.status_code == 200
    assert "/static/leaflet/leaflet.js" in page.text
    vehicles = httpx.get(
        f"http://127.0.0.1:{http_port}/api/v1/vehicles",
        headers={"Authorization": "Bearer e2e-token"},
        timeout=5,
    )
    assert len(vehicles.json()) == 3
    output, _ = demo.communicate(timeout=90)
    assert demo.returncode == 0, output
    assert "Health   : http://127.0.0.1:" in output
    final = [line for line in output.splitlines() if "positions stored:" in line][-1]
    stored = int(final.split("positions stored:")[1].split(",")[0])
    # three trucks, one fix a second each, for twelve seconds; phones every ten seconds
    assert stored >= 3 * 10 + 2
    assert "dead letters: 0" in final
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    assert f"Live map : http://127.0.0.1:{http_port}/#token=" in output
    assert "user dieuphoi, password " in output
    assert "alerts:" in final


async def _live_snapshot(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"op": "subscribe", "channels": ["alerts", "stops"]}))
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if message["type"] != "heartbeat":
                return dict(message)
