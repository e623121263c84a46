"""The night's report: what ran, what was integrated and why not, and the trend over nights.

`runs/nightly-<date>/report.md` with PNGs: the night (outcomes from planned runs to integrated
changes; the budget used), the trend across every night up to this one (accept rate, cost per
accepted change, wall time, regression tests grown, goals still open), and the research view
of the night's runs from `harness report` (pass rates, attempts, cost, time split, failures).
Every number comes from the nights' records: their plans, results, journals and states.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bench import RESULTS, load_results
from .errors import ConfigError
from .integrate import JOURNAL, Journal
from .nightly import PLAN, STATE, SUMMARY, NightPlan, write_json
from .report import COLORS, fmt, write_report

RESEARCH = "bench"  # subdirectory with the `harness report` view of the night's runs


@dataclass
class NightStats:
    night_id: str
    date: str
    planned: int
    finished: int
    accepted: int
    integrated: int
    rejected: int
    not_started: int
    dollars: float
    tokens: int
    wall_s: float
    regressions: int  # regression tests that landed with integrated changes
    goals: list[str]
    integrated_goals: list[str]
    goals_open: int = 0  # planned goals not integrated on this night or any before (trend)
    done: bool = False

    @property
    def accept_rate(self) -> float | None:
        return self.accepted / self.finished if self.finished else None

    @property
    def dollars_per_accept(self) -> float | None:
        return self.dollars / self.accepted if self.accepted else None


def final_entries(night_dir: Path) -> dict[str, dict]:
    """The journal's last word on each run."""
    out: dict[str, dict] = {}
    for entry in Journal(night_dir / JOURNAL).entries():
        out[entry["run_id"]] = entry
    return out


def night_stats(night_dir: Path) -> NightStats:
    plan = NightPlan.load(night_dir)
    results = load_results(night_dir / RESULTS)
    finals = final_entries(night_dir)
    state_path = night_dir / STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    integrated = [e for e in finals.values() if e["kind"] == "integrated"]
    goal_of = {r["run_id"]: r["goal"] for r in results}
    return NightStats(
        night_id=plan.night_id,
        date=plan.date,
        planned=len(plan.goals) * len(plan.agents) * plan.samples,
        finished=len(results),
        accepted=sum(1 for r in results if r["accepted"]),
        integrated=len(integrated),
        rejected=sum(1 for e in finals.values() if e["kind"] == "rejected"),
        not_started=len(state.get("not_started", {})),
        dollars=round(sum(r.get("dollars", 0.0) for r in results), 6),
        tokens=sum(r.get("tokens", 0) for r in results),
        wall_s=float(state.get("wall_s", 0.0)),
        regressions=sum(len(e.get("regressions", [])) for e in integrated),
        goals=[g["id"] for g in plan.goals],
        integrated_goals=sorted(
            {goal_of[e["run_id"]] for e in integrated if e["run_id"] in goal_of}
        ),
        done=state.get("phase") == "done",
    )


def trend(reports_dir: Path, upto: str) -> list[NightStats]:
    """Every night in `reports_dir` up to `upto`, oldest first, with goals still open."""
    nights = sorted(p.parent for p in reports_dir.glob(f"nightly-*/{PLAN}"))
    out: list[NightStats] = []
    closed: set[str] = set()
    for night in nights:
        if night.name > upto:
            continue
        stats = night_stats(night)
        closed |= set(stats.integrated_goals)
        stats.goals_open = len(set(stats.goals) - closed)
        out.append(stats)
    return out


# ---------------------------------------------------------------- plots


