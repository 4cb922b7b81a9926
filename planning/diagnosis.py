"""Jobs no vehicle can serve, found before solving and reported stop by stop.

A job is hopeless for a vehicle when its demand exceeds the capacity, when even leaving at
the shift's start the truck reaches it after its window closes, or when serving it alone
(out and back, through a dump when the truck must return empty) does not fit the shift or
the longest route allowed. A job hopeless for every vehicle is reported with the reason
that held for most of them; the engines never see it.
"""

from __future__ import annotations

from collections import Counter

from planning.problem import Job, Problem, Unserved, UnservedReason, Vehicle


def hopeless_jobs(problem: Problem) -> list[Unserved]:
    found: list[Unserved] = []
    for index, job in enumerate(problem.jobs):
        reasons = [_why_not(problem, vehicle, job) for vehicle in problem.vehicles]
        if all(reason is not None for reason in reasons):
            counted = Counter(reason for reason in reasons if reason is not None)
            (reason, detail), _ = counted.most_common(1)[0]
            found.append(Unserved(index, reason, detail))
    return found


def _why_not(problem: Problem, vehicle: Vehicle, job: Job) -> tuple[UnservedReason, str] | None:
    over = [
        f"{amount} {unit} > {capacity}"
        for amount, capacity, unit in zip(
            job.demand, vehicle.capacity, problem.dimensions, strict=True
        )
        if amount > capacity
    ]
    if over:
        return UnservedReason.DEMAND_ABOVE_CAPACITY, "demand " + ", ".join(over)
    durations = problem.matrix.durations_s
    start = problem.sites[vehicle.start_site]
    leave = max(vehicle.shift.start_s, start.window.start_s if start.window else 0)
    arrival = leave + int(durations[start.location, job.location])
    begin = max(arrival, job.release_s)
    if job.window is not None:
        if begin > job.window.end_s:
            return (
                UnservedReason.WINDOW_UNREACHABLE,
                f"earliest arrival {_clock(begin)}, the window closes {_clock(job.window.end_s)}",
            )
        begin = max(begin, job.window.start_s)
    back = _return_s(problem, vehicle, job)
    end = begin + job.service_s + back
    if end > vehicle.shift.end_s:
        return (
            UnservedReason.SHIFT_TOO_SHORT,
            f"alone it ends at {_clock(end)}, the shift ends {_clock(vehicle.shift.end_s)}",
        )
    alone_s = int(durations[start.location, job.location]) + job.service_s + back
    if vehicle.max_duration_s is not None and alone_s > vehicle.max_duration_s:
        return (
            UnservedReason.SHIFT_TOO_SHORT,
            f"alone it takes {alone_s} s, a route may take {vehicle.max_duration_s} s",
        )
    return None


def _return_s(problem: Problem, vehicle: Vehicle, job: Job) -> int:
    """From the job to the end site, through the best dump when the truck must come back empty."""
    durations = problem.matrix.durations_s
    end = problem.sites[vehicle.end_site]
    if end.unloads or not vehicle.dumps or not any(job.demand):
        return int(durations[job.location, end.location])
    return min(
        int(durations[job.location, problem.sites[d].location])
        + problem.sites[d].service_s
        + int(durations[problem.sites[d].location, end.location])
        for d in vehicle.dumps
    )


def _clock(t_s: int) -> str:
    """Seconds from the plan's midnight as HH:MM (past midnight: +1 day)."""
    days, rest = divmod(t_s, 86_400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}"
    return text if days == 0 else f"{text} (+{days} d)"
