"""The rules engine scored against the simulator's ground truth, and its throughput.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.rules [--vehicles 60] [--faults default] [--quick]

Quality: for each (fix interval, GPS noise) of the issue (5 s with 10 m, 30 s with 30 m) a
simulated day is built with route faults, and every message the devices would publish goes
through what the ingest does to it (decode, duplicate and jump filters, per-device
ordering) into the engine, with the clock sweep every second of scenario time. The alerts
are matched to the truth entries of the same device:

* wrong_route: an alert matches an excursion it overlaps (opened within ``MATCH_S`` of the
  excursion's span). Delay: from the excursion's start to the fix that confirmed it.
  Excursions shorter than ``min_off_route_s`` are below what the rule is specified to
  see; they are counted apart and left out of recall.
* missed_stop: an alert matches a stop the truck drove past (skipped) or served after its
  window closed (late), by route run and stop. Delay: from the truth's start (the pass, or
  the window's end) to the alert.
* offline: an alert matches a dropout it falls in; dropouts shorter than
  ``offline_after_s`` are left out of recall.  gps_jump: within a second of the jump.

Throughput: 5,000 route runs of 300 stops are loaded; fixes sampled from the trucks' real
tracks are fed to one engine on one core, and fix checks per second are timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import psutil

import fleet
import planning
import simulator
from alerts import AlertKind, AlertSignal, Change, Resolution
from geo import LocalProjection
from ingest.decode import Limits, decode
from ingest.filters import FixFilter, JumpRules, Verdict
from ingest.topics import TopicKind, route
from rules import BinLift, FixInput, RulesEngine, stored_keys
from sanitrack.settings import RulesSettings
from simulator.actors import fix_noise
from simulator.faults import FaultKind, TruthEntry
from simulator.register import GEOFENCE_KIND
from simulator.stream import Action
from tracker import GeofenceIndex, TrackedRun, track_run

MATCH_S = 60.0
START = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)  # 06:00 in Hà Nội


@dataclass
class Scored:
    kind: str
    alerts: int = 0
    true_alerts: int = 0
    truths: int = 0
    found: int = 0
    excluded: int = 0  # truths below what the rule is specified to see
    delays_s: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.truths if self.truths else 1.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build(config: simulator.ScenarioConfig, hours: float) -> simulator.Scenario:
    return simulator.build_scenario(config, START, hours * 3600.0, progress=say)


def engine_for(
    scenario: simulator.Scenario, settings: RulesSettings
) -> tuple[RulesEngine, dict[str, int], dict[int, TrackedRun]]:
    """An engine loaded as the service would load it: runs, geofences, devices."""
    engine = RulesEngine(settings)
    projection = scenario.city.projection
    geofences = [
        fleet.Geofence(n, 1, site.name, GEOFENCE_KIND[kind], site.polygon)
        for n, (kind, site) in enumerate(scenario.city.sites.items(), start=1)
    ]
    engine.set_tenant(1, projection, GeofenceIndex(geofences, projection))
    device_ids: dict[str, int] = {}
    runs: dict[int, TrackedRun] = {}
    point_ids = {p.code: n for n, p in enumerate(scenario.points, start=1)}
    fence_ids = {kind: n for n, kind in enumerate(scenario.city.sites, start=1)}
    for vehicle in scenario.vehicles:
        device_id = vehicle.index + 1
        new = simulator.route_run_of(
            scenario, vehicle.plan, device_id, vehicle.run_name, point_ids, fence_ids, []
        )
        stored = planning.RouteRun(
            **new.model_dump(exclude={"crew"}),
            id=device_id,
            tenant_id=1,
            status=planning.RunStatus.ACTIVE,
            crew=(),
        )
        runs[device_id] = track_run(stored, projection)
        engine.set_device(device_id, 1, device_id, vehicle.code, (runs[device_id],))
        device_ids[vehicle.device] = device_id
        if device_id % 1000 == 0:
            say(f"  engine loaded {device_id}/{len(scenario.vehicles)} runs")
    for phone in scenario.phones:
        device_id = len(device_ids) + 1
        engine.set_device(device_id, 1, None, phone.staff_name)
        device_ids[phone.device] = device_id
    return engine, device_ids, runs


def play(
    scenario: simulator.Scenario, engine: RulesEngine, device_ids: dict[str, int]
) -> tuple[list[AlertSignal], simulator.TruthLog]:
    """Every emission through ingest's decode and filters into the engine, in arrival order."""
    truth = simulator.TruthLog(scenario.start)
    limits = Limits(256 * 1024, 1000, 300, 90 * 86_400, 300.0)
    filters = FixFilter(JumpRules())
    start_s = scenario.start.timestamp()
    signals: list[AlertSignal] = []
    next_sweep = 0.0
    emitted = 0
    last_report = time.monotonic()
    for _index, emission in simulator.merged_emissions(scenario, truth):
        while next_sweep <= emission.at_s:
            signals.extend(engine.sweep(start_s + next_sweep).signals)
            next_sweep += 1.0
        if emission.action is not Action.PUBLISH or emission.retain:
            continue
        target = route(emission.topic)
        if target is None or target.device not in device_ids:
            continue
        device_id = device_ids[target.device]
        received = scenario.start + dt.timedelta(seconds=emission.at_s)
        if target.kind is TopicKind.EVENT:
            signals.extend(_event(engine, device_id, emission.payload))
            continue
        if target.kind not in (TopicKind.POSITIONS, TopicKind.OWNTRACKS):
            continue
        for fix in decode(emission.payload, target.kind, limits, received).fixes:
            verdict = filters.check(device_id, fix)
            item = FixInput(
                fix.time.timestamp(), fix.lat, fix.lon, fix.speed_kmh, fix.accuracy_m, fix.ignition
            )
            if verdict is Verdict.ACCEPT:
                signals.extend(engine.on_fix(device_id, item).signals)
            elif verdict is Verdict.JUMP:
                signals.extend(engine.on_jump(device_id, item).signals)
        emitted += 1
        if time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            say(f"  played {emission.at_s / 3600:.1f} h of {scenario.until_s / 3600:.1f} h")
    end_s = scenario.until_s + engine.settings.run_overrun_s + 120
    while next_sweep <= end_s:
        signals.extend(engine.sweep(start_s + next_sweep).signals)
        next_sweep += 5.0
    return signals, truth


