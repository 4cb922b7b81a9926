"""Schemathesis drives every operation of the served OpenAPI schema with generated and
hostile inputs, against the running system: no request may make a 5xx."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import accounts
from tests.api.conftest import LiveStack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


async def test_no_generated_request_makes_a_server_error(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    if not SCHEMATHESIS.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (it is in the dev extra): cannot fuzz")
    token = await _admin_token(live_stack)
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else shutil.which("schemathesis")),
        "run",
        f"{live_stack.base_url}/api/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        # These end the token's own session; the rest of the run would only see 401s.
        # Planning runs the solver for its whole time limit (up to minutes) per request:
        # tests/api/test_plans.py tries its bad inputs instead.
        "--exclude-path-regex",
        "/(auth/logout|users/\\{user_id\\}/(password|disable)|plans|plans/replan)$",
        "--max-examples",
        "25",
        "--seed",
        "20261204",
        "--workers",
        "1",
        "--max-time",
        "100",
        "--report-dir",
        str(tmp_path),
    ]
    finished = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=240, check=False
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    # "13150 generated, 13150 passed": every generated case passed the check.
    checked = re.search(r"(\d+) generated, (\d+) passed", output)
    assert checked is not None, output[-3000:]
    generated, passed = int(checked.group(1)), int(checked.group(2))
    assert generated == passed, output[-3000:]
    assert generated > 1000, output[-3000:]  # the run really exercised the API


async def _admin_token(stack: LiveStack) -> str:
    async with stack.pool.connection() as conn:
        cursor = await conn.execute("SELECT id FROM tenants")
        row = await cursor.fetchone()
        assert row is not None
        user = await accounts.create_user(
            conn,
            row[0],
            accounts.NewUser("fuzzer", "Fuzzer", accounts.Role.ADMIN, "fuzzing password"),
        )
        issued = await accounts.issue_token(conn, user, dt.datetime.now(dt.UTC), 3600)
    return issued.token
