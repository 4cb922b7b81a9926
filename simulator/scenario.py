"""A whole simulated day: the city, its customers, route runs, trucks and phones, and what each
device will send. Pure and deterministic: the same config, seed and start give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field

from simulator.actors import PhoneDay, TruckDay, phone_day, truck_day
from simulator.city import City, generate_city
from simulator.faults import FaultRates, TruthLog
from simulator.points import ServicePointSpec, place_service_points
from simulator.routes import RoutePlan, partition, plan_route
from simulator.stream import DeviceEvent, DeviceScript, Emission, emissions

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh keeps no summer time

GIVEN_NAMES = (
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Hà",
    "Hải",
    "Hạnh",
    "Hoa",
    "Hùng",
    "Huyền",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Minh",
    "Nam",
    "Ngọc",
    "Phương",
    "Quân",
    "Sơn",
    "Thảo",
    "Thu",
    "Trang",
    "Tuấn",
    "Việt",
)
FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô")
MIDDLE_NAMES = ("Văn", "Thị", "Đức", "Minh", "Thanh", "Quang", "Ngọc")


class ScenarioConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 42
    vehicles: int = Field(default=30, ge=0, le=100_000)
    phones: int = Field(default=60, ge=0, le=100_000)
    interval_s: float = Field(default=5.0, ge=1, le=30)  # trucks' fix interval
    phone_interval_s: float = Field(default=10.0, ge=1, le=30)
    # GPS noise (68 % circle) for every fix; unset, each street has its own (5-30 m).
    gps_noise_m: float | None = Field(default=None, ge=0, le=100)
    stops_per_run: int = Field(default=80, ge=1, le=1000)
    # Small compactors (xe ép rác mini) work the alleys and ferry to the transfer station.
    capacity_kg: float = Field(default=400.0, gt=0)
    dwell_radius_m: float = Field(default=30.0, gt=0, le=500)
    corridor_m: float = Field(default=50.0, gt=0, le=1000)
    stagger_s: float = Field(default=120.0, ge=0)  # trucks leave the depot within this
    owntracks_share: float = Field(default=0.3, ge=0, le=1)  # phones running OwnTracks
    bin_lift_share: float = Field(default=0.5, ge=0, le=1)  # trucks with a bin-lift sensor
    # Load tests with more trucks (phones) than this share routes (walks): planning is costly.
    distinct_routes: int = Field(default=300, ge=1)
    tenant: str = Field(default="hadong-urenco", pattern=r"^[a-z0-9-]{1,64}$")
    tenant_name: str = "URENCO Hà Đông (mô phỏng)"
    faults: FaultRates = FaultRates()


@dataclass(frozen=True, slots=True)
class SimVehicle:
    index: int
    code: str  # plate
    device: str
    driver_code: str
    driver_name: str
    run_name: str
    plan: RoutePlan
    day: TruckDay


@dataclass(frozen=True, slots=True)
class SimPhone:
    index: int
    device: str
    staff_code: str
    staff_name: str
    cashier: bool
    area: int  # the route plan whose customers this person serves
    day: PhoneDay
    owntracks: bool


@dataclass(frozen=True, slots=True)
class Scenario:
    config: ScenarioConfig
    start: dt.datetime  # scenario second 0, UTC
    until_s: float
    city: City
    points: tuple[ServicePointSpec, ...]
    plans: tuple[RoutePlan, ...]
    vehicles: tuple[SimVehicle, ...]
    phones: tuple[SimPhone, ...]
    scripts: tuple[DeviceScript, ...]  # trucks first, then phones

    @property
    def local_date(self) -> dt.date:
        return self.start.astimezone(VIETNAM).date()


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY_NAMES)} {rng.choice(MIDDLE_NAMES)} {rng.choice(GIVEN_NAMES)}"


def _width(count: int) -> int:
    return max(3, len(str(count)))


def build_scenario(
    config: ScenarioConfig,
    start: dt.datetime,
    until_s: float,
    progress: Callable[[str], None] | None = None,
) -> Scenario:
    """Plan the day. ``progress`` hears what is being built (routes take the longest)."""
    say = progress or (lambda _text: None)
    until_s = float(until_s)  # an int would print differently in the stream's bookkeeping
    began = time.monotonic()
    city = generate_city(config.seed)
    routes = min(config.vehicles, config.distinct_routes) or (1 if config.phones else 0)
    points = tuple(place_service_points(city, routes * config.stops_per_run, config.seed))
    say(f"city: {len(city.streets)} streets, {len(points)} service points")
    areas = partition(points, city, routes) if routes else []
    plans: list[RoutePlan] = []
    for area_index, area in enumerate(areas):
        route_rng = random.Random(f"{config.seed}/route/{area_index}")
        plans.append(
            plan_route(
                city,
                area_index,
                [points[i] for i in area],
                start_s=round(route_rng.uniform(0.0, config.stagger_s), 1),
                capacity_kg=config.capacity_kg,
                dwell_radius_m=config.dwell_radius_m,
                corridor_m=config.corridor_m,
                rng=route_rng,
            )
        )
        if (area_index + 1) % 25 == 0 or area_index + 1 == len(areas):
            say(f"routes planned: {area_index + 1}/{len(areas)}")

    width = _width(config.vehicles)
    local_start = start.astimezone(VIETNAM)
    vehicles: list[SimVehicle] = []
    days: dict[int, TruckDay] = {}
    for index in range(config.vehicles):
        plan = plans[index % len(plans)]
        device = f"truck-{index + 1:0{width}d}"
        code = f"29C-{10001 + index}"
        run_name = f"Tuyến {code} {local_start:%d/%m %H:%M}"
        template = days.get(plan.vehicle)
        if template is None:
            day = truck_day(
                city,
                plan,
                device,
                run_name,
                config.faults,
                random.Random(f"{config.seed}/truck/{index}"),
            )
            days[plan.vehicle] = day
        else:  # a load-test truck driving another truck's route: the same faults, its name
            day = replace(
                template,
                truth=tuple(replace(e, device=device, route_run=run_name) for e in template.truth),
            )
        driver_rng = random.Random(f"{config.seed}/driver/{index}")
        vehicles.append(
            SimVehicle(
                index,
                code,
                device,
                f"LX{index + 1:0{width}d}",
                _name(driver_rng),
                run_name,
                plan,
                day,
            )
        )
    say(f"trucks: {len(vehicles)}")

    phones: list[SimPhone] = []
    phone_width = _width(config.phones)
    for index in range(config.phones):
        phone_rng = random.Random(f"{config.seed}/phone/{index}")
        area_index = index % len(areas) if areas else 0
        area_points = [points[i] for i in areas[area_index]] if areas else list(points)
        cashier = index % 3 == 2
        if index < config.distinct_routes:
            walk = phone_day(
                city, area_points[:40], cashier=cashier, until_s=until_s, rng=phone_rng
            )
        else:  # a load test's extra phones walk the walks already planned
            walk = phones[index % config.distinct_routes].day
        phones.append(
            SimPhone(
                index,
                f"phone-{index + 1:0{phone_width}d}",
                f"NV{index + 1:0{phone_width}d}",
                _name(phone_rng),
                cashier,
                area_index,
                walk,
                phone_rng.random() < config.owntracks_share,
            )
        )
    say(f"phones: {len(phones)}")

    scripts = [_truck_script(config, v) for v in vehicles] + [
        _phone_script(config, p) for p in phones
    ]
    say(f"scenario ready in {time.monotonic() - began:.1f} s")
    return Scenario(
        config,
        start,
        until_s,
        city,
        points,
        tuple(plans),
        tuple(vehicles),
        tuple(phones),
        tuple(scripts),
    )


def _truck_script(config: ScenarioConfig, vehicle: SimVehicle) -> DeviceScript:
    rng = random.Random(f"{config.seed}/truck-script/{vehicle.index}")
    day = vehicle.day
    events = [DeviceEvent(day.ignition_on_s, "ignition", True)]
    if day.ignition_off_s is not None:
        events.append(DeviceEvent(day.ignition_off_s, "ignition", False))
    if rng.random() < config.bin_lift_share:
        events.extend(
            DeviceEvent((o.arrival_s + o.departure_s) / 2, "bin_lift")
            for o in day.outcomes
            if o.served
            and o.arrival_s is not None
            and o.departure_s is not None
            and vehicle.plan.stops[o.seq - 1].point is not None
        )
    return DeviceScript(
        tenant=config.tenant,
        slug=vehicle.device,
        truck=True,
        track=day.track,
        interval_s=config.interval_s,
        phase_s=round(rng.uniform(0.0, config.interval_s), 3),
        events=events,
        route_truth=list(day.truth),
        ignition_s=(day.ignition_on_s, day.ignition_off_s),
        noise_m=config.gps_noise_m,
    )


def _phone_script(config: ScenarioConfig, phone: SimPhone) -> DeviceScript:
    rng = random.Random(f"{config.seed}/phone-script/{phone.index}")
    return DeviceScript(
        tenant=config.tenant,
        slug=phone.device,
        truck=False,
        track=phone.day.track,
        interval_s=config.phone_interval_s,
        phase_s=round(rng.uniform(0.0, config.phone_interval_s), 3),
        owntracks=phone.owntracks,
        battery_pct=rng.uniform(60.0, 100.0),
        noise_m=config.gps_noise_m,
    )


def merged_emissions(scenario: Scenario, truth: TruthLog) -> Iterator[tuple[int, Emission]]:
    """Every device's emissions in scenario-time order, with the device's index in
    ``scenario.scripts``; ties go to the lower index, so the order is deterministic."""
    streams = device_streams(scenario, truth)
    heap: list[tuple[float, int, Emission]] = []
    for index, stream in enumerate(streams):
        first = next(stream, None)
        if first is not None:
            heap.append((first.at_s, index, first))
    heapq.heapify(heap)
    while heap:
        _at_s, index, emission = heap[0]
        yield index, emission
        following = next(streams[index], None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.at_s, index, following))


def device_streams(scenario: Scenario, truth: TruthLog) -> list[Iterator[Emission]]:
    """One emission generator per device (trucks, then phones), each with its own randomness."""
    return [
        emissions(
            script,
            scenario.start,
            scenario.until_s,
            scenario.config.faults,
            truth,
            random.Random(f"{scenario.config.seed}/stream/{script.slug}"),
            scenario.city.projection,
        )
        for script in scenario.scripts
    ]
