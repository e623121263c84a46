"""Run records under runs/<run-id>/: an authenticated, append-only events.jsonl plus artifacts.

Note [trusted records]: the run directory is never mounted in a sandbox, so model-written code
cannot reach it. On top of that, every event carries an HMAC chained over the previous one,
keyed by a per-run secret kept outside the run directory (`.harness/keys/`). `state()` trusts
only the verified prefix of the log; `--resume` moves a tampered log aside, keeps the verified
events and redoes (re-grades) everything after them. Everything written here is scrubbed of
secret values (any known encoding); a hit is replaced by a marker and flagged with a
`secret_redacted` event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as pysecrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .secrets import SecretSet

MAC_TAIL = re.compile(r', "mac": "([0-9a-f]{64})"\}$')


def new_run_id(goal_id: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{goal_id}-{pysecrets.token_hex(2)}"


@dataclass
class ResumeState:
    """What the verified event log says has happened so far in a run."""

    started: dict | None = None
    finished: dict | None = None
    attempts: dict = field(default_factory=dict)  # attempt -> attempt_finished event
    responses: dict = field(default_factory=dict)  # attempt -> llm_response event
    starts: dict = field(default_factory=dict)  # attempt -> how many times it was started
    accepted: dict | None = None
    tokens: int = 0
    dollars: float = 0.0
    wall_seconds: float = 0.0
    tampered: str | None = None  # why the log stopped verifying, if it did

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
    def __init__(
        self,
        runs_dir: Path,
        run_id: str,
        secrets: SecretSet | list[str],
        key_dir: Path | None = None,
        create_key: bool = True,
    ):
        self.run_id = run_id
        self.dir = Path(runs_dir) / run_id
        self.events_path = self.dir / "events.jsonl"
        self.secrets = secrets if isinstance(secrets, SecretSet) else SecretSet(list(secrets))
        self.key = self._key(key_dir, create_key) if key_dir else None
        self.dir.mkdir(parents=True, exist_ok=True)
        events, self._mac, self.tamper_reason = self.verified_events()
        self._seq = events[-1]["seq"] if events else 0

    @classmethod
    def open_existing(
        cls, runs_dir: Path, run_id: str, secrets: SecretSet | list[str], key_dir=None
    ) -> RunRecord:
        """A record for reading: a missing key is not created (nothing then verifies)."""
        if not (Path(runs_dir) / run_id / "events.jsonl").exists():
            raise ConfigError(f"no run {run_id!r} under {runs_dir}")
        return cls(runs_dir, run_id, secrets, key_dir, create_key=False)

    def _key(self, key_dir: Path, create: bool) -> bytes:
        path = Path(key_dir) / f"{self.run_id}.key"
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        if not create:
            return b""  # no MAC can match: everything reads as unverified
        path.parent.mkdir(parents=True, exist_ok=True)
        key = pysecrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key

    def _sign(self, prev: str, body: str) -> str:
        assert self.key is not None
        return hmac.new(self.key, (prev + body).encode(), hashlib.sha256).hexdigest()

    # -- writing
    def event(self, kind: str, **data) -> dict:
        """Append one event (redacted, chained) and return it as written."""
        entry, hits = self.secrets.redact_value(
            {"seq": self._seq + 1, "t": round(time.time(), 3), "kind": kind, **data}
        )
        body = json.dumps(json.loads(json.dumps(entry, default=str)))
        line = body
        if self.key is not None:
            self._mac = self._sign(self._mac, body)
            line = body[:-1] + f', "mac": "{self._mac}"}}'
        with open(self.events_path, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._seq += 1
        if hits and kind != "secret_redacted":
            self.event("secret_redacted", where=f"event {kind}", count=hits)
        return json.loads(body)

    def write(self, rel: str, content) -> Path:
        """Atomic write of text or JSON (dict/list) under the run dir, redacted."""
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content, hits = self.secrets.redact_value(content)
        text = content if isinstance(content, str) else json.dumps(content, indent=1, default=str)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        if hits:
            self.event("secret_redacted", where=rel, count=hits)
        return path

    def attempt_path(self, attempt: int, rel: str = "") -> Path:
        return self.dir / "attempts" / f"{attempt:03d}" / rel

    def redact_tree(self, root: Path):
        """Redact files written by child processes (stage logs) in place."""
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
                text = path.read_bytes().decode("utf-8", "replace")
                clean, hits = self.secrets.redact(text)
                if hits:
                    path.write_text(clean)
                    self.event("secret_redacted", where=str(path.relative_to(self.dir)), count=hits)

    # -- reading
    @staticmethod
    def load_events(path: Path) -> list[dict]:
        """Every parseable event, verified or not (for display)."""
        events: list[dict] = []
        if not Path(path).exists():
            return events
        for line in Path(path).read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                break  # a line cut short by a kill; everything after it is untrusted
        return events

    def verified_events(self) -> tuple[list[dict], str, str | None]:
        """The prefix of the log whose chain verifies, the last MAC, and why it stopped."""
        events: list[dict] = []
        mac = ""
        if not self.events_path.exists():
            return events, mac, None
        lines = self.events_path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if self.key is None:
                try:
                    events.append(json.loads(line))
                    continue
                except ValueError:
                    return events, mac, f"line {number} is not JSON"
            match = MAC_TAIL.search(line)
            if not match:
                return events, mac, f"line {number} has no MAC"
            body = line[: match.start()] + "}"
            if not hmac.compare_digest(self._sign(mac, body), match.group(1)):
                return events, mac, f"line {number}: MAC does not verify"
            try:
                event = json.loads(body)
            except ValueError:
                return events, mac, f"line {number} is not JSON"
            if event.get("seq") != len(events) + 1:
                return events, mac, f"line {number}: sequence number {event.get('seq')}"
            events.append(event)
            mac = match.group(1)
        return events, mac, None

    def drop_unverified(self) -> str | None:
        """Keep only the verified prefix in events.jsonl (the rest is moved aside); say why."""
        events, mac, reason = self.verified_events()
        if reason is None:
            return None
        aside = self.events_path.with_name(f"events.jsonl.untrusted-{int(time.time())}")
        os.replace(self.events_path, aside)
        kept = self.events_path.with_name("events.jsonl.tmp")
        with open(kept, "w") as handle:
            lines = aside.read_text().splitlines()[: len(events)]
            handle.write("".join(line + "\n" for line in lines))
        os.replace(kept, self.events_path)
        self._mac, self._seq = mac, len(events)
        return f"{reason}; {len(lines)} verified event(s) kept, the rest moved to {aside.name}"

    def state(self) -> ResumeState:
        state = ResumeState()
        events, _, state.tampered = self.verified_events()
        for ev in events:
            kind = ev["kind"]
            if kind == "run_started":
                state.started = ev
            elif kind == "attempt_started":
                state.starts[ev["attempt"]] = state.starts.get(ev["attempt"], 0) + 1
            elif kind == "llm_response":
                state.responses[ev["attempt"]] = ev
                state.tokens += ev.get("input_tokens", 0) + ev.get("output_tokens", 0)
                state.dollars += ev.get("cost_usd", 0.0)
            elif kind == "attempt_finished":
                state.attempts[ev["attempt"]] = ev
                state.wall_seconds += ev.get("seconds", 0.0)
            elif kind == "accepted":
                state.accepted = ev
            elif kind == "accepted_unverified":
                state.accepted = None
                state.attempts.pop(ev["attempt"], None)
            elif kind == "run_finished":
                state.finished = ev
        return state
