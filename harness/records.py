"""Run records under runs/<run-id>/: append-only events.jsonl plus per-attempt artifacts.

Everything written here passes through `redact`, so secrets from the environment never land
on disk. The event log is the source of truth for --resume.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .sandbox import redact


def new_run_id(goal_id: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{goal_id}-{pysecrets.token_hex(2)}"


@dataclass
class ResumeState:
    """What the event log says has happened so far in a run."""

    started: dict | None = None
    finished: dict | None = None
    attempts: dict = field(default_factory=dict)  # attempt -> attempt_finished event
    responses: dict = field(default_factory=dict)  # attempt -> llm_response event
    accepted: dict | None = None
    tokens: int = 0
    dollars: float = 0.0
    wall_seconds: float = 0.0

    @property
    def next_attempt(self) -> int:
        done = [n for n, ev in self.attempts.items() if not ev["ok"]]
        return max(done, default=0) + 1

    def feedback_history(self) -> list[str]:
        return [
            self.attempts[n]["feedback"]
            for n in sorted(self.attempts)
            if not self.attempts[n]["ok"]
        ]


class RunRecord:
    def __init__(self, runs_dir: Path, run_id: str, secret_values: list[str]):
        self.run_id = run_id
        self.dir = Path(runs_dir) / run_id
        self.events_path = self.dir / "events.jsonl"
        self.secrets = secret_values
        self.dir.mkdir(parents=True, exist_ok=True)
        self._seq = sum(1 for _ in self.load_events(self.events_path))

    @classmethod
    def open_existing(cls, runs_dir: Path, run_id: str, secret_values: list[str]) -> RunRecord:
        if not (Path(runs_dir) / run_id / "events.jsonl").exists():
            raise ConfigError(f"no run {run_id!r} under {runs_dir}")
        return cls(runs_dir, run_id, secret_values)

    # -- writing
    def event(self, kind: str, **data) -> dict:
        self._seq += 1
        entry = {"seq": self._seq, "t": round(time.time(), 3), "kind": kind, **data}
        line = redact(json.dumps(entry, default=str), self.secrets)
        with open(self.events_path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry

    def write(self, rel: str, content) -> Path:
        """Atomic write of text or JSON (dict/list) under the run dir, redacted."""
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, indent=1, default=str)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(redact(text, self.secrets))
        os.replace(tmp, path)
        return path

    def attempt_path(self, attempt: int, rel: str = "") -> Path:
        return self.dir / "attempts" / f"{attempt:03d}" / rel

    def redact_tree(self, root: Path):
        """Redact files written by child processes (stage logs) in place."""
        for path in Path(root).rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                try:
                    text = path.read_text()
                except (UnicodeDecodeError, OSError):
                    continue
                clean = redact(text, self.secrets)
                if clean != text:
                    path.write_text(clean)

    # -- reading
    @staticmethod
    def load_events(path: Path) -> list[dict]:
        events: list[dict] = []
        if not Path(path).exists():
            return events
        for line in Path(path).read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                break  # a line cut short by a kill; everything after it is untrusted
        return events

    def state(self) -> ResumeState:
        state = ResumeState()
        for ev in self.load_events(self.events_path):
            kind = ev["kind"]
            if kind == "run_started":
                state.started = ev
            elif kind == "llm_response":
                state.responses[ev["attempt"]] = ev
                state.tokens += ev.get("input_tokens", 0) + ev.get("output_tokens", 0)
                state.dollars += ev.get("cost_usd", 0.0)
            elif kind == "attempt_finished":
                state.attempts[ev["attempt"]] = ev
                state.wall_seconds += ev.get("seconds", 0.0)
            elif kind == "accepted":
                state.accepted = ev
            elif kind == "run_finished":
                state.finished = ev
        return state