def _event(engine: RulesEngine, device_id: int, payload: bytes) -> list[AlertSignal]:
    document = orjson.loads(payload)
    if document.get("type") != "bin_lift":
        return []
    t = dt.datetime.fromisoformat(document["ts"]).timestamp()
    lift = BinLift(t, document.get("lat"), document.get("lon"))
    return engine.on_bin_lift(device_id, lift).signals


def score(
    scenario: simulator.Scenario,
    signals: list[AlertSignal],
    truth: simulator.TruthLog,
    device_ids: dict[str, int],
    settings: RulesSettings,
) -> list[Scored]:
    start_s = scenario.start.timestamp()
    interval_s = scenario.config.interval_s
    slug_of = {device_id: slug for slug, device_id in device_ids.items()}
    # A renamed alert (late data moved its start) is one alert, as the store keeps it.
    stored_key = stored_keys(signals)
    opened = [s for s in signals if s.change is Change.OPENED and stored_key(s.key) == s.key]
    by_kind: dict[AlertKind, list[AlertSignal]] = defaultdict(list)
    for signal in opened:
        by_kind[signal.kind].append(signal)
    entries: dict[FaultKind, list[TruthEntry]] = defaultdict(list)
    for entry in truth.entries:
        entries[entry.kind].append(entry)
    results = []

    # wrong_route: excursions back inside the corridor for less than resolve_s between them
    # are one excursion (the rule's hysteresis, as specified, and what a dispatcher wants)
    wrong = Scored("wrong_route")
    excursions = merged(entries[FaultKind.WRONG_ROUTE], settings.resolve_s + interval_s)
    long_enough = [
        e for e in excursions if e.end_s is None or e.end_s - e.start_s >= settings.min_off_route_s
    ]
    wrong.excluded = len(excursions) - len(long_enough)
    wrong.truths = len(long_enough)
    matched: set[int] = set()
    for signal in by_kind[AlertKind.WRONG_ROUTE]:
        wrong.alerts += 1
        slug = slug_of[signal.device_id]
        at = signal.at.timestamp() - start_s
        confirmed = _seconds(signal.evidence["confirmed_at"]) - start_s
        # The excursion it belongs to: of those it falls in, the one that began nearest.
        candidates = [
            (abs(at - entry.start_s), n)
            for n, entry in enumerate(excursions)
            if entry.device == slug
            and entry.start_s - MATCH_S
            <= at
            <= (entry.end_s if entry.end_s is not None else math.inf) + MATCH_S
        ]
        hit = min(candidates)[1] if candidates else None
        if hit is None:
            continue
        wrong.true_alerts += 1
        if hit not in matched:
            matched.add(hit)
            wrong.delays_s.append(confirmed - excursions[hit].start_s)
    wrong.found = sum(1 for n, e in enumerate(excursions) if n in matched and e in long_enough)
    results.append(wrong)

    # missed_stop, as billing sees it at the end of the day: the stops still missed (an
    # alert a later visit resolved is not a missed stop) against the stops the trucks drove
    # past; and the stops served after their window closed against the alerts opened when
    # it closed. Then the "you passed stop X" notices told at once, which later evidence
    # may take back, scored on their own.
    # (withdrawn: late data showed the stop was not missed, or a dropout left no evidence)
    resolved_by_visit = {
        stored_key(s.key)
        for s in signals
        if s.kind is AlertKind.MISSED_STOP
        and s.resolution in (Resolution.VISITED_LATE, Resolution.WITHDRAWN)
    }
    # A stop driven past while the device was offline left no data: excluded, and counted.
    gaps: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for dropout in entries[FaultKind.DROPOUT]:
        gaps[dropout.device].append((dropout.start_s, (dropout.end_s or math.inf) + interval_s))
    unseen = {
        (e.device, e.stop)
        for e in entries[FaultKind.SKIPPED_STOP]
        if any(a <= e.start_s <= b for a, b in gaps[e.device])
    }
    skipped = {
        (e.device, e.stop): e
        for e in entries[FaultKind.SKIPPED_STOP]
        if (e.device, e.stop) not in unseen
    }
    late = {(e.device, e.stop): e for e in entries[FaultKind.LATE_STOP]}
    missed = Scored("missed_stop")
    missed.truths = len(skipped) + len(late)
    missed.excluded = len(unseen)
    found = set()
    for signal in by_kind[AlertKind.MISSED_STOP]:
        key = (slug_of[signal.device_id], signal.stop_seq)
        reason = signal.evidence.get("reason")
        if key in late and reason == "window_closed":
            truth_entry: TruthEntry | None = late[key]
        elif signal.key in resolved_by_visit:
            continue  # served after all: not a missed stop (scored with the notices below)
        elif key in unseen:
            continue  # no data: neither right nor wrong
        else:
            truth_entry = skipped.get(key)
        missed.alerts += 1
        if truth_entry is None:
            continue
        missed.true_alerts += 1
        if key not in found:
            found.add(key)
            missed.delays_s.append(signal.at.timestamp() - start_s - truth_entry.start_s)
    missed.found = len(found)
    results.append(missed)
    notices = Scored("  passed notice")
    notices.truths = len(skipped)
    heard = set()
    for signal in by_kind[AlertKind.MISSED_STOP]:
        if signal.evidence.get("reason") != "passed":
            continue
        notices.alerts += 1
        key = (slug_of[signal.device_id], signal.stop_seq)
        if key in skipped:
            notices.true_alerts += 1
            if key not in heard:
                heard.add(key)
                notices.delays_s.append(signal.at.timestamp() - start_s - skipped[key].start_s)
    notices.found = len(heard)
    results.append(notices)

    # offline: dropouts long enough, while the truck is on shift (ignition on, out of the
    # depot); a dropout before the shift or after it is no alert by the rule's definition.
    offline = Scored("offline")
    shifts = {
        v.device: (v.day.ignition_on_s, v.day.ignition_off_s or math.inf) for v in scenario.vehicles
    }
    dropouts = [e for e in entries[FaultKind.DROPOUT] if e.device in device_ids]
    visible = [
        e
        for e in dropouts
        if (e.end_s or math.inf) - e.start_s >= settings.offline_after_s + 10
        and e.device in shifts
        and shifts[e.device][0] <= e.start_s
        and e.start_s + settings.offline_after_s <= shifts[e.device][1]
    ]
    offline.truths, offline.excluded = len(visible), len(dropouts) - len(visible)
    seen = set()
    for signal in by_kind[AlertKind.OFFLINE]:
        offline.alerts += 1
        at = signal.at.timestamp() - start_s
        slug = slug_of[signal.device_id]
        hit = next(
            (
                n
                for n, e in enumerate(dropouts)
                if e.device == slug and e.start_s - MATCH_S <= at <= (e.end_s or math.inf) + MATCH_S
            ),
            None,
        )
        if hit is not None:
            offline.true_alerts += 1
            if dropouts[hit] in visible and hit not in seen:
                seen.add(hit)
                offline.delays_s.append(at - dropouts[hit].start_s)
    offline.found = len(seen)
    results.append(offline)

    # gps_jump
    jumps = Scored("gps_jump")
    jump_truth = {(e.device, round(e.start_s)) for e in entries[FaultKind.GPS_JUMP]}
    jumps.truths = len(jump_truth)
    hits = set()
    for signal in by_kind[AlertKind.GPS_JUMP]:
        jumps.alerts += 1
        key = (slug_of[signal.device_id], round(signal.at.timestamp() - start_s))
        near = [k for k in ((key[0], key[1] + d) for d in (-1, 0, 1)) if k in jump_truth]
        if near:
            jumps.true_alerts += 1
            hits.add(near[0])
    jumps.found = len(hits)
    results.append(jumps)

    for kind in (AlertKind.SPEEDING, AlertKind.IDLE, AlertKind.GEOFENCE_ENTER):
        other = Scored(str(kind), alerts=len(by_kind[kind]))
        other.true_alerts = other.alerts  # no truth kept for these: counted, not scored
        results.append(other)
    return results


