"""A small built-in publisher: a few trucks driving loops in Hà Đông, Hanoi.

Enough to see rows flow in `sanitrack demo` until the full simulator
(issue: Simulator) replaces it. Every truck is a registered device with its
own credentials and its own MQTT session, publishing QoS 1 fixes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import dataclass

import aiomqtt
import orjson

import fleet
from sanitrack.clock import Clock
from storage import Pool

# Hà Đông district centre (Quang Trung street near the district People's Committee).
HA_DONG = (20.9713, 105.7788)
_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class LoopTruck:
    username: str
    secret: str
    topic: str
    centre: tuple[float, float]
    radius_m: float
    speed_kmh: float
    phase: float

    def position(self, seconds: float) -> tuple[float, float, float]:
        """Latitude, longitude and heading after ``seconds`` on the loop."""
        angular_speed = self.speed_kmh / 3.6 / self.radius_m
        angle = self.phase + angular_speed * seconds
        north = self.radius_m * math.cos(angle)
        east = self.radius_m * math.sin(angle)
        lat = self.centre[0] + north / _M_PER_DEG_LAT
        lon = self.centre[1] + east / (_M_PER_DEG_LAT * math.cos(math.radians(self.centre[0])))
        heading = (math.degrees(angle) + 90.0) % 360.0
        return lat, lon, heading


async def register_trucks(
    pool: Pool, tenant_slug: str, count: int, seed: int = 7
) -> list[LoopTruck]:
    """Create (or re-key) the demo tenant's trucks and devices through the fleet service."""
    rng = random.Random(seed)
    trucks = []
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, tenant_slug, "URENCO Hà Đông (demo)")
        existing = {d.slug: d for d in await fleet.list_devices(conn, tenant.id)}
        for n in range(1, count + 1):
            slug = f"truck-{n:03d}"
            if slug in existing:
                secret = await fleet.rotate_secret(conn, existing[slug].id)
            else:
                vehicle_id = await fleet.create_vehicle(
                    conn, tenant.id, f"29C-{10000 + n}", f"Xe ép rác {n}", capacity_kg=7000
                )
                created = await fleet.create_device(
                    conn, tenant, slug, fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
                )
                secret = created.secret
            await conn.commit()
            centre = (HA_DONG[0] + rng.uniform(-0.01, 0.01), HA_DONG[1] + rng.uniform(-0.01, 0.01))
            trucks.append(
                LoopTruck(
                    username=fleet.device_username(tenant_slug, slug),
                    secret=secret,
                    topic=f"sanitrack/{tenant_slug}/dev/{slug}/pos",
                    centre=centre,
                    radius_m=rng.uniform(300, 1200),
                    speed_kmh=rng.uniform(12, 30),
                    phase=rng.uniform(0, 2 * math.pi),
                )
            )
    return trucks


async def drive(
    truck: LoopTruck,
    host: str,
    port: int,
    interval_s: float,
    clock: Clock,
    stop: asyncio.Event,
    rng: random.Random,
) -> int:
    """Publish one truck's fixes until ``stop``; return how many were published."""
    published = 0
    started = clock.monotonic()
    async with aiomqtt.Client(
        host, port, username=truck.username, password=truck.secret, identifier=truck.username
    ) as client:
        while not stop.is_set():
            lat, lon, heading = truck.position(clock.monotonic() - started)
            accuracy = rng.uniform(3, 12)
            fix = {
                "ts": clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "lat": round(lat + rng.gauss(0, accuracy / 3) / _M_PER_DEG_LAT, 7),
                "lon": round(lon + rng.gauss(0, accuracy / 3) / _M_PER_DEG_LAT, 7),
                "speed_kmh": round(truck.speed_kmh + rng.uniform(-3, 3), 1),
                "heading_deg": round(heading, 1),
                "accuracy_m": round(accuracy, 1),
                "ignition": True,
                "seq": published,
            }
            await client.publish(truck.topic, orjson.dumps(fix), qos=1)
            published += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
    return published
