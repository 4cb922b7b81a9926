"""The route planner against the literature: our engines, PyVRP and VROOM on VRPLIB instances
(CVRP X, Gehring-Homberger 1,000-customer VRPTW, multi-trip VRPTW with release dates) with
the gap to each instance's best-known cost.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.planning [DIRS ...] [--limits 10,60] [--long-limit 120]
        [--engines sanitrack-pyvrp,sanitrack-ortools,pyvrp,vroom] [--only NAME_SUBSTRING]
        [--jobs 1] [--markdown FILE]
    .venv/bin/python -m bench.planning --limits 2 --long-limit 0 --only X-n101   # a smoke run

It reads every .vrp under ../shared/bench/vrp (and under each DIRS given) with
``planning.vrplib`` and runs each engine within each time limit; instances of 1,000
customers or more also get ``--long-limit`` seconds (0: not). Every run is one process with
one solver thread; ``--jobs`` runs that many at once. Each run's plan is judged by
``planning.feasibility`` and costed from our matrix (see bench/planning_engines.py).

The targets, per sanitrack engine: mean gap to the best known <= 3 % on CVRP at 60 s,
<= 5 % on the 1,000-customer VRPTW at 120 s, <= 2 % on multi-trip at 60 s (each over
feasible runs, and every run must be feasible); never worse than VROOM (every instance and
limit VROOM solved feasibly); within 2 % of PyVRP (the mean of cost / PyVRP's cost - 1 in
every variant and limit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from bench.planning_engines import ENGINES, Outcome, Run, execute
from planning.vrplib import BenchInstance, read_instance

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "../shared/bench/vrp"
LONG_FROM_CUSTOMERS = 1_000
SANITRACK = ("sanitrack-pyvrp", "sanitrack-ortools")

Table = tuple[list[str], list[list[str]]]  # header, rows


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")  # one write per line: worker processes print too
    sys.stdout.flush()


def _limits(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _engines(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown engines {unknown}; known: {', '.join(ENGINES)}")
    return names


def find_instances(directories: Iterable[Path], only: str | None) -> list[BenchInstance]:
    paths = sorted({path.resolve() for d in directories for path in Path(d).rglob("*.vrp")})
    found = [read_instance(path) for path in paths if only is None or only in path.stem]
    return sorted(found, key=lambda instance: (instance.variant, instance.customers, instance.name))


def plan_runs(
    instances: Sequence[BenchInstance],
    limits: Sequence[float],
    long_limit: float,
    engines: Sequence[str],
) -> list[Run]:
    planned: list[tuple[BenchInstance, float, str]] = []
    for instance in instances:
        these = list(limits)
        if long_limit > 0 and instance.customers >= LONG_FROM_CUSTOMERS and long_limit not in these:
            these.append(long_limit)
        planned += [(instance, limit, engine) for limit in these for engine in engines]
    return [
        Run(number, len(planned), i.path, i.name, i.variant, i.customers, limit, engine)
        for number, (i, limit, engine) in enumerate(planned, start=1)
    ]


def run_all(runs: Sequence[Run], jobs: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    # A fresh process per run: no solver keeps memory or threads from the one before.
    with ProcessPoolExecutor(max_workers=jobs, max_tasks_per_child=1) as pool:
        futures = [pool.submit(execute, run) for run in runs]
        for future in as_completed(futures):
            outcome = future.result()
            run = outcome.run
            _say(
                f"{run.label} end   {run.instance} {run.limit_s:g} s {run.engine}:"
                f" cost {outcome.cost_text}, gap {outcome.gap_text} %,"
                f" vehicles {outcome.vehicles if outcome.vehicles is not None else '-'},"
                f" feasible {outcome.verdict}, {outcome.wall_s:.1f} s"
            )
            outcomes.append(outcome)
    return sorted(outcomes, key=lambda outcome: outcome.run.number)


def results_table(outcomes: Sequence[Outcome]) -> Table:
    header = [
        "instance",
        "variant",
        "customers",
        "limit s",
        "engine",
        "cost",
        "gap %",
        "vehicles",
        "feasible",
        "wall s",
    ]
    rows = [
        [
            o.run.instance,
            o.run.variant,
            str(o.run.customers),
            f"{o.run.limit_s:g}",
            o.run.engine,
            o.cost_text,
            o.gap_text,
            "-" if o.vehicles is None else str(o.vehicles),
            o.verdict,
            f"{o.wall_s:.1f}",
        ]
        for o in outcomes
    ]
    return header, rows


def _ran(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.verdict.startswith("n/a")]


def summary_table(outcomes: Sequence[Outcome]) -> Table:
    header = ["variant", "limit s", "engine", "runs", "feasible", "mean gap %", "mean wall s"]
    rows: list[list[str]] = []
    groups = sorted({(o.run.variant, o.run.limit_s) for o in outcomes})
    for variant, limit in groups:
        for engine in dict.fromkeys(o.run.engine for o in outcomes):
            these = [
                o
                for o in outcomes
                if (o.run.variant, o.run.limit_s, o.run.engine) == (variant, limit, engine)
            ]
            ran = _ran(these)
            if not ran:
                rows.append([variant, f"{limit:g}", engine, "0", "-", "n/a", "-"])
                continue
            feasible = [o for o in ran if o.feasible and o.gap_pct is not None]
            gap = f"{statistics.mean(o.gap_pct or 0.0 for o in feasible):.2f}" if feasible else "-"
            wall = statistics.mean(o.wall_s for o in ran)
            rows.append(
                [
                    variant,
                    f"{limit:g}",
                    engine,
                    str(len(ran)),
                    f"{sum(o.feasible for o in ran)}/{len(ran)}",
                    gap,
                    f"{wall:.1f}",
                ]
            )
    return header, rows


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    judge: Callable[[Sequence[Outcome], str], tuple[str, str]]  # (outcomes, engine) -> verdict


def _gap_target(variant: str, limit_s: float, most_pct: float, min_customers: int = 0) -> Target:
    def judge(outcomes: Sequence[Outcome], engine: str) -> tuple[str, str]:
        these = _ran(
            o
            for o in outcomes
            if o.run.engine == engine
            and o.run.variant == variant
            and o.run.limit_s == limit_s
            and o.run.customers >= min_customers
        )
        if not these:
            return "not measured", f"no {variant} runs at {limit_s:g} s"
        if not all(o.feasible for o in these):
            return "FAIL", f"{sum(o.feasible for o in these)} of {len(these)} runs feasible"
        gap = statistics.mean(o.gap_pct or 0.0 for o in these)
        return ("PASS" if gap <= most_pct else "FAIL"), f"mean gap {gap:.2f} % over {len(these)}"

    size = f" {min_customers:,}-customer" if min_customers else ""
    return Target(f"{variant}{size} at {limit_s:g} s: mean gap <= {most_pct:g} %", judge)


def _pairs(outcomes: Sequence[Outcome], engine: str, other: str) -> list[tuple[Outcome, Outcome]]:
    """(ours, theirs) for every instance and limit where ``other`` found a feasible plan."""
    theirs = {
        (o.run.path, o.run.limit_s): o for o in outcomes if o.run.engine == other and o.feasible
    }
    return [
        (o, theirs[o.run.path, o.run.limit_s])
        for o in _ran(outcomes)
        if o.run.engine == engine and (o.run.path, o.run.limit_s) in theirs
    ]


def _not_worse_than_vroom(outcomes: Sequence[Outcome], engine: str) -> tuple[str, str]:
    pairs = _pairs(outcomes, engine, "vroom")
    if not pairs:
        return "not measured", "no run where both ran and VROOM was feasible"
    worse = [
        f"{ours.run.instance} {ours.run.limit_s:g} s"
        for ours, vroom in pairs
        if not ours.feasible or (ours.cost or 0) > (vroom.cost or 0)
    ]
    if worse:
        return "FAIL", f"worse on {len(worse)} of {len(pairs)}: {', '.join(worse[:3])}"
    return "PASS", f"at most VROOM's cost on all {len(pairs)}"


def _near_pyvrp(outcomes: Sequence[Outcome], engine: str) -> tuple[str, str]:
    pairs = _pairs(outcomes, engine, "pyvrp")
    if not pairs:
        return "not measured", "no run where both ran and PyVRP was feasible"
    if not all(ours.feasible for ours, _ in pairs):
        return "FAIL", f"{sum(not ours.feasible for ours, _ in pairs)} runs infeasible"
    by_group: dict[tuple[str, float], list[float]] = {}
    for ours, pyvrp in pairs:
        ratio = 100 * ((ours.cost or 0) / max(pyvrp.cost or 1, 1) - 1)
        by_group.setdefault((ours.run.variant, ours.run.limit_s), []).append(ratio)
    (variant, limit), excess = max(by_group.items(), key=lambda item: statistics.mean(item[1]))
    worst = statistics.mean(excess)
    verdict = "PASS" if worst <= 2.0 else "FAIL"
    return verdict, f"worst {variant} at {limit:g} s: {worst:+.2f} % over {len(excess)}"


TARGETS = (
    _gap_target("cvrp", 60, 3.0),
    _gap_target("vrptw", 120, 5.0, min_customers=LONG_FROM_CUSTOMERS),
    _gap_target("mtvrptwr", 60, 2.0),
    Target("never worse than VROOM", _not_worse_than_vroom),
    Target("within 2 % of PyVRP", _near_pyvrp),
)


def targets_table(outcomes: Sequence[Outcome]) -> Table:
    rows: list[list[str]] = []
    for engine in SANITRACK:
        if any(o.run.engine == engine for o in outcomes):
            for target in TARGETS:
                verdict, detail = target.judge(outcomes, engine)
                rows.append([engine, target.label, verdict, detail])
    return ["engine", "target", "verdict", "figures"], rows


def as_text(table: Table, cell_chars: int = 64) -> str:
    """Aligned columns; a longer cell (a violation's text) is cut: the progress line has it."""
    header, rows = table
    rows = [[_cut(cell, cell_chars) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _cut(cell: str, chars: int) -> str:
    return cell if len(cell) <= chars else cell[: chars - 1] + "…"


def as_markdown(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.planning", description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="*", type=Path, help="more directories of .vrp files")
    parser.add_argument("--limits", type=_limits, default=[10.0, 60.0], help="seconds, e.g. 10,60")
    parser.add_argument(
        "--long-limit",
        type=float,
        default=120.0,
        help=f"extra limit (s) for {LONG_FROM_CUSTOMERS:,}+ customers; 0: none",
    )
    parser.add_argument("--engines", type=_engines, default=list(ENGINES))
    parser.add_argument("--only", help="only instances whose name contains this")
    parser.add_argument("--jobs", type=int, default=1, help="solver runs at once")
    parser.add_argument("--markdown", type=Path, help="also write the tables here as Markdown")
    args = parser.parse_args(argv)
    directories = [DEFAULT_DIR, *args.dirs]
    instances = find_instances([d for d in directories if d.is_dir()], args.only)
    if not instances:
        raise SystemExit(f"no .vrp instances under {', '.join(map(str, directories))}")
    runs = plan_runs(instances, args.limits, args.long_limit, args.engines)
    _say(f"{len(instances)} instances, {len(runs)} runs, {args.jobs} at a time")
    outcomes = run_all(runs, max(args.jobs, 1))
    sections = [
        ("Results", results_table(outcomes)),
        ("Summary", summary_table(outcomes)),
        ("Targets", targets_table(outcomes)),
    ]
    for title, table in sections:
        _say(f"\n{title}\n{as_text(table)}")
    if args.markdown:
        text = "\n\n".join(f"## {title}\n\n{as_markdown(table)}" for title, table in sections)
        args.markdown.write_text(text + "\n")
        _say(f"\nwritten {args.markdown}")


if __name__ == "__main__":
    main()
