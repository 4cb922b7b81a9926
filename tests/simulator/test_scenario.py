"""The scenario is deterministic, its faults land at their rates, and every truth entry is what
the stream really did. Offline: the emissions are read straight from the device scripts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
from collections import defaultdict
from functools import cache
from typing import Any
from xml.etree import ElementTree

import orjson
import pytest
import shapely

from ingest.decode import Limits, decode
from ingest.topics import route
from simulator import FaultKind, FaultRates, Scenario, ScenarioConfig, TruthLog, build_scenario
from simulator.actors import stretches_of
from simulator.drawing import city_svg
from simulator.scenario import merged_emissions
from simulator.stream import Action, DeviceScript, Emission

START = dt.datetime(2026, 12, 4, 0, 30, tzinfo=dt.UTC)  # 07:30 in Hà Đông
HEAVY = FaultRates(
    wrong_route_per_vehicle_hour=2.0,
    skipped_stop_share=0.1,
    late_run_share=0.5,
    gps_jump_share=0.01,
    dropout_per_device_hour=1.0,
    store_and_forward_per_phone_hour=1.0,
    duplicate_share=0.02,
    out_of_order_share=0.02,
    clock_skew_device_share=0.2,
    malformed_share=0.01,
    wrong_credentials_per_device_hour=0.5,
)


@cache
def scenario(seed: int = 7, vehicles: int = 6, phones: int = 6, hours: float = 3.0) -> Scenario:
    config = ScenarioConfig(
        seed=seed, vehicles=vehicles, phones=phones, stops_per_run=40, faults=HEAVY
    )
    return build_scenario(config, START, hours * 3600)


def play_offline(played: Scenario) -> tuple[list[tuple[DeviceScript, Emission]], TruthLog, bytes]:
    sink = io.BytesIO()
    truth = TruthLog(played.start, sink)
    emitted = [(played.scripts[i], e) for i, e in merged_emissions(played, truth)]
    return emitted, truth, sink.getvalue()


@cache
def offline(seed: int = 7) -> tuple[list[tuple[DeviceScript, Emission]], TruthLog, bytes]:
    return play_offline(scenario(seed))


def fix_documents(payload: bytes) -> list[dict[str, Any]]:
    document = orjson.loads(payload)
    return document if isinstance(document, list) else [document]


def fix_time_s(fix: dict[str, Any]) -> float:
    if "tst" in fix:
        return float(fix["tst"] - START.timestamp())
    ts = fix["ts"]
    moment = (
        dt.datetime.fromtimestamp(ts / 1000, dt.UTC)
        if isinstance(ts, int)
        else dt.datetime.fromisoformat(ts)
    )
    return (moment - START).total_seconds()


def positions(emitted: list[tuple[DeviceScript, Emission]]) -> dict[str, list[Emission]]:
    """Position messages per device that the server should accept (malformed ones left out)."""
    found: dict[str, list[Emission]] = defaultdict(list)
    for script, emission in emitted:
        is_position = emission.action is Action.PUBLISH and emission.topic == script.position_topic
        if is_position and _is_good_fix(emission.payload):
            found[script.slug].append(emission)
    return found


def test_same_seed_same_stream_and_truth() -> None:
    first, _, truth_a = offline()
    second, _, truth_b = play_offline(build_scenario(scenario().config, START, 3 * 3600))

    def digest(emitted: list[tuple[DeviceScript, Emission]]) -> str:
        hashed = hashlib.sha256()
        for script, e in emitted:
            hashed.update(f"{script.slug}|{e.at_s}|{e.action}|{e.topic}|".encode() + e.payload)
        return hashed.hexdigest()

    assert digest(first) == digest(second)
    assert truth_a == truth_b
    assert len(truth_a.splitlines()) > 50
    other, _, truth_c = play_offline(scenario(seed=8))
    assert digest(other) != digest(first)
    assert truth_c != truth_a


def test_emissions_are_in_time_order_and_truth_is_valid_jsonl() -> None:
    emitted, truth, raw = offline()
    times = [e.at_s for _, e in emitted]
    assert times == sorted(times)
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert len(lines) == len(truth)
    assert {line["kind"] for line in lines} == {str(kind) for kind in FaultKind}
    for line in lines:
        assert set(line) == {
            "kind",
            "device",
            "route_run",
            "stop",
            "service_point",
            "start",
            "end",
            "details",
        }
        dt.datetime.fromisoformat(line["start"])


def test_message_fault_rates_land_near_their_settings() -> None:
    emitted, truth, _ = offline()
    fixes = sum(
        len(fix_documents(e.payload)) for messages in positions(emitted).values() for e in messages
    )
    messages = sum(1 for _, e in emitted if e.action is Action.PUBLISH)
    counts = truth.counts
    for kind, share, base in (
        (FaultKind.DUPLICATE, HEAVY.duplicate_share, fixes),
        (FaultKind.OUT_OF_ORDER, HEAVY.out_of_order_share, fixes),
        (FaultKind.GPS_JUMP, HEAVY.gps_jump_share, fixes),
        (FaultKind.MALFORMED, HEAVY.malformed_share, fixes),
    ):
        expected = share * base
        # binomial: within 4 standard deviations
        assert abs(counts[kind] - expected) <= 4 * math.sqrt(expected) + 2, (kind, counts[kind])
    assert messages > fixes * 0.5
    device_hours = len(scenario().scripts) * 3.0
    trucks_hours = len(scenario().vehicles) * 3.0
    expected = HEAVY.wrong_credentials_per_device_hour * device_hours
    assert abs(counts[FaultKind.WRONG_CREDENTIALS] - expected) <= 4 * math.sqrt(expected) + 2
    expected = HEAVY.dropout_per_device_hour * trucks_hours
    # a dropout lasts minutes, so fewer start per hour than the rate of a point process
    assert 0.5 * expected - 3 <= counts[FaultKind.DROPOUT] <= expected + 4 * math.sqrt(expected)


def test_duplicates_out_of_order_and_malformed_are_what_was_sent() -> None:
    emitted, truth, _ = offline()
    sent: dict[tuple[str, float], list[bytes]] = defaultdict(list)
    for script, e in emitted:
        if e.action is Action.PUBLISH and e.topic == script.position_topic:
            sent[(script.slug, e.at_s)].append(e.payload)
    limits, now = Limits(), START + dt.timedelta(hours=4)
    checked = 0
    for entry in truth.entries:
        if entry.kind is FaultKind.DUPLICATE:
            at_once = sent[(entry.device, entry.start_s)]
            assert len(at_once) - len(set(at_once)) == 1  # one payload sent twice
            checked += 1
        elif entry.kind is FaultKind.OUT_OF_ORDER and entry.end_s is not None:
            pair = sent.get((entry.device, entry.end_s))
            if pair is None:
                continue  # the next fix fell into a dropout: the held one went later
            newer, held = (fix_documents(p)[0] for p in pair[:2])
            assert fix_time_s(held) < fix_time_s(newer)
            checked += 1
    assert checked > 20
    malformed = [
        (script, e)
        for script, e in emitted
        if e.action is Action.PUBLISH
        and e.topic == script.native_topic
        and not _is_good_fix(e.payload)
    ]
    assert len(malformed) == truth.counts[FaultKind.MALFORMED]
    for _script, e in malformed:
        target = route(e.topic)
        assert target is not None
        decoded = decode(e.payload, target.kind, limits, now)
        assert decoded.rejections, e.payload
        assert not decoded.fixes


def _is_good_fix(payload: bytes) -> bool:
    try:
        documents = fix_documents(payload)
    except orjson.JSONDecodeError:
        return False
    return all(
        isinstance(d, dict)
        and ("ts" in d or "tst" in d)
        and isinstance(d.get("lat"), float)
        and abs(d["lat"]) <= 90
        and d["lat"] != 0
        for d in documents
    )


def test_dropouts_send_nothing_and_store_and_forward_sends_one_batch_later() -> None:
    emitted, truth, _ = offline()
    sent = positions(emitted)
    windows = [
        e for e in truth.entries if e.kind in (FaultKind.DROPOUT, FaultKind.STORE_AND_FORWARD)
    ]
    assert windows
    for entry in windows:
        assert entry.end_s is not None
        inside = [
            (e, fix)
            for e in sent[entry.device]
            for fix in fix_documents(e.payload)
            if entry.start_s <= e.at_s < entry.end_s
        ]
        assert inside == [], "a device out of coverage published"
        if entry.kind is FaultKind.STORE_AND_FORWARD and entry.end_s < 3 * 3600:
            late = [
                fix
                for e in sent[entry.device]
                if e.at_s == entry.end_s
                for fix in fix_documents(e.payload)
            ]
            assert len(late) == entry.details["fixes"]
            skews = [
                abs(k.details["skew_s"])
                for k in truth.entries
                if k.kind is FaultKind.CLOCK_SKEW and k.device == entry.device
            ]
            slack = 1 + max(skews, default=0)
            for fix in late:
                assert entry.start_s - slack <= fix_time_s(fix) < entry.end_s + slack


def test_clock_skew_shifts_the_timestamps_by_its_amount() -> None:
    played = scenario()
    emitted, truth, _ = offline()
    skews = {e.device: e for e in truth.entries if e.kind is FaultKind.CLOCK_SKEW}
    assert skews
    scripts = {s.slug: s for s in played.scripts}
    shifted = 0
    for slug, messages in positions(emitted).items():
        script = scripts[slug]
        for e in messages:
            for fix in fix_documents(e.payload):
                if "seq" not in fix:
                    continue  # OwnTracks: whole seconds, no sequence number
                taken_s = script.phase_s + fix["seq"] * script.interval_s
                skew = skews.get(slug)
                expected = 0.0
                if skew is not None and skew.start_s <= taken_s < (skew.end_s or math.inf):
                    expected = skew.details["skew_s"]
                    shifted += 1
                assert fix_time_s(fix) - taken_s == pytest.approx(expected, abs=0.002)
    assert shifted > 10


def test_truck_fixes_stay_on_the_streets_except_jumps() -> None:
    played = scenario()
    emitted, truth, _ = offline()
    jumps = {(e.device, e.details["seq"]) for e in truth.entries if e.kind is FaultKind.GPS_JUMP}
    projection = played.city.projection
    checked = jumped = 0
    for slug, messages in positions(emitted).items():
        if not slug.startswith("truck"):
            continue
        for e in messages[::7]:
            for fix in fix_documents(e.payload):
                x, y = projection.to_xy(fix["lat"], fix["lon"])
                _, distance = played.city.nearest_street(x, y)
                if (slug, fix["seq"]) in jumps:
                    jumped += 1
                    continue
                # the noise is clipped at twice the street's accuracy; accuracy_m is reported
                # within 0.8-1.2 of it
                assert distance <= 2 * fix["accuracy_m"] / 0.8 + 0.5, (slug, fix)
                checked += 1
    assert checked > 500


def test_jumps_are_hundreds_of_metres_off_the_true_position() -> None:
    played = scenario()
    emitted, truth, _ = offline()
    scripts = {s.slug: s for s in played.scripts}
    by_seq: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
    for slug, messages in positions(emitted).items():
        for e in messages:
            for fix in fix_documents(e.payload):
                if "seq" in fix:
                    by_seq[(slug, fix["seq"])] = (e.at_s, fix)
    jumps = [e for e in truth.entries if e.kind is FaultKind.GPS_JUMP]
    assert jumps
    for entry in jumps:
        found = by_seq.get((entry.device, entry.details["seq"]))
        if found is None:
            continue  # sent as OwnTracks, which has no seq, or lost in a dropout
        _, fix = found
        true = scripts[entry.device].track.at(entry.start_s)
        x, y = played.city.projection.to_xy(fix["lat"], fix["lon"])
        assert math.hypot(x - true.x_m, y - true.y_m) >= 290


def test_skipped_stops_have_no_dwell_inside_their_radius() -> None:
    played = scenario()
    skipped = [e for v in played.vehicles for e in v.day.truth if e.kind is FaultKind.SKIPPED_STOP]
    assert skipped
    for vehicle in played.vehicles:
        stands = vehicle.day.track.stationary_intervals()
        for entry in vehicle.day.truth:
            if entry.kind is not FaultKind.SKIPPED_STOP:
                continue
            assert entry.stop is not None
            stop = vehicle.plan.stops[entry.stop - 1]
            assert stop.point is not None
            assert stop.point.code == entry.service_point
            for start, end, x, y in stands:
                assert math.hypot(x - stop.x_m, y - stop.y_m) > stop.dwell_radius_m or end == start


def test_served_stops_have_a_dwell_inside_their_radius() -> None:
    played = scenario()
    for vehicle in played.vehicles:
        for outcome in vehicle.day.outcomes:
            if not outcome.served or outcome.arrival_s is None:
                continue
            stop = vehicle.plan.stops[outcome.seq - 1]
            assert outcome.departure_s is not None
            here = vehicle.day.track.at((outcome.arrival_s + outcome.departure_s) / 2)
            assert math.hypot(here.x_m - stop.x_m, here.y_m - stop.y_m) < 1.0
            assert not here.moving


def test_wrong_route_truth_is_beyond_the_corridor_for_its_whole_span() -> None:
    played = scenario()
    found = 0
    for vehicle in played.vehicles:
        expected = shapely.LineString(vehicle.plan.path_xy)
        for entry in vehicle.day.truth:
            if entry.kind is not FaultKind.WRONG_ROUTE:
                continue
            found += 1
            end = entry.end_s if entry.end_s is not None else entry.start_s + 60
            t = entry.start_s
            while t <= end:
                here = vehicle.day.track.at(t)
                assert (
                    expected.distance(shapely.Point(here.x_m, here.y_m)) > vehicle.plan.corridor_m
                )
                t += 5.0
            if entry.end_s is not None:
                after = vehicle.day.track.at(entry.end_s + 2)
                assert expected.distance(shapely.Point(after.x_m, after.y_m)) <= (
                    vehicle.plan.corridor_m + 1
                )
    assert found


def test_late_stops_were_served_after_their_window() -> None:
    played = scenario()
    late = 0
    for vehicle in played.vehicles:
        arrivals = {o.seq: o.arrival_s for o in vehicle.day.outcomes if o.served}
        for entry in vehicle.day.truth:
            if entry.kind is FaultKind.LATE_STOP:
                late += 1
                assert entry.stop is not None
                stop = vehicle.plan.stops[entry.stop - 1]
                assert stop.window_s is not None
                arrival = arrivals[stop.seq]
                assert arrival is not None
                assert arrival > stop.window_s[1]
    assert late


def test_route_runs_follow_the_streets_and_stops_lie_on_the_path() -> None:
    played = scenario()
    for plan in played.plans:
        path = shapely.LineString(plan.path_xy)
        assert path.length == pytest.approx(plan.path_length_m, rel=1e-6)
        for stop in plan.stops:
            point = path.interpolate(stop.path_offset_m)
            assert math.hypot(point.x - stop.x_m, point.y - stop.y_m) < 1.0
        arrivals = [s.planned_arrival_s for s in plan.stops]
        assert arrivals == sorted(arrivals)
        assert plan.stops[-1].site is not None  # ends at the landfill


def test_skippedstretches_of_land_near_their_share() -> None:
    played = scenario()
    started = total = 0
    for vehicle in played.vehicles:
        reached = {o.seq for o in vehicle.day.outcomes if o.arrival_s is not None}
        stretches = stretches_of(vehicle.plan)
        total += sum(1 for first in stretches if first in reached)
        skipped = {
            e.stop
            for e in vehicle.day.truth
            if e.kind is FaultKind.SKIPPED_STOP and e.details["cause"] == "driven_past"
        }
        started += sum(1 for first in stretches if first in skipped)
    expected = HEAVY.skipped_stop_share * total
    assert total > 50
    assert abs(started - expected) <= 4 * math.sqrt(expected) + 2


def test_the_map_draws_every_street_site_and_route() -> None:
    played = scenario()
    svg = city_svg(played.city, played.plans, "Hà Đông <test>")
    root = ElementTree.fromstring(svg)  # well-formed, the title escaped
    namespace = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{namespace}polyline")
    assert len(lines) == len(played.city.streets) + len(played.plans)
    assert len(root.findall(f"{namespace}polygon")) == len(played.city.sites)
    stops = sum(1 for plan in played.plans for stop in plan.stops if stop.point is not None)
    assert len(root.findall(f"{namespace}circle")) == stops
    assert "Hà Đông &lt;test&gt;" in svg
