"""The agent loop: prompt, edits, apply, grade, feedback; until accepted or out of budget."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .agent import Agent, AttemptContext, AttemptHistory, make_agent
from .config import AgentConfig, Goal
from .display import Reporter
from .errors import ProviderError
from .grading import Grader, Verdict
from .providers import Completion, Provider, make_provider
from .records import RunRecord
from .regressions import candidates_from_stage, case_file, write_regression
from .sandbox import secret_values
from .workspace import Workspace, resolve_base

EXIT_ACCEPTED, EXIT_NOT_ACCEPTED = 0, 1


@dataclass
class RunSettings:
    repo: Path
    goal: Goal
    agent: AgentConfig
    runs_dir: Path
    run_id: str
    resume: bool = False
    merge: bool = False
    slot: str | None = None  # worktree/build slot (default: the goal's); bench lanes set it


def open_loop(settings: RunSettings, reporter: Reporter | None = None) -> AgentLoop:
    """Assemble a run's collaborators from its settings (`harness run`, `harness bench`)."""
    agent = make_agent(settings.repo, settings.agent)  # bad prompt templates: ConfigError now
    provider = make_provider(settings.agent, settings.repo, settings.goal.id)
    secrets = secret_values()
    record = RunRecord(settings.runs_dir, settings.run_id, secrets)
    workspace = Workspace(settings.repo, settings.goal.id, settings.run_id, slot=settings.slot)
    return AgentLoop(
        settings,
        agent=agent,
        provider=provider,
        workspace=workspace,
        record=record,
        reporter=reporter or Reporter(),
        secrets=secrets,
    )


