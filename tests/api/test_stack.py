"""The API and the live feed inside the running system: a fix published over MQTT reaches
the map, driving off the route raises an alert on the feed, a revoked device is cut off."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.api.conftest import LiveStack, fix


async def next_of(ws: ClientConnection, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        left = deadline - asyncio.get_running_loop().time()
        message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), left))
        if message["type"] == kind:
            return message


async def live_client(stack: LiveStack, channels: list[str]) -> ClientConnection:
    ws = await connect(f"{stack.ws_url}?token={stack.token}", proxy=None, open_timeout=5)
    await ws.send(orjson.dumps({"op": "subscribe", "channels": channels}).decode())
    await next_of(ws, "snapshot")
    return ws


async def test_a_published_fix_reaches_the_live_map_and_the_latest_positions(
    live_stack: LiveStack,
) -> None:
    ws = await live_client(live_stack, ["positions"])
    try:
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        await live_stack.publish([fix(at, 20.97012, 105.77345)])
        frame = await next_of(ws, "positions")
        rows = [dict(zip(frame["columns"], row, strict=True)) for row in frame["rows"]]
        (position,) = [p for p in rows if p["device_id"] == live_stack.device_id]
        assert (position["lat"], position["lon"]) == (20.97012, 105.77345)
        assert position["vehicle_id"] == live_stack.vehicle_id
        assert position["t_ms"] == round(at.timestamp() * 1000)
    finally:
        await ws.close()
    headers = {"Authorization": f"Bearer {live_stack.token}"}
    async with httpx.AsyncClient(base_url=live_stack.base_url, headers=headers) as http:
        latest = (await http.get("/api/v1/positions/latest")).json()
    assert [(p["device_id"], p["lon"]) for p in latest] == [(live_stack.device_id, 105.77345)]


async def test_driving_off_the_route_raises_an_alert_on_the_feed(live_stack: LiveStack) -> None:
    ws = await live_client(live_stack, ["alerts", "positions"])
    try:
        now = dt.datetime.now(dt.UTC)
        on_route = [
            fix(now - dt.timedelta(seconds=120 - 5 * n), 20.9700, 105.7710 + 0.00005 * n)
            for n in range(12)
        ]
        off_route = [  # 220 m north of the path, for a minute
            fix(now - dt.timedelta(seconds=60 - 5 * n), 20.9720, 105.7716 + 0.00005 * n)
            for n in range(12)
        ]
        await live_stack.publish(on_route + off_route)
        message = await next_of(ws, "alert", timeout_s=15)
        assert message["change"] == "opened"
        assert message["alert"]["kind"] == "wrong_route"
        assert message["alert"]["vehicle_id"] == live_stack.vehicle_id
        assert message["alert"]["route_run_id"] == live_stack.run_id
    finally:
        await ws.close()


async def test_a_revoked_device_is_disconnected_and_refused(live_stack: LiveStack) -> None:
    headers = {"Authorization": f"Bearer {live_stack.token}"}
    async with aiomqtt.Client(
        live_stack.mqtt_host,
        live_stack.mqtt_port,
        username=live_stack.device_username,
        password=live_stack.device_secret,
        identifier="revoked-truck",
    ) as device:
        await device.subscribe(f"sanitrack/{live_stack.tenant}/dev/{live_stack.device_slug}/cmd")
        async with httpx.AsyncClient(base_url=live_stack.base_url, headers=headers) as http:
            # A dispatcher may not; an admin may: the stack's user is a dispatcher.
            refused = await http.post(f"/api/v1/devices/{live_stack.device_id}/revoke")
            assert refused.status_code == 403
        admin_token = await _admin_token(live_stack)
        async with httpx.AsyncClient(
            base_url=live_stack.base_url, headers={"Authorization": f"Bearer {admin_token}"}
        ) as http:
            revoked = await http.post(f"/api/v1/devices/{live_stack.device_id}/revoke")
            assert revoked.status_code == 200
        with pytest.raises(aiomqtt.MqttError):
            await until_disconnected(device)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            live_stack.mqtt_host,
            live_stack.mqtt_port,
            username=live_stack.device_username,
            password=live_stack.device_secret,
            identifier="revoked-truck-again",
        ):
            pass


async def until_disconnected(client: aiomqtt.Client) -> None:
    async with asyncio.timeout(5):
        async for _ in client.messages:
            pass


async def _admin_token(stack: LiveStack) -> str:
    import accounts

    async with stack.pool.connection() as conn:
        tenant_id = (await (await conn.execute("SELECT id FROM tenants")).fetchone() or [0])[0]
        user = await accounts.create_user(
            conn,
            tenant_id,
            accounts.NewUser("quantri", "Quản trị", accounts.Role.ADMIN, "mật khẩu quản trị"),
        )
        issued = await accounts.issue_token(conn, user, dt.datetime.now(dt.UTC), 600)
    return issued.token