def _plot_night(stats: NightStats, plan: NightPlan, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    stages = ["planned", "finished", "accepted", "integrated"]
    values = [stats.planned, stats.finished, stats.accepted, stats.integrated]
    bars = left.bar(stages, values, color=COLORS[:4])
    for bar, value in zip(bars, values, strict=True):
        x = bar.get_x() + bar.get_width() / 2
        left.annotate(str(value), (x, bar.get_height()), ha="center", va="bottom", fontsize=9)
    left.set_ylim(0, max([*values, 1]) * 1.25)
    left.yaxis.get_major_locator().set_params(integer=True)
    left.set_title("runs: planned → integrated")
    budget = plan.budget
    used = [
        ("dollars", stats.dollars / budget["dollars"] if budget["dollars"] else 0.0,
         f"\\${stats.dollars:.2f} of \\${budget['dollars']:.2f}"),  # \$: not mathtext
        ("tokens", stats.tokens / budget["tokens"] if budget["tokens"] else 0.0,
         f"{stats.tokens:,} of {budget['tokens']:,}"),
        ("wall time", stats.wall_s / budget["wall_seconds"] if budget["wall_seconds"] else 0.0,
         f"{stats.wall_s / 60:.1f} of {budget['wall_seconds'] / 60:.0f} min"),
    ]  # fmt: skip
    names = [u[0] for u in used]
    shares = [min(u[1], 1.5) for u in used]
    right.barh(names, shares, color=[COLORS[4], COLORS[5], COLORS[6]], height=0.55)
    for y, (_, share, label) in enumerate(used):
        right.annotate(f" {share:.0%}  ({label})", (min(share, 1.5), y), va="center", fontsize=8)
    right.axvline(1.0, color="#999", lw=1, ls="--")
    right.set_xlim(0, 1.6)
    right.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    right.set_title("night budget used")
    right.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "night.png", dpi=110)
    plt.close(fig)
    return "night.png"


def _plot_trend(nights: list[NightStats], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    panels: list[tuple[str, list[float | None], Callable[[float], str]]] = [
        ("accept rate", [n.accept_rate for n in nights], lambda v: f"{v:.0%}"),
        (
            "\\$ per accepted change",
            [n.dollars_per_accept for n in nights],
            lambda v: f"\\${v:.3g}",
        ),
        ("wall time (min)", [n.wall_s / 60 for n in nights], lambda v: f"{v:.1f}"),
        ("regression tests grown", [float(n.regressions) for n in nights], lambda v: f"{v:g}"),
        ("goals still open", [float(n.goals_open) for n in nights], lambda v: f"{v:g}"),
    ]
    labels = [n.date for n in nights]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.2))
    for i, (axis, (title, values, label)) in enumerate(zip(axes, panels, strict=True)):
        xs = [x for x, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        axis.plot(xs, ys, marker="o", color=COLORS[i % len(COLORS)])
        for x, y in zip(xs, ys, strict=True):
            axis.annotate(label(y), (x, y), textcoords="offset points", xytext=(0, 6),
                          ha="center", fontsize=8)  # fmt: skip
        for x, v in enumerate(values):
            if v is None:
                axis.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=8, color="#999")
        axis.set_title(title)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axis.set_xlim(-0.5, len(labels) - 0.5)
        top = max(ys, default=1.0) or 1.0
        axis.set_ylim(0, top * 1.3)
    fig.suptitle(f"trend over {len(nights)} night(s)")
    fig.tight_layout()
    fig.savefig(out / "trend.png", dpi=110)
    plt.close(fig)
    return "trend.png"


# ---------------------------------------------------------------- the report


@dataclass
class Row:
    run_id: str
    goal: str
    agent: str
    outcome: str
    integration: str
    details: list[str] = field(default_factory=list)