class AgentLoop:
    """Attempts until accepted or out of budget; every collaborator is passed in."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        agent: Agent,
        provider: Provider,
        workspace: Workspace,
        record: RunRecord,
        reporter: Reporter,
        secrets: list[str],
    ):
        self.s = settings
        self.goal, self.agent_config = settings.goal, settings.agent
        self.agent, self.provider, self.ws = agent, provider, workspace
        self.record, self.reporter, self.secrets = record, reporter, secrets
        self.state = self.record.state()
        self.session_start = time.monotonic()

    # ---------------------------------------------------------------- bookkeeping
    def wall_used(self) -> float:
        return self.state.wall_seconds + (time.monotonic() - self.session_start)

    def budget_problem(self) -> str | None:
        budget = self.goal.budget
        if self.state.tokens >= budget.tokens:
            return f"token budget spent ({self.state.tokens} >= {budget.tokens})"
        if self.state.dollars >= budget.dollars:
            return f"dollar budget spent (${self.state.dollars:.4f} >= ${budget.dollars})"
        if self.wall_used() >= budget.wall_seconds:
            return f"wall-time budget spent ({self.wall_used():.0f}s >= {budget.wall_seconds}s)"
        return None

    def spend(self, completion: Completion):
        self.state.tokens += completion.tokens
        self.state.dollars += completion.cost_usd
        self.reporter.usage(self.state.tokens, self.state.dollars)

    def stuck(self) -> bool:
        n = self.goal.budget.stuck_after
        done = [self.state.attempts[k] for k in sorted(self.state.attempts)]
        last = [a["signature"] for a in done[-n:]]
        return n > 1 and len(last) == n and len(set(last)) == 1 and not done[-1]["ok"]

    def start_run(self):
        if self.state.started:
            base = self.state.started["base"]
            self.record.event("session_resumed", next_attempt=self.state.next_attempt)
            return base
        base = resolve_base(self.ws.repo, self.goal.base)
        self.record.write("goal.json", self.goal.to_dict())
        self.record.write("agent.json", self.agent_config.to_dict())
        self.state.started = self.record.event(
            "run_started",
            run_id=self.s.run_id,
            goal=self.goal.id,
            agent=self.agent_config.name,
            mode=self.agent_config.mode,
            provider=self.agent_config.provider,
            model=self.agent_config.model,
            base=base,
            repo=str(self.ws.root),
            worktree=str(self.ws.worktree),
            harness_python=sys.executable,
        )
        return base

    # ---------------------------------------------------------------- one attempt
    def run_attempt(self, attempt: int, base: str) -> tuple[Verdict, list]:
        started = time.monotonic()
        self.record.event("attempt_started", attempt=attempt)
        self.reporter.attempt(attempt)
        self.ws.prepare(base)
        if not self.goal.acceptance.build:  # python-only goal: reuse the main checkout's build
            seeded = self.ws.seed_prebuilt()
            if seeded:
                self.record.event("prebuilt_seeded", attempt=attempt, files=seeded)
        grader = Grader(self.ws, self.goal, base, self.secrets, on_stage=self._on_stage(attempt))
        ctx = AttemptContext(
            number=attempt,
            base=base,
            goal=self.goal,
            config=self.agent_config,
            repo=self.s.repo,
            workspace=self.ws,
            feedback=self.state.feedback_history(),
            provider=self.provider,
            record=self.record,
            reporter=self.reporter,
            tool_grader=Grader(self.ws, self.goal, base, self.secrets),
            history=AttemptHistory.from_events(
                self.record.load_events(self.record.events_path), attempt
            ),
            on_usage=self.spend,
            budget_problem=self.budget_problem,
        )
        submission = self.agent.attempt(ctx)
        received = time.monotonic()
        self.record.write(f"attempts/{attempt:03d}/diff.patch", self.ws.diff(base))
        changed = self.ws.changed_paths(base)
        if submission.graded:
            self.reporter.stage("submitted", f"{len(changed)} file(s) changed")
            verdict = grader.grade(self.record.attempt_path(attempt, "stages"))
            self.record.redact_tree(self.record.attempt_path(attempt, "stages"))
        else:
            verdict = Verdict(False, [], submission.failed_stage, submission.feedback)
        overhead_s = None
        if verdict.stages:
            stage_time = sum(s.seconds for s in verdict.stages)
            overhead_s = round(time.monotonic() - received - stage_time, 3)
        self.record.write(f"attempts/{attempt:03d}/verdict.json", verdict.to_dict())
        responses = AttemptHistory.from_events(
            self.record.load_events(self.record.events_path), attempt
        ).responses
        finished = self.record.event(
            "attempt_finished",
            attempt=attempt,
            ok=verdict.ok,
            failed_stage=verdict.failed_stage,
            feedback=verdict.feedback,
            signature=verdict.signature,
            seconds=round(time.monotonic() - started, 3),
            patch_to_verdict_s=round(time.monotonic() - received, 3),
            harness_overhead_s=overhead_s,
            regression_candidate=self._candidate(verdict, attempt),
            tokens=sum(r.get("input_tokens", 0) + r.get("output_tokens", 0) for r in responses),
            cost_usd=round(sum(r.get("cost_usd", 0.0) for r in responses), 6),
            model_seconds=round(sum(r.get("seconds", 0.0) for r in responses), 3),
            steps=submission.steps,
            edit_blocks=submission.edit_blocks,
            edit_failures=submission.edit_failures,
        )
        self.state.attempts[attempt] = finished
        self.state.wall_seconds += finished["seconds"]
        return verdict, changed

    def _on_stage(self, attempt: int):
        def hook(name, status, result=None):
            self.reporter.stage(name, status, result)
            if result is not None:
                self.record.event(
                    "stage",
                    attempt=attempt,
                    name=name,
                    ok=result.ok,
                    seconds=result.seconds,
                    summary=result.summary,
                )

        return hook

    @staticmethod
    def _candidate(verdict: Verdict, attempt: int):
        if verdict.ok or not verdict.stages:
            return None
        return candidates_from_stage(verdict.stages[-1].to_dict(), attempt)

    def usage_source(self) -> str:
        """ "provider" when every response reported its usage, else "estimated"."""
        events = self.record.load_events(self.record.events_path)
        sources = {e.get("usage_source") for e in events if e["kind"] == "llm_response"}
        return "estimated" if "estimated" in sources else "provider"

    # ---------------------------------------------------------------- acceptance
    def accept(self, attempt: int, changed: list) -> dict:
        regressions = self.grow_regressions(attempt)
        usage = self.state.attempts.get(attempt, {})
        branch = f"harness/{self.goal.id}/{self.s.run_id}"
        message = (
            f"harness: {self.goal.title}\n\n"
            f"Goal: {self.goal.id}\nRun: {self.s.run_id}\nAttempt: {attempt}\n"
            f"Model: {self.agent_config.provider}:{self.agent_config.model} "
            f"(agent {self.agent_config.name}, {self.agent_config.mode} mode)\n"
            f"Usage: run_tokens={self.state.tokens} run_cost_usd={self.state.dollars:.4f} "
            f"attempt_tokens={usage.get('tokens', 0)} usage_source={self.usage_source()}\n"
            + "".join(f"Regression-Test: {p}\n" for p in regressions)
        )
        commit = self.ws.commit(changed + regressions, message, branch)
        event = self.record.event(
            "accepted",
            attempt=attempt,
            branch=branch,
            commit=commit,
            regressions=regressions,
            changed=changed,
        )
        self.state.accepted = event
        if self.s.merge:
            ok, info = self.ws.merge(branch, f"Merge {branch} (goal {self.goal.id})")
            self.record.event("merged", ok=ok, info=info)
            event = dict(event, merge=("merged as " + info[:12]) if ok else f"FAILED: {info}")
        return event

    def grow_regressions(self, accepted_attempt: int) -> list[str]:
        written = []
        for number in sorted(self.state.attempts):
            cand = self.state.attempts[number].get("regression_candidate")
            if number >= accepted_attempt or not cand:
                continue
            grown = case_file(
                cand,
                self.goal.id,
                self.s.run_id,
                accepted_attempt,
                f"{self.agent_config.provider}:{self.agent_config.model}",
            )
            if grown is None:
                continue
            path = write_regression(self.ws.worktree, grown, self.goal.id, self.s.run_id)
            rel = str(path.relative_to(self.ws.worktree))
            # A grown test must pass on the accepted change, or it is not a regression test.
            grader = Grader(self.ws, self.goal, "", self.secrets)
            try:
                ok, reason = grader.verify_regression(
                    grown, self.record.attempt_path(accepted_attempt, f"stages/regrow-{number}")
                )
            finally:
                grader.close()
            if ok:
                written.append(rel)
                self.record.event("regression_written", path=rel, from_attempt=number)
            else:
                path.unlink()
                self.record.event(
                    "regression_dropped", path=rel, from_attempt=number, reason=reason[-500:]
                )
        return written

    # ---------------------------------------------------------------- the loop
    def run(self) -> tuple[int, dict]:
        if self.state.finished:
            return self.state.finished["exit_code"], self.summary(
                self.state.finished["outcome"], self.state.finished["reason"]
            )
        if self.state.accepted:  # killed after the commit but before the run was closed
            return self.finish(
                "accepted", "accepted before the interruption", EXIT_ACCEPTED, self.state.accepted
            )
        try:
            base = self.start_run()
            self.reporter.start(
                self.s.run_id, self.goal, self.agent_config, self.goal.budget.attempts
            )
            self.reporter.usage(self.state.tokens, self.state.dollars)
            return self._loop(base)
        finally:
            self.reporter.stop()
            self.ws.close()

    def _loop(self, base: str) -> tuple[int, dict]:
        attempt = self.state.next_attempt
        while attempt <= self.goal.budget.attempts:
            problem = self.budget_problem()
            if problem:
                return self.finish("budget", problem, EXIT_NOT_ACCEPTED)
            try:
                verdict, changed = self.run_attempt(attempt, base)
            except ProviderError as exc:
                self.record.event(
                    "provider_error", attempt=attempt, error=str(exc), tries=exc.tries
                )
                return self.finish("provider_error", str(exc), EXIT_NOT_ACCEPTED)
            if verdict.ok:
                event = self.accept(attempt, changed)
                self.reporter.note(f"accepted on attempt {attempt}: {event['branch']}")
                return self.finish(
                    "accepted", f"attempt {attempt} passed every stage", EXIT_ACCEPTED, event
                )
            self.reporter.note(f"attempt {attempt}: rejected at {verdict.failed_stage}")
            if verdict.flagged:  # e.g. an implausible speedup: a human decides, not the loop
                return self.finish(
                    "flagged", f"attempt {attempt} flagged for human review", EXIT_NOT_ACCEPTED
                )
            if self.stuck():
                return self.finish(
                    "stuck",
                    f"the same failure repeated {self.goal.budget.stuck_after} times in a row",
                    EXIT_NOT_ACCEPTED,
                )
            attempt += 1
        return self.finish(
            "budget", f"all {self.goal.budget.attempts} attempts used", EXIT_NOT_ACCEPTED
        )

    def finish(self, outcome: str, reason: str, code: int, accepted: dict | None = None):
        summary = self.summary(outcome, reason, accepted)
        self.record.write("summary.json", summary)
        self.record.event(
            "run_finished", outcome=outcome, reason=reason, exit_code=code, accepted=accepted
        )
        return code, summary

    def summary(self, outcome: str, reason: str, accepted: dict | None = None) -> dict:
        accepted = accepted or self.state.accepted or {}
        rows = []
        for number in sorted(self.state.attempts):
            ev = self.state.attempts[number]
            first = (ev.get("feedback") or "").strip().splitlines()
            rows.append(
                {
                    "attempt": number,
                    "ok": ev["ok"],
                    "failed_stage": ev.get("failed_stage"),
                    "seconds": ev.get("seconds", 0.0),
                    "tokens": ev.get("tokens", 0),
                    "cost_usd": ev.get("cost_usd", 0.0),
                    "note": first[1] if len(first) > 1 else (first[0] if first else ""),
                    "patch_to_verdict_s": ev.get("patch_to_verdict_s"),
                    "harness_overhead_s": ev.get("harness_overhead_s"),
                }
            )
        return {
            "run_id": self.s.run_id,
            "goal": self.goal.id,
            "agent": self.agent_config.name,
            "mode": self.agent_config.mode,
            "model": f"{self.agent_config.provider}:{self.agent_config.model}",
            "outcome": outcome,
            "reason": reason,
            "attempts": rows,
            "tokens": self.state.tokens,
            "cost_usd": round(self.state.dollars, 6),
            "branch": accepted.get("branch"),
            "commit": accepted.get("commit"),
            "regressions": accepted.get("regressions", []),
            "merge": accepted.get("merge"),
            "record": str(self.record.dir),
        }
