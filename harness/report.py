"""`harness report RUN...`: what a researcher reads after a night of bench runs.

Reads `results.jsonl` of one or more benches and writes `report.md` with PNG plots: pass@1
and pass@k per agent and per goal category (the unbiased estimator of Chen et al. 2021),
attempts and steps to acceptance, tokens and dollars per accepted goal, the wall-time split,
failing stages, edit-apply failures, and the goals no agent solved.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from .bench import RESULTS, load_results
from .errors import ConfigError

STAGE_ORDER = [
    "apply",
    "limit",
    "budget",
    "protected",
    "build",
    "cpp_tests",
    "pytest",
    "numerics",
    "regression",
    "protected_after",
]
SPLIT = ["model", "build", "tests", "numerics", "other"]
COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass
class AgentStats:
    agent: str
    runs: int
    goals: int
    k: int  # the largest k every goal has samples for
    pass1: float
    passk: float
    accepted: int
    attempts_to_accept: float | None
    steps_to_accept: float | None
    tokens_per_accept: float | None
    dollars_per_accept: float | None
    edit_failure_rate: float | None
    estimated_usage: bool


def pass_rates(rows: list[dict], k: int | None = None) -> tuple[float, float, int]:
    """(pass@1, pass@k, k) averaged over the goals in rows."""
    per_goal: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per_goal[r["goal"]].append(bool(r["accepted"]))
    if not per_goal:
        return 0.0, 0.0, 0
    k = k or min(len(v) for v in per_goal.values())
    one = sum(pass_at_k(len(v), sum(v), 1) for v in per_goal.values()) / len(per_goal)
    many = sum(pass_at_k(len(v), sum(v), min(k, len(v))) for v in per_goal.values()) / len(per_goal)
    return one, many, k


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def agent_stats(rows: list[dict]) -> list[AgentStats]:
    out = []
    for agent in sorted({r["agent"] for r in rows}):
        mine = [r for r in rows if r["agent"] == agent]
        won = [r for r in mine if r["accepted"]]
        one, many, k = pass_rates(mine)
        blocks = sum(r.get("edit_blocks", 0) for r in mine)
        out.append(
            AgentStats(
                agent=agent,
                runs=len(mine),
                goals=len({r["goal"] for r in mine}),
                k=k,
                pass1=one,
                passk=many,
                accepted=len(won),
                attempts_to_accept=mean([r["accepted_attempt"] for r in won]),
                steps_to_accept=mean([r["steps"] for r in won]),
                tokens_per_accept=sum(r["tokens"] for r in mine) / len(won) if won else None,
                dollars_per_accept=sum(r["dollars"] for r in mine) / len(won) if won else None,
                edit_failure_rate=sum(r.get("edit_failures", 0) for r in mine) / blocks
                if blocks
                else None,
                estimated_usage=any(r.get("usage_estimated") for r in mine),
            )
        )
    return out


def fmt(value, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


# ---------------------------------------------------------------- plots


def grouped_bars(axis, groups: list[str], series: dict[str, list[float]], colors: dict, label):
    """Bars per group, one per series, each with its value written on top (zeros show too)."""
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(groups))]
        bars = axis.bar(xs, values, width, label=name, color=colors.get(name))
        for bar, value in zip(bars, values, strict=True):
            x = bar.get_x() + bar.get_width() / 2
            axis.annotate(label(value), (x, bar.get_height()), ha="center", va="bottom", fontsize=8)
    long = any(len(g) > 8 for g in groups)
    axis.set_xticks(
        list(range(len(groups))),
        groups,
        rotation=15 if long else 0,
        ha="right" if long else "center",
    )
    axis.set_xlim(-0.6, len(groups) - 0.4)


def legend_on_top(axis, entries: int):
    """The legend in a band above the tallest bar, so it never hides one."""
    top = max((p.get_height() for p in axis.patches), default=1.0) or 1.0
    axis.set_ylim(0, top * 1.3)
    axis.legend(fontsize=8, frameon=False, loc="upper center", ncol=max(1, entries))


def _plots(rows: list[dict], stats: list[AgentStats], out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})
    agents = [s.agent for s in stats]
    color = {a: COLORS[i % len(COLORS)] for i, a in enumerate(agents)}
    made: list[tuple[str, str]] = []
    share = lambda v: f"{v:.2f}"  # noqa: E731
    count = lambda v: f"{v:g}" if v else ""  # noqa: E731

    def save(fig, name: str, caption: str):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append((name, caption))

    # pass@1 / pass@k per agent, and pass@1 per category
    k = max((s.k for s in stats), default=1)
    categories = sorted({r["category"] for r in rows})
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, max(1.2, len(categories) / 2)]}
    )
    grouped_bars(
        left,
        agents,
        {"pass@1": [s.pass1 for s in stats], f"pass@{k}": [s.passk for s in stats]},
        {"pass@1": "#4C72B0", f"pass@{k}": "#A1C4E8"},
        share,
    )
    left.set_ylabel("share of goals solved")
    left.set_title("per agent")
    legend_on_top(left, 2)
    per_category = {
        a: [
            pass_rates([r for r in rows if r["agent"] == a and r["category"] == c])[0]
            for c in categories
        ]
        for a in agents
    }
    grouped_bars(right, categories, per_category, color, share)
    right.set_title("pass@1 per goal category")
    legend_on_top(right, len(agents))
    for axis in (left, right):
        axis.set_ylim(0, 1.3)
        axis.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    save(fig, "pass_rates.png", f"pass@1 and pass@{k} per agent; pass@1 per goal category")

    # attempts and model turns of the accepted runs: how many runs needed how many
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, key, title in (
        (left, "accepted_attempt", "attempts to acceptance"),
        (right, "steps", "model turns to acceptance"),
    ):
        values = sorted({r[key] for r in rows if r["accepted"]})
        if len(values) > 12:  # many distinct turn counts: bin them
            edges = [round(min(values) + i * (max(values) - min(values) + 1) / 8) for i in range(9)]
            bins = [(lo, hi - 1) for lo, hi in itertools.pairwise(edges) if hi > lo]
        else:
            bins = [(v, v) for v in values]
        names = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in bins]
        series = {
            a: [
                float(
                    sum(1 for r in rows if r["agent"] == a and r["accepted"] and lo <= r[key] <= hi)
                )
                for lo, hi in bins
            ]
            for a in agents
        }
        grouped_bars(axis, names or ["(none accepted)"], series if names else {}, color, count)
        axis.set_title(title)
        axis.set_ylabel("accepted runs")
        axis.yaxis.get_major_locator().set_params(integer=True)
        if names:
            legend_on_top(axis, len(agents))
    save(fig, "to_acceptance.png", "how many accepted runs needed how many attempts / model turns")

    # tokens and dollars per accepted goal
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, key, title, label in (
        (left, "tokens_per_accept", "tokens per accepted goal", lambda v: f"{v:,.0f}"),
        (right, "dollars_per_accept", "dollars per accepted goal", lambda v: f"${v:.3g}"),
    ):
        values = [getattr(s, key) for s in stats]
        bars = axis.bar(agents, [v or 0.0 for v in values], color=[color[a] for a in agents])
        for bar, value in zip(bars, values, strict=True):
            x = bar.get_x() + bar.get_width() / 2
            text = "none accepted" if value is None else label(value)
            axis.annotate(text, (x, bar.get_height()), ha="center", va="bottom", fontsize=8)
        axis.set_title(title)
        axis.tick_params(axis="x", rotation=15)
        axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    save(fig, "cost.png", "spend per accepted goal: every run's spend / accepted runs")

    # wall-time split
    fig, axis = plt.subplots(figsize=(10, 0.55 * len(agents) + 1.5))
    lefts = [0.0] * len(agents)
    for i, part in enumerate(SPLIT):
        values = [
            mean([r.get(f"{part}_s", 0.0) for r in rows if r["agent"] == a]) or 0.0 for a in agents
        ]
        axis.barh(agents, values, left=lefts, label=part, color=COLORS[i], height=0.6)
        lefts = [x + v for x, v in zip(lefts, values, strict=True)]
    for y, total in enumerate(lefts):
        axis.annotate(f" {total:.1f}s", (total, y), va="center", fontsize=8)
    axis.set_xlabel("seconds per run (mean)")
    axis.set_title("where the wall time goes")
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axis.invert_yaxis()
    save(fig, "wall_time.png", "wall time per run: model / build / tests / numerics / other")

    # failing stages and edit-apply failures
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    counts = {
        a: Counter(s for r in rows if r["agent"] == a for s in r["failing_stages"]) for a in agents
    }
    stages = [s for s in STAGE_ORDER if any(c[s] for c in counts.values())]
    stages += sorted({s for c in counts.values() for s in c} - set(stages))
    series = {a: [float(counts[a][s]) for s in stages] for a in agents}
    grouped_bars(left, stages or ["(none)"], series if stages else {}, color, count)
    left.set_ylabel("rejected attempts")
    left.set_title("stage that rejected an attempt")
    left.yaxis.get_major_locator().set_params(integer=True)
    if stages:
        legend_on_top(left, len(agents))
    rates = [s.edit_failure_rate or 0.0 for s in stats]
    grouped_bars(right, agents, {"edit-apply failures": rates}, {}, lambda v: f"{v:.0%}")
    for bar, agent in zip(right.patches, agents, strict=True):
        bar.set_color(color[agent])
    right.set_ylim(0, max(0.1, max(rates, default=0.0) * 1.25))
    right.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    right.set_title("edit-apply failure rate")
    save(fig, "failures.png", "stages that rejected attempts; share of edits that failed to apply")
    return made


# ---------------------------------------------------------------- the report


def find_results(repo: Path, names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        for candidate in (Path(name), repo / "runs" / name, repo / "runs" / f"bench-{name}"):
            path = candidate / RESULTS if candidate.is_dir() else candidate
            if path.is_file():
                paths.append(path)
                break
        else:
            raise ConfigError(
                f"no bench results for {name!r} (a bench dir, its id, or a results.jsonl)"
            )
    return paths


def write_report(sources: list[Path], out: Path) -> Path:
    rows = [r for path in sources for r in load_results(path)]
    if not rows:
        raise ConfigError("no results to report: " + ", ".join(map(str, sources)))
    out.mkdir(parents=True, exist_ok=True)
    stats = agent_stats(rows)
    plots = _plots(rows, stats, out)
    lines = [
        "# Harness bench report",
        "",
        f"{len(rows)} run(s) of {len({r['goal'] for r in rows})} goal(s) by {len(stats)} agent(s); "
        f"from {', '.join(str(s) for s in sources)}; written {time.strftime('%Y-%m-%d %H:%M')}.",
        "pass@k is the unbiased estimator over each goal's samples, averaged over goals.",
        "",
        "## Agents",
        "",
        "| agent | mode | runs | goals | pass@1 | pass@k (k) | accepted | attempts to accept "
        "| turns to accept | tokens / accepted | $ / accepted | edit-apply failures |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in stats:
        mode = ", ".join(sorted({r.get("mode", "patch") for r in rows if r["agent"] == s.agent}))
        lines.append(
            f"| {s.agent} | {mode} | {s.runs} | {s.goals} | {s.pass1:.2f} | {s.passk:.2f} ({s.k}) "
            f"| {s.accepted} | {fmt(s.attempts_to_accept)} | {fmt(s.steps_to_accept)} "
            f"| {fmt(s.tokens_per_accept, ',.0f')}{' (est.)' if s.estimated_usage else ''} "
            f"| {fmt(s.dollars_per_accept, '.4f')} | {fmt(s.edit_failure_rate, '.1%')} |"
        )
    categories = sorted({r["category"] for r in rows})
    lines += ["", "## Goal categories (pass@1 / pass@k)", ""]
    lines.append("| category | goals | " + " | ".join(s.agent for s in stats) + " |")
    lines.append("|---|---|" + "---|" * len(stats))
    for category in categories:
        cells = []
        for s in stats:
            mine = [r for r in rows if r["agent"] == s.agent and r["category"] == category]
            one, many, k = pass_rates(mine)
            cells.append(f"{one:.2f} / {many:.2f} (k={k})" if mine else "-")
        goals = len({r["goal"] for r in rows if r["category"] == category})
        lines.append(f"| {category} | {goals} | " + " | ".join(cells) + " |")
    lines += ["", "## Wall time per run (mean seconds)", ""]
    lines.append("| agent | " + " | ".join(SPLIT) + " | total |")
    lines.append("|---|" + "---|" * (len(SPLIT) + 1))
    for s in stats:
        mine = [r for r in rows if r["agent"] == s.agent]
        parts = [mean([r.get(f"{p}_s", 0.0) for r in mine]) or 0.0 for p in SPLIT]
        lines.append(
            f"| {s.agent} | " + " | ".join(f"{v:.1f}" for v in parts) + f" | {sum(parts):.1f} |"
        )
    failing = Counter(stage for r in rows for stage in r["failing_stages"])
    lines += ["", "## Failing stages (rejected attempts)", ""]
    if failing:
        lines += ["| stage | attempts |", "|---|---|"]
        lines += [f"| {stage} | {n} |" for stage, n in failing.most_common()]
    else:
        lines.append("No attempt was rejected.")
    unsolved = sorted({r["goal"] for r in rows} - {r["goal"] for r in rows if r["accepted"]})
    lines += ["", "## Goals no agent solved", ""]
    if unsolved:
        lines += [
            "| goal | category | runs | most common failing stage | last reason |",
            "|---|---|---|---|---|",
        ]
        for goal in unsolved:
            mine = [r for r in rows if r["goal"] == goal]
            stages = Counter(s for r in mine for s in r["failing_stages"])
            top = stages.most_common(1)[0][0] if stages else "-"
            reason = mine[-1].get("reason", "").replace("|", "/")[:80]
            lines.append(f"| {goal} | {mine[0]['category']} | {len(mine)} | {top} | {reason} |")
    else:
        lines.append("Every goal was solved by at least one agent.")
    errors = [r for r in rows if r["outcome"] == "error"]
    if errors:
        lines += [
            "",
            f"**{len(errors)} run(s) crashed** (outcome `error`; see the bench logs):",
            "",
        ]
        lines += [f"- {r['run_id']}: {r.get('reason', '')[:200]}" for r in errors]
    lines += ["", "## Plots", ""]
    for name, caption in plots:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
