"""A run's model replies as a replay trajectory, so a recorded run can be played offline."""

from __future__ import annotations

import json
from pathlib import Path

from ..records import RunRecord


def trajectory_from_run(run_dir: Path) -> dict:
    """`responses` (patch mode) or `attempts` (tools mode) exactly as the model answered."""
    run_dir = Path(run_dir)
    events = RunRecord.load_events(run_dir / "events.jsonl")
    started = next((e for e in events if e["kind"] == "run_started"), {})
    replies = [e for e in events if e["kind"] == "llm_response"]
    numbers = sorted({e["attempt"] for e in replies})
    data: dict = {
        "provenance": f"recorded: run {run_dir.name}, model "
        f"{started.get('provider', '?')}:{started.get('model', '?')}",
        "goal": started.get("goal"),
    }
    attempt_dir = run_dir / "attempts"
    if started.get("mode", "patch") == "patch":
        data["responses"] = [
            {"text": (attempt_dir / f"{n:03d}" / "response.txt").read_text()} for n in numbers
        ]
        return data
    attempts = []
    for n in numbers:
        turns = []
        for e in sorted((e for e in replies if e["attempt"] == n), key=lambda e: e["step"]):
            turn = json.loads(
                (attempt_dir / f"{n:03d}/steps/{e['step']:03d}.turn.json").read_text()
            )
            calls = [
                {"id": c["id"], "name": c["name"], "arguments": c["arguments"]}
                for c in turn["tool_calls"]
            ]
            turns.append({"text": turn["text"], "tool_calls": calls})
        attempts.append(turns)
    data["attempts"] = attempts
    return data
