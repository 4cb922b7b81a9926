"""``sanitrack truck-service`` against the real PostgreSQL: a truck a breakdown took out of
service goes back into plans, and a wrong id says so in one line."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

import fleet
from sanitrack import cli


async def _truck(url: str) -> tuple[str, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tenant = await fleet.ensure_tenant(conn, "urenco-cli", "URENCO dòng lệnh")
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-555.55", "Xe ép rác", 800)
        await fleet.set_in_service(conn, tenant.id, vehicle_id, False)  # broken down
        await conn.commit()
        return tenant.slug, vehicle_id


async def _in_service(url: str, slug: str, vehicle_id: int) -> bool:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        tenant = await fleet.get_tenant(conn, slug)
        return (await fleet.get_vehicle(conn, tenant.id, vehicle_id)).in_service


def test_truck_service_puts_a_truck_back_and_takes_it_out(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANITRACK_DATABASE_URL", database_url)
    slug, vehicle_id = asyncio.run(_truck(database_url))
    assert cli.main(["truck-service", str(vehicle_id), "--tenant", slug]) == 0
    assert "29C-555.55 is in service: plans use it again" in capsys.readouterr().out
    assert asyncio.run(_in_service(database_url, slug, vehicle_id)) is True
    assert cli.main(["truck-service", str(vehicle_id), "--tenant", slug, "--out"]) == 0
    assert "29C-555.55 is out of service" in capsys.readouterr().out
    assert asyncio.run(_in_service(database_url, slug, vehicle_id)) is False
    assert cli.main(["truck-service", str(vehicle_id + 1000), "--tenant", slug]) == 1
    assert f"vehicle {vehicle_id + 1000} of 'urenco-cli'" in capsys.readouterr().err
