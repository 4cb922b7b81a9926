"""`sanitrack simulate` as an operator runs it: a separate process registers its scenario,
plays it into the broker, writes the truth file and the map, and says what it sent."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import orjson

import fleet
from storage import Pool
from tests.support import BrokerUnderTest


async def test_simulate_plays_a_scenario_and_writes_truth_and_map(
    tmp_path: Path, database_url: str, pool: Pool, broker: BrokerUnderTest
) -> None:
    tenant = f"sim-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITRACK_")}
    env |= {
        "SANITRACK_DATABASE_URL": database_url,
        "SANITRACK_MQTT_URL": f"mqtt://{broker.host}:{broker.port}",
    }
    command = [
        sys.executable,
        "-m",
        "sanitrack.cli",
        "simulate",
        "--vehicles",
        "2",
        "--phones",
        "2",
        "--interval-s",
        "5",
        "--speedup",
        "max",
        "--duration",
        "300",
        "--seed",
        "5",
        "--faults",
        "heavy",
        "--tenant",
        tenant,
        "--stops-per-run",
        "10",
        "--truth",
        str(tmp_path / "truth.jsonl"),
        "--map",
        str(tmp_path / "city.svg"),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output_bytes, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    output = output_bytes.decode()
    assert process.returncode == 0, output
    summary = next(line for line in output.splitlines() if "simulator: sent" in line)
    sent = int(summary.split("sent ")[1].split(" ")[0].replace(",", ""))
    acked = int(summary.split("acknowledged ")[1].split(";")[0].replace(",", ""))
    assert sent == acked > 4 * 300 / 5  # four devices, a fix every 5 s, plus status and events
    truth = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    assert truth, output
    assert {entry["device"] for entry in truth} <= {
        "truck-001",
        "truck-002",
        "phone-001",
        "phone-002",
    }
    assert (tmp_path / "city.svg").read_text(encoding="utf-8").startswith("<svg")
    async with pool.connection() as conn:
        owner = await fleet.get_tenant(conn, tenant)
        assert len(await fleet.list_devices(conn, owner.id)) == 4


async def test_simulate_without_a_broker_url_says_what_to_set(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITRACK_")}
    env["SANITRACK_DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sanitrack.cli",
        "simulate",
        "--duration",
        "10",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert b"SANITRACK_MQTT_URL" in output