def merged(excursions: list[TruthEntry], gap_s: float) -> list[TruthEntry]:
    """Excursions of one device less than ``gap_s`` apart, joined."""
    out: list[TruthEntry] = []
    for entry in sorted(excursions, key=lambda e: (e.device, e.start_s)):
        last = out[-1] if out else None
        if (
            last is not None
            and last.device == entry.device
            and last.end_s is not None
            and entry.start_s - last.end_s < gap_s
        ):
            out[-1] = dataclasses.replace(last, end_s=entry.end_s)
        else:
            out.append(entry)
    return out


def _seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def quality(args: argparse.Namespace, interval_s: float, noise_m: float) -> list[Scored]:
    settings = RulesSettings()
    config = simulator.ScenarioConfig(
        seed=args.seed,
        vehicles=args.vehicles,
        phones=0,
        interval_s=interval_s,
        gps_noise_m=noise_m,
        stops_per_run=args.stops,
        faults=simulator.fault_rates(args.faults),
    )
    say(f"scenario: {args.vehicles} trucks, fixes every {interval_s:.0f} s, noise {noise_m:.0f} m")
    scenario = build(config, args.hours)
    engine, device_ids, _runs = engine_for(scenario, settings)
    began = time.process_time()
    signals, truth = play(scenario, engine, device_ids)
    cpu_s = time.process_time() - began
    say(
        f"  {engine.stats.fixes} fixes, {len(signals)} signals, {cpu_s:.1f} s CPU (with the stream)"
    )
    vehicle_hours = sum(
        (v.day.track.end_s - v.plan.planned_start_s) / 3600 for v in scenario.vehicles
    )
    results = score(scenario, signals, truth, device_ids, settings)
    print(
        f"\n## {interval_s:.0f} s interval, {noise_m:.0f} m noise: {args.vehicles} trucks,"
        f" {vehicle_hours:.0f} vehicle-hours, faults {args.faults}, seed {args.seed}"
    )
    print(
        f"{'kind':<16}{'alerts':>8}{'truths':>8}{'precision':>11}{'recall':>8}"
        f"{'delay p50':>11}{'p95':>8}{'false/veh-h':>13}{'excluded':>10}"
    )
    for r in results:
        p50 = f"{_percentile(r.delays_s, 50):.0f} s" if r.delays_s else "-"
        p95 = f"{_percentile(r.delays_s, 95):.0f} s" if r.delays_s else "-"
        false_rate = (r.alerts - r.true_alerts) / vehicle_hours if vehicle_hours else 0.0
        scored = r.truths or r.kind in (
            "wrong_route",
            "missed_stop",
            "  passed notice",
            "offline",
            "gps_jump",
        )
        print(
            f"{r.kind:<16}{r.alerts:>8}{r.truths if scored else '-':>8}"
            f"{r.precision if scored else math.nan:>11.3f}"
            f"{r.recall if scored else math.nan:>8.3f}"
            f"{p50:>11}{p95:>8}{false_rate:>13.3f}{r.excluded:>10}"
        )
    print(
        f"engine: late fixes re-evaluated {engine.stats.late_fixes},"
        f" too late {engine.stats.too_late_fixes}, jumps {engine.stats.jumps}"
    )
    return results


