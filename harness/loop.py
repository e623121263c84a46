"""The agent loop: prompt, edits, apply, grade, feedback; until accepted or out of budget."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .agent import Agent, AttemptContext, AttemptHistory, make_agent
from .config import AgentConfig, Goal
from .display import Reporter
from .errors import ProviderError
from .goal_base import GoalBases, goal_bases
from .grading import Grader, Verdict
from .providers import Completion, Message, Provider, ToolSpec, make_provider
from .records import RunRecord
from .regressions import candidates_from_stage, case_file, write_regression
from .sandbox import require_sandbox
from .secrets import SecretSet
from .workspace import Workspace, WorkspaceTampered

EXIT_ACCEPTED, EXIT_NOT_ACCEPTED = 0, 1
MAX_STARTS = 3  # an attempt interrupted this often (harness killed each time) counts as failed


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
    allow_unsandboxed: bool = False


def open_loop(settings: RunSettings, reporter: Reporter | None = None) -> AgentLoop:
    """Assemble a run's collaborators from its settings (`harness run`, `harness bench`).

    Everything is validated before the run directory exists: the sandbox, the prompt
    templates, the goal's base and the provider's key. Secrets are collected before the
    provider takes its key out of the environment (Note [secret handling]).
    """
    secrets = SecretSet.from_environ(extra_names=[settings.agent.api_key_env or ""])
    require_sandbox(settings.allow_unsandboxed or settings.goal.limits.allow_unsandboxed)
    agent = make_agent(settings.repo, settings.agent)  # bad prompt templates: ConfigError now
    workspace = Workspace(settings.repo, settings.goal.id, settings.run_id, slot=settings.slot)
    try:
        bases = None if settings.resume else goal_bases(workspace.repo, settings.goal)
        provider = make_provider(settings.agent, settings.repo, settings.goal.id)
        record = RunRecord(
            settings.runs_dir, settings.run_id, secrets, workspace.harness_dir / "keys"
        )
    except BaseException:
        workspace.close()
        raise
    return AgentLoop(
        settings,
        agent=agent,
        provider=RedactingProvider(provider, secrets, record),
        workspace=workspace,
        record=record,
        reporter=reporter or Reporter(),
        secrets=secrets,
        bases=bases,
    )


class RedactingProvider(Provider):
    """The provider as the loop and the agents see it: every prompt, conversation and tool
    result is scrubbed of secret values before it leaves the harness (Note [secret handling]);
    a hit is replaced by a marker and flagged with a `secret_redacted` event."""

    def __init__(self, inner: Provider, secrets: SecretSet, record: RunRecord):
        super().__init__(inner.agent)
        self.inner, self.secrets, self.record = inner, secrets, record

    def _clean(self, where: str, value):
        clean, hits = self.secrets.redact_value(value)
        if hits:
            self.record.event("secret_redacted", where=f"{where} sent to the model", count=hits)
        return clean

    def complete(self, system: str, user: str, attempt: int) -> Completion:
        system, user = self._clean(f"attempt {attempt} prompt", [system, user])
        return self.inner.complete(system, user, attempt)

    def chat(
        self, system: str, messages: list[Message], tools: list[ToolSpec], attempt: int, step: int
    ) -> Completion:
        where = f"attempt {attempt} step {step} conversation"
        clean = [
            replace(
                m,
                text=self._clean(where, m.text),
                tool_calls=[
                    replace(c, arguments=self._clean(where, c.arguments)) for c in m.tool_calls
                ],
                results=[replace(r, content=self._clean(where, r.content)) for r in m.results],
            )
            for m in messages
        ]
        return self.inner.chat(self._clean(where, system), clean, tools, attempt, step)


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
        secrets: SecretSet,
        bases: GoalBases | None = None,
    ):
        self.s = settings
        self.goal, self.agent_config = settings.goal, settings.agent
        self.agent, self.provider, self.ws = agent, provider, workspace
        self.record, self.reporter, self.secrets = record, reporter, secrets
        self.bases = bases  # resolved (and derived) by open_loop; None: resumed
        self.allow_unsandboxed = settings.allow_unsandboxed or self.goal.limits.allow_unsandboxed
        self.state = self.record.state()
        self.session_start = time.monotonic()
        self.graded_base: str | None = None  # base + the goal's hidden tests, if it has any
        self.reference_base: str | None = None  # + the goal's reference solution, if it has one

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
            bases = goal_bases(self.ws.repo, self.goal, self.state.started["base"])
            self.graded_base, self.reference_base = bases.graded, bases.reference
            self.record.event("session_resumed", next_attempt=self.state.next_attempt)
            return bases.base
        bases = self.bases or goal_bases(self.ws.repo, self.goal)
        base, self.graded_base, self.reference_base = bases.base, bases.graded, bases.reference
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
            graded_base=self.graded_base,
            reference_base=self.reference_base,
            repo=str(self.ws.root),
            worktree=str(self.ws.worktree),
            harness_python=sys.executable,
            git_fingerprint=self.ws.git_fingerprint(),
        )
        return base

    # ---------------------------------------------------------------- one attempt
    def grader(self, base: str, on_stage=None) -> Grader:
        return Grader(
            self.ws,
            self.goal,
            base,
            self.secrets,
            on_stage=on_stage,
            allow_unsandboxed=self.allow_unsandboxed,
            graded_base=self.graded_base,
            reference_base=self.reference_base,
        )

    def run_attempt(self, attempt: int, base: str) -> tuple[Verdict, list]:
        started = time.monotonic()
        self.record.event("attempt_started", attempt=attempt)
        self.reporter.attempt(attempt)
        self.ws.prepare(base)
        if not self.goal.acceptance.build:  # python-only goal: reuse the main checkout's build
            seeded = self.ws.seed_prebuilt()
            if seeded:
                self.record.event("prebuilt_seeded", attempt=attempt, files=seeded)
        grader = self.grader(base, on_stage=self._on_stage(attempt))
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
            tool_grader=self.grader(base),
            history=AttemptHistory.from_events(
                self.record.load_events(self.record.events_path), attempt
            ),
            on_usage=self.spend,
            budget_problem=self.budget_problem,
        )
        submission = self.agent.attempt(ctx)
        received = time.monotonic()
        applied, _ = self.ws.snapshot(base, grader.policy)  # what is on disk, not what was parsed
        self.record.write(
            f"attempts/{attempt:03d}/diff.patch", self.ws.render_diff(base, applied.files)
        )
        changed = [c.path for c in applied.changes]
        if submission.graded:
            self.reporter.stage("submitted", f"{len(changed)} file(s) changed")
            verdict = grader.grade(self.record.attempt_path(attempt, "stages"))
            self.record.redact_tree(self.record.attempt_path(attempt, "stages"))
        else:
            verdict = Verdict(False, [], submission.failed_stage, submission.feedback)
        overhead_s = None
        if verdict.stages:
            stage_time = sum(s.seconds for s in verdict.stages) + verdict.baseline_seconds
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
                if result.details.get("secrets_redacted"):
                    self.record.event(
                        "secret_redacted",
                        where=f"attempt {attempt} stage {name} output",
                        count=result.details["secrets_redacted"],
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
    def accept(self, attempt: int, verdict: Verdict) -> dict:
        try:  # an accepted attempt is never lost to regression growth
            regressions = self.grow_regressions(attempt)
        except Exception as exc:
            self.record.event(
                "regression_growth_failed", attempt=attempt, error=f"{type(exc).__name__}: {exc}"
            )
            regressions = {}
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
        assert verdict.tree is not None
        changed = verdict.tree.paths
        commit = self.ws.commit(  # exactly the graded tree, plus the harness-written tests
            verdict.tree,
            regressions,
            self.secrets.scrub(message),
            branch,
            self.state.started["git_fingerprint"] if self.state.started else None,
        )
        event = self.record.event(
            "accepted",
            attempt=attempt,
            branch=branch,
            commit=commit,
            regressions=sorted(regressions),
            changed=changed,
        )
        self.state.accepted = event
        if self.s.merge:
            ok, info = self.ws.merge(
                branch,
                f"Merge {branch} (goal {self.goal.id})",
                self.state.started["git_fingerprint"] if self.state.started else None,
            )
            self.record.event("merged", ok=ok, info=info)
            event = dict(event, merge=("merged as " + info[:12]) if ok else f"FAILED: {info}")
        return event

    def grow_regressions(self, accepted_attempt: int) -> dict[str, bytes]:
        """Grown case files, path -> content as the harness wrote it (what gets committed)."""
        written: dict[str, bytes] = {}
        for number in sorted(self.state.attempts):
            cand = self.state.attempts[number].get("regression_candidate")
            if number >= accepted_attempt or not cand:
                continue
            if not self.ws.no_symlinks("regressions"):  # swapped by the previous check's code
                raise WorkspaceTampered("regressions/ became a symlink during regression growth")
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
            content = path.read_bytes()  # before any sandboxed code runs next to it
            # A grown test must pass on the accepted change, or it is not a regression test.
            grader = self.grader("")
            try:
                ok, reason = grader.verify_regression(
                    grown, self.record.attempt_path(accepted_attempt, f"stages/regrow-{number}")
                )
            finally:
                grader.close()
            if ok:
                written[rel] = content
                self.record.event("regression_written", path=rel, from_attempt=number)
            else:
                path.unlink()
                self.record.event(
                    "regression_dropped", path=rel, from_attempt=number, reason=reason[-500:]
                )
        return written

    # ---------------------------------------------------------------- the loop
    def run(self) -> tuple[int, dict]:
        try:
            return self._run()
        finally:
            self.reporter.stop()
            self.ws.close()

    def _run(self) -> tuple[int, dict]:
        if self.state.finished:
            return self.state.finished["exit_code"], self.summary(
                self.state.finished["outcome"], self.state.finished["reason"]
            )
        if self.state.tampered:
            self.record.event("record_tampered", reason=self.record.drop_unverified())
        if self.state.accepted:  # killed after the commit but before the run was closed
            accepted = self.state.accepted
            if self.ws.branch_commit(accepted["branch"]) == accepted["commit"]:
                return self.finish(
                    "accepted", "accepted before the interruption", EXIT_ACCEPTED, accepted
                )
            self.record.event(  # the branch is gone or moved: grade that attempt again
                "accepted_unverified", attempt=accepted["attempt"], branch=accepted["branch"]
            )
            self.state = self.record.state()
        base = self.start_run()
        self.reporter.start(self.s.run_id, self.goal, self.agent_config, self.goal.budget.attempts)
        self.reporter.usage(self.state.tokens, self.state.dollars)
        return self._loop(base)

    def _loop(self, base: str) -> tuple[int, dict]:
        attempt = self.state.next_attempt
        while attempt <= self.goal.budget.attempts:
            problem = self.budget_problem()
            if problem:
                return self.finish("budget", problem, EXIT_NOT_ACCEPTED)
            if self.state.starts.get(attempt, 0) >= MAX_STARTS:
                self.record.event(
                    "attempt_abandoned", attempt=attempt, starts=self.state.starts[attempt]
                )
                self.state.attempts[attempt] = self.record.event(
                    "attempt_finished",
                    attempt=attempt,
                    ok=False,
                    failed_stage="interrupted",
                    feedback=f"[stage interrupted] the harness was killed {MAX_STARTS} times "
                    "while grading this attempt",
                    signature="interrupted",
                    seconds=0.0,
                )
                attempt += 1
                continue
            try:
                verdict, _ = self.run_attempt(attempt, base)
            except ProviderError as exc:
                self.record.event(
                    "provider_error", attempt=attempt, error=str(exc), tries=exc.tries
                )
                return self.finish("provider_error", str(exc), EXIT_NOT_ACCEPTED)
            if verdict.ok:
                try:
                    event = self.accept(attempt, verdict)
                except WorkspaceTampered as exc:
                    self.record.event("integrity_violation", attempt=attempt, error=str(exc))
                    return self.finish("integrity", str(exc), EXIT_NOT_ACCEPTED)
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