def write_night_report(night_dir: Path) -> Path:
    plan = NightPlan.load(night_dir)
    nights = trend(night_dir.parent, plan.night_id)
    # this night, with its goals still open counted over the nights before it too
    stats = next(n for n in nights if n.night_id == plan.night_id)
    results = load_results(night_dir / RESULTS)
    finals = final_entries(night_dir)
    state = json.loads((night_dir / STATE).read_text()) if (night_dir / STATE).exists() else {}
    lines = [
        f"# Nightly {plan.date}",
        "",
        f"Night `{plan.night_id}` on {plan.host}, started {plan.created}; base "
        f"`{plan.upstream}` at `{plan.base[:12]}`; changes integrated into `{plan.target}` "
        + ("(a review branch)" if plan.mode == "review" else "(merge mode)")
        + f"; executor {plan.executor['kind']}. Written {time.strftime('%Y-%m-%d %H:%M')}"
        + ("" if stats.done else " — **the night has not finished** (`harness nightly --resume`)")
        + ".",
        "",
        f"- runs: {stats.planned} planned, {stats.finished} finished, {stats.accepted} accepted, "
        f"{stats.integrated} integrated, {stats.rejected} rejected at integration, "
        f"{stats.not_started} not started",
        f"- spend: ${stats.dollars:.4f} of ${plan.budget['dollars']:.2f}, {stats.tokens:,} of "
        f"{plan.budget['tokens']:,} tokens, {stats.wall_s / 60:.1f} of "
        f"{plan.budget['wall_seconds'] / 60:.0f} min",
        f"- regression tests landed with integrated changes: {stats.regressions}",
        "",
        "## Changes",
        "",
        "| run | goal | agent | run outcome | integration |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        final = finals.get(r["run_id"])
        if not r["accepted"]:
            integration = "-"
        elif final is None:
            integration = "not integrated yet"
        elif final["kind"] == "integrated":
            how = "already on the target" if final.get("found_on_target") else final.get("how", "")
            landed = final.get("regressions") or []
            integration = f"**integrated** `{final['merge_commit'][:12]}` ({how})" + (
                f"; {len(landed)} regression test(s)" if landed else ""
            )
        elif final["kind"] == "rejected":
            integration = f"**rejected** ({final['stage']}): {final['reason']}"
        else:
            integration = f"interrupted while {final['kind'].replace('_', ' ')}"
        outcome = r["outcome"] + (f" (attempt {r['accepted_attempt']})" if r["accepted"] else "")
        lines.append(
            f"| {r['run_id']} | {r['goal']} | {r['agent']} | {outcome} | "
            + integration.replace("|", "/").replace("\n", " ")
            + " |"
        )
    rejected = [e for e in finals.values() if e["kind"] == "rejected" and e.get("feedback")]
    if rejected:
        lines += ["", "### Why changes were rejected", ""]
        for e in rejected:
            lines += [f"**{e['run_id']}** — {e['reason']}", "", "```", e["feedback"], "```", ""]
    not_started = state.get("not_started", {})
    if not_started:
        lines += ["", "## Not started", ""]
        lines += [f"- {run_id}: {why}" for run_id, why in sorted(not_started.items())]
    lines += [
        "",
        "## Trend across nights",
        "",
        "| night | runs | accept rate | $ / accepted change | wall (min) | regressions grown "
        "| integrated | goals still open |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in nights:
        lines.append(
            f"| {n.date} | {n.finished} | {fmt(n.accept_rate, '.0%')} | "
            f"{fmt(n.dollars_per_accept, '.4f')} | {n.wall_s / 60:.1f} | {n.regressions} | "
            f"{n.integrated} | {n.goals_open} |"
        )
    out = night_dir
    plots = [(_plot_night(stats, plan, out), "the night: runs from planned to integrated; budget")]
    plots.append((_plot_trend(nights, out), "trend: every night up to this one"))
    lines += ["", "## Plots", ""]
    for name, caption in plots:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    if results:
        research = write_report([night_dir / RESULTS], night_dir / RESEARCH)
        lines += [
            "## The night's runs (research view)",
            "",
            f"From `harness report`: [{RESEARCH}/report.md]({RESEARCH}/report.md).",
            "",
        ]
        for png in sorted(p.name for p in research.parent.glob("*.png")):
            lines += [f"![{png}]({RESEARCH}/{png})", ""]
    path = night_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    integrated = [
        {"run_id": e["run_id"], "merge_commit": e["merge_commit"]}
        for e in finals.values()
        if e["kind"] == "integrated"
    ]
    write_json(
        night_dir / SUMMARY,
        {
            "night_id": plan.night_id,
            "target": plan.target,
            "mode": plan.mode,
            "integrated": integrated,
            "push": [plan.target] if integrated else [],
            "report": str(path),
            "stats": asdict(stats),
        },
    )
    return path


def find_night(reports: Path, name: str) -> Path:
    for candidate in (Path(name), reports / name, reports / f"nightly-{name}"):
        if (candidate / PLAN).exists():
            return candidate
    raise ConfigError(f"no night {name!r} under {reports}")