def _percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def throughput(args: argparse.Namespace) -> None:
    """One engine, 5,000 runs of 300 stops, fixes from the trucks' tracks, one core."""
    settings = RulesSettings()
    config = simulator.ScenarioConfig(
        seed=args.seed,
        vehicles=args.runs,
        phones=0,
        stops_per_run=args.stops_throughput,
        distinct_routes=args.distinct,
        faults=simulator.fault_rates("none"),
    )
    say(f"throughput: {args.runs} runs of {args.stops_throughput} stops")
    scenario = build(config, 10.0)
    gc.collect()
    before = psutil.Process().memory_info().rss
    engine, device_ids, runs = engine_for(scenario, settings)
    gc.collect()
    rss_mib = (psutil.Process().memory_info().rss - before) / 2**20  # runs, state, indexes
    stops = sum(len(r.stops) for r in runs.values())
    projection: LocalProjection = scenario.city.projection
    start_s = scenario.start.timestamp()
    rng = random.Random(7)
    fixes: list[tuple[int, FixInput]] = []
    warm: list[tuple[int, FixInput]] = []
    window_s, interval_s = args.window_s, 5.0
    # Every truck in the same stretch of the morning, all runs active at once.
    begin = max(v.plan.planned_start_s for v in scenario.vehicles) + 1800.0
    for vehicle in scenario.vehicles:
        device_id = device_ids[vehicle.device]
        track = vehicle.day.track
        # The engine follows each truck from its depot, as it would live: its progress up
        # to the window is replayed first (not timed).
        warm_t = vehicle.plan.planned_start_s
        while warm_t < begin:
            sample = track.at(warm_t)
            lat, lon = projection.to_latlon(sample.x_m, sample.y_m)
            warm.append(
                (device_id, FixInput(start_s + warm_t, lat, lon, sample.speed_kmh, 10.0, True))
            )
            warm_t += 30.0
        t = begin
        while t < begin + window_s:
            sample = track.at(t)
            dx, dy = fix_noise(rng, 10.0)
            lat, lon = projection.to_latlon(sample.x_m + dx, sample.y_m + dy)
            fixes.append((device_id, FixInput(start_s + t, lat, lon, sample.speed_kmh, 10.0, True)))
            t += interval_s
    fixes.sort(key=lambda item: item[1].t)
    warm.sort(key=lambda item: item[1].t)
    say(f"  {len(fixes)} fixes prepared for {len(runs)} runs ({stops} stops); warming up")
    for device_id, fix in warm:
        engine.on_fix(device_id, fix)
    engine.sweep(warm[-1][1].t if warm else 0.0)
    gc.collect()
    gc.freeze()
    began = time.perf_counter()
    cpu = time.process_time()
    last_sweep = fixes[0][1].t
    for device_id, fix in fixes:
        engine.on_fix(device_id, fix)
        if fix.t - last_sweep >= 1.0:
            engine.sweep(fix.t)
            last_sweep = fix.t
    wall = time.perf_counter() - began
    cpu_s = time.process_time() - cpu
    print(f"\n## throughput: {len(runs)} active runs x {args.stops_throughput} stops, one core")
    print(
        f"{len(fixes)} fix checks in {wall:.2f} s ({cpu_s:.2f} s CPU):"
        f" {len(fixes) / cpu_s:,.0f} fix checks/s, {cpu_s / len(fixes) * 1e6:.1f} us per fix"
        f" (sweeps every second of fix time included)"
    )
    print(
        f"memory: the process grew {rss_mib:.0f} MiB loading {len(runs)} runs of"
        f" {args.stops_throughput} stops into the engine"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=60)
    parser.add_argument("--stops", type=int, default=80)
    parser.add_argument("--hours", type=float, default=9.0)
    parser.add_argument("--faults", default="default")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--stops-throughput", type=int, default=300)
    parser.add_argument("--distinct", type=int, default=100)
    parser.add_argument("--window-s", type=float, default=600.0)
    parser.add_argument("--only", choices=("quality", "throughput"), default=None)
    parser.add_argument("--quick", action="store_true", help="a small day and 500 runs")
    args = parser.parse_args()
    if args.quick:
        args.vehicles, args.hours, args.runs, args.distinct = 15, 6.0, 500, 20
    if args.only in (None, "quality"):
        quality(args, 5.0, 10.0)
        quality(args, 30.0, 30.0)
    if args.only in (None, "throughput"):
        throughput(args)


if __name__ == "__main__":
    main()
