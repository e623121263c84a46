"""Loading and validating goals.yaml and agents/*.yaml with line-numbered errors."""

from __future__ import annotations

import copy
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

# Paths the agent may never write, whatever a goal's scope says.
BUILTIN_PROTECTED = [
    "harness/**",
    "numcheck/**",
    "goals.yaml",
    "agents/**",
    "prompts/**",
    "regressions/**",
    "**/conftest.py",
    "runtime/tests/**",
    "**/CTestTestfile.cmake",
    "bench/**",
    ".ci/**",
    "Makefile",
    "pyproject.toml",
    ".gitignore",
    ".gitmodules",
    ".git/**",
]

# Commands for the real runtime; {placeholders} are filled per worktree. Goals may override any.
# Grading builds skip pybind11's link-time optimization: the LTO link of _C took ~70 of the
# ~90 s a one-file change needed to reach a verdict on 2 cores (docs/performance.md).
# {ccache_flag} where ccache exists: C++ and CUDA objects both go through the shared cache.
CCACHE_FLAGS = "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache"
# One CUDA architecture, as CI builds: each extra one multiplies the .cu compile time.
DEFAULT_COMMANDS = {
    "configure": "cmake -S runtime -B {build_dir} -G Ninja -DCMAKE_BUILD_TYPE=Release "
    "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF -DPython_EXECUTABLE={python} "
    "-DEMBER_PYTHON_OUT={worktree}/runtime/python/ember -DEMBER_CUDA_ARCHS=90 {ccache_flag}",
    "build": "cmake --build {build_dir} -j {jobs}",
    "cpp_test": "ctest --test-dir {build_dir} --output-on-failure -R {selector}",
    "pytest": "{python} -m pytest -q -rf -p no:cacheprovider {selector}",
    # Run by the regression stage after the grown cases (regressions/cases, checked by the
    # harness itself); empty: nothing more.
    "regression": "",
}


class LineDict(dict):
    """A mapping that remembers the source line of itself and of each key."""

    line: int = 0
    key_lines: dict


class _LineLoader(yaml.SafeLoader):
    duplicate_errors: list[str]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in result:
            loader.duplicate_errors.append(
                f"line {line}: duplicate key {key!r} (first at line {result.key_lines[key]})"
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse YAML keeping line numbers; syntax errors become ConfigError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    loader = _LineLoader(text)
    loader.duplicate_errors = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    if loader.duplicate_errors:
        raise ConfigError([f"{path}: {e}" for e in loader.duplicate_errors])
    return data


# ---- a tiny schema language: type specs are python types, [spec], or dict schemas ----


class Required:
    def __init__(self, spec):
        self.spec = spec


class Optional:
    def __init__(self, spec, default=None):
        self.spec, self.default = spec, default


class OneOf:
    def __init__(self, *choices):
        self.choices = choices


def _type_name(spec) -> str:
    if isinstance(spec, OneOf):
        return "one of " + ", ".join(repr(c) for c in spec.choices)
    if isinstance(spec, tuple):
        return " or ".join(_type_name(s) for s in spec)
    if isinstance(spec, list):
        return f"list of {_type_name(spec[0])}"
    if isinstance(spec, dict):
        return "mapping"
    return {
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(spec, str(spec))


def _check(value, spec, where: str, line: int, errors: list, path: str):
    """Validate `value` against `spec`, appending 'file:line: where: message' errors."""
    if isinstance(spec, tuple):
        for option in spec:
            trial: list = []
            _check(value, option, where, line, trial, path)
            if not trial:
                return
        errors.append(f"{path}:{line}: {where}: expected {_type_name(spec)}, got {value!r}")
        return
    if isinstance(spec, OneOf):
        if value not in spec.choices:
            errors.append(f"{path}:{line}: {where}: expected {_type_name(spec)}, got {value!r}")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            errors.append(
                f"{path}:{line}: {where}: expected {_type_name(spec)}, "
                f"got {type(value).__name__} {value!r}"
            )
            return
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]", getattr(item, "line", line), errors, path)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            errors.append(f"{path}:{line}: {where}: expected a mapping, got {value!r}")
            return
        key_lines = getattr(value, "key_lines", {})
        for key in value:
            if key not in spec:
                known = ", ".join(sorted(spec))
                errors.append(
                    f"{path}:{key_lines.get(key, line)}: {where}: unknown key {key!r} "
                    f"(known keys: {known})"
                )
        for key, sub in spec.items():
            kline = key_lines.get(key, getattr(value, "line", line))
            if key not in value or value[key] is None:
                if isinstance(sub, Required):
                    errors.append(
                        f"{path}:{getattr(value, 'line', line)}: {where}: "
                        f"missing required key {key!r}"
                    )
                continue
            inner = sub.spec if isinstance(sub, (Required, Optional)) else sub
            _check(value[key], inner, f"{where}.{key}", kline, errors, path)
        return
    if spec is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if (spec is int and isinstance(value, bool)) or not isinstance(value, spec):
        errors.append(
            f"{path}:{line}: {where}: expected {_type_name(spec)}, "
            f"got {type(value).__name__} {value!r}"
        )


def _apply_defaults(value: dict, spec: dict) -> dict:
    out: dict[str, Any] = {}
    for key, sub in spec.items():
        inner = sub.spec if isinstance(sub, (Required, Optional)) else sub
        present = key in value and value[key] is not None
        if present and isinstance(inner, dict):
            out[key] = _apply_defaults(value[key], inner)
        elif present and isinstance(inner, list) and isinstance(inner[0], dict):
            out[key] = [_apply_defaults(v, inner[0]) for v in value[key]]
        elif present:
            out[key] = copy.deepcopy(value[key])
        elif isinstance(sub, Optional):
            default = sub.default
            out[key] = (
                _apply_defaults({}, inner)
                if isinstance(inner, dict) and default is None
                else copy.deepcopy(default)
            )
        else:
            out[key] = None
    return out


NUMERICS_SCHEMA = {
    "name": Required(str),
    "ember": Required(str),  # python expression giving a callable, e.g. ember.exp
    "torch": Required(str),  # its PyTorch reference, e.g. torch.exp
    "shapes": Required([[int]]),  # one shape per check (all inputs share it)
    "dtypes": Optional([OneOf("float32", "float64")], ["float32"]),
    "num_inputs": Optional(int, 1),
    "input_range": Optional([float], [-4.0, 4.0]),
    "seeds": Optional(int, 3),  # how many fresh random seeds per (shape, dtype) and draw
    # Tolerance overrides; unset: the shared table (numcheck.tolerances) for the dtype.
    "atol": Optional(float),
    "rtol": Optional(float),
    "atol_float64": Optional(float),
    "rtol_float64": Optional(float),
    "backward": Optional(bool, True),
    "supports_out": Optional(bool, False),
}

PERFORMANCE_SCHEMA = {
    "name": Required(str),
    "ember": Required(str),  # the callable timed
    "torch": Required(str),  # the reference every timed output is checked against
    "baseline": Optional(OneOf("torch", "base"), "torch"),  # what ember's time is compared to
    "shape": Required([int]),
    "dtype": Optional(OneOf("float32", "float64"), "float32"),
    "num_inputs": Optional(int, 1),
    "input_range": Optional([float], [-4.0, 4.0]),
    "min_speedup": Optional(float, 1.0),  # baseline time / ember time must reach this
    "max_speedup": Optional(float, 10.0),  # above it the result is flagged for a human
    "repeats": Optional(int, 10),  # timed calls, each on fresh inputs; the median counts
    "warmup": Optional(int, 2),
}

GOAL_SCHEMA = {
    "id": Required(str),
    "title": Required(str),
    "intent": Required(str),
    "default": Optional(bool, False),
    "agent": Optional(str, "replay-demo"),
    "base": Optional(str, "HEAD"),
    # A generated goal (harness/suite) starts from `base` with this patch applied and these paths
    # removed; its hidden test rows are written in only while grading (harness/goal_base.py).
    "base_patch": Optional(str),
    "base_drop": Optional([str], []),
    "hidden_tests": Optional(str),
    # A known-good change (a suite goal's solution.patch): the tests that must run and pass are
    # those that do with it applied, as SWE-bench takes PASS_TO_PASS from the gold patch.
    "reference_solution": Optional(str),
    "scope": Required([str]),
    "protected": Optional([str], []),
    "context_files": Optional([str], []),
    "edit_targets": Optional([str], []),  # files the change needs: shown whole, first
    "category": Optional(str, "general"),  # groups goals in `harness report`
    "nightly": Optional(bool, False),  # `harness nightly` runs it (nightly.yaml goals.files)
    "commands": Optional({k: Optional(str, v) for k, v in DEFAULT_COMMANDS.items()}),
    "acceptance": Required(
        {
            "build": Optional(bool, True),
            "cpp_tests": Optional([str], []),
            "pytest": Optional([str], []),
            "numerics": Optional([NUMERICS_SCHEMA], []),
            "regression_suite": Optional(bool, True),
            "performance": Optional([PERFORMANCE_SCHEMA], []),
        }
    ),
    "budget": Optional(
        {
            "attempts": Optional(int, 3),
            "wall_seconds": Optional(float, 1800),
            "tokens": Optional(int, 400_000),
            "dollars": Optional(float, 5.0),
            "stuck_after": Optional(int, 2),  # identical failures in a row before giving up
        }
    ),
    "limits": Optional(
        {
            "stage_timeout_s": Optional(float, 900),
            "cpu_seconds": Optional(int, 1800),
            "memory_mb": Optional(int, 8192),
            # grade without namespaces where the kernel refuses them (throwaway machines only)
            "allow_unsandboxed": Optional(bool, False),
        }
    ),
}

GOALS_FILE_SCHEMA = {"version": Optional(int, 1), "goals": Required([dict])}

AGENT_SCHEMA = {
    "role": Required(str),
    "provider": Required(OneOf("openai", "anthropic", "openai-compatible", "replay")),
    "model": Required(str),
    "base_url": Optional(str),
    "api_key_env": Optional(str),
    "temperature": Optional(float),  # omitted from the request when unset
    "max_tokens": Optional(int, 4096),
    "timeout_s": Optional(float, 120.0),
    "max_retries": Optional(int, 4),
    "backoff_s": Optional(float, 1.0),
    "edit_format": Optional(OneOf("search_replace", "unified_diff"), "search_replace"),
    "mode": Optional(OneOf("patch", "tools", "null"), "patch"),  # null: no edits (agents/null.yaml)
    "max_steps": Optional(int, 40),  # tools mode: model turns per attempt
    "attempt_tokens": Optional(int, 400_000),  # tools mode: tokens per attempt
    "tool_output_chars": Optional(int, 12_000),  # tools mode: longer tool output is cut
    "prompts": Optional({"system": Optional(str), "attempt": Optional(str)}),  # default per mode
    "context_tokens": Optional(int, 12000),
    "pricing": Optional(
        {"input_per_mtok": Optional(float, 0.0), "output_per_mtok": Optional(float, 0.0)}
    ),
    "trajectory": Optional(str),
    "notes": Optional(str),
}


@dataclass
class NumericsCheck:
    """One `acceptance.numerics` entry: an ember callable against its PyTorch reference."""

    name: str
    ember: str
    torch: str
    shapes: list[list[int]]
    dtypes: list[str]
    num_inputs: int
    input_range: list[float]
    seeds: int
    atol: float | None
    rtol: float | None
    atol_float64: float | None
    rtol_float64: float | None
    backward: bool
    supports_out: bool


@dataclass
class PerformanceCheck:
    """One `acceptance.performance` entry: ember's median time against torch's or the base's."""

    name: str
    ember: str
    torch: str
    baseline: str
    shape: list[int]
    dtype: str
    num_inputs: int
    input_range: list[float]
    min_speedup: float
    max_speedup: float
    repeats: int
    warmup: int


@dataclass
class Acceptance:
    build: bool
    cpp_tests: list[str]
    pytest: list[str]
    numerics: list[NumericsCheck]
    regression_suite: bool
    performance: list[PerformanceCheck] = field(default_factory=list)


@dataclass
class Budget:
    attempts: int
    wall_seconds: float
    tokens: int
    dollars: float
    stuck_after: int


@dataclass
class StageLimits:
    stage_timeout_s: float
    cpu_seconds: int
    memory_mb: int
    allow_unsandboxed: bool = False


@dataclass
class Commands:
    """Command templates run in the worktree; placeholders are listed in docs/harness.md."""

    configure: str
    build: str
    cpp_test: str
    pytest: str
    regression: str


@dataclass
class Goal:
    id: str
    title: str
    intent: str
    default: bool
    agent: str
    base: str
    scope: list[str]
    protected: list[str]
    context_files: list[str]
    commands: Commands
    acceptance: Acceptance
    budget: Budget
    limits: StageLimits
    edit_targets: list[str] = field(default_factory=list)
    category: str = "general"
    nightly: bool = False
    base_patch: str | None = None
    base_drop: list[str] = field(default_factory=list)
    hidden_tests: str | None = None
    reference_solution: str | None = None
    line: int = 0

    @property
    def all_protected(self) -> list[str]:
        return BUILTIN_PROTECTED + [p for p in self.protected if p not in BUILTIN_PROTECTED]

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["line"]
        data["protected_effective"] = self.all_protected
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Goal:
        """Rebuild a goal from `to_dict` output (a run's goal.json)."""
        data = {k: v for k, v in data.items() if k != "protected_effective"}
        return from_dict(cls, data)


# Prompt templates per agent mode, used when an agent file names none.
DEFAULT_PROMPTS = {
    "patch": {"system": "prompts/system.md", "attempt": "prompts/attempt.md"},
    "null": {"system": "prompts/system.md", "attempt": "prompts/attempt.md"},
    "tools": {"system": "prompts/tools_system.md", "attempt": "prompts/tools_attempt.md"},
}


@dataclass
class PromptPaths:
    system: str
    attempt: str


@dataclass
class Pricing:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1e6


@dataclass
class AgentConfig:
    name: str
    path: str
    role: str
    provider: str
    model: str
    base_url: str | None
    api_key_env: str | None
    temperature: float | None
    max_tokens: int
    timeout_s: float
    max_retries: int
    backoff_s: float
    edit_format: str
    prompts: PromptPaths
    context_tokens: int
    pricing: Pricing
    trajectory: str | None
    notes: str | None = None
    mode: str = "patch"
    max_steps: int = 40
    attempt_tokens: int = 400_000
    tool_output_chars: int = 12_000

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AgentConfig:
        return from_dict(cls, data)


def from_dict(cls, data: dict):
    """Build dataclass `cls` from validated, defaulted data, nested dataclasses included."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        kind, value = hints[f.name], data[f.name]
        if is_dataclass(kind):
            value = from_dict(kind, value)
        elif typing.get_origin(kind) is list and is_dataclass(typing.get_args(kind)[0]):
            value = [from_dict(typing.get_args(kind)[0], v) for v in value]
        values[f.name] = copy.deepcopy(value)
    return cls(**values)


def _performance_errors(raw: dict, where: str, line: int, name: str) -> list[str]:
    acceptance = raw.get("acceptance")
    if not isinstance(acceptance, dict):
        return []
    checks = acceptance.get("performance") or []
    errors = []
    for i, check in enumerate(checks if isinstance(checks, list) else []):
        if not isinstance(check, dict):
            continue
        at = f"{name}:{getattr(check, 'line', line)}: {where}.acceptance.performance[{i}]"
        if check.get("baseline") == "base" and acceptance.get("build", True):
            errors.append(
                f"{at}.baseline: 'base' needs acceptance.build: false (the base commit's ember "
                "is timed with the main checkout's built extension); use baseline: torch"
            )
        if isinstance(check.get("input_range"), list) and len(check["input_range"]) != 2:
            errors.append(f"{at}.input_range: expected [low, high]")
        if isinstance(check.get("repeats"), int) and check["repeats"] < 3:
            errors.append(f"{at}.repeats: at least 3 timed calls are needed for a median")
    return errors


def load_goals(path: Path) -> list[Goal]:
    """Load and validate goals.yaml; raise ConfigError listing every problem."""
    path = Path(path)
    data = load_yaml(path)
    errors: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: top level must be a mapping with a 'goals' list")
    _check(data, GOALS_FILE_SCHEMA, "<root>", 1, errors, path.name)
    if errors:
        raise ConfigError(errors)
    goals: list[Goal] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["goals"]):
        where, line = f"goals[{index}]", getattr(raw, "line", 1)
        goal_errors: list[str] = []
        _check(raw, GOAL_SCHEMA, where, line, goal_errors, path.name)
        for i, num in enumerate((raw.get("acceptance") or {}).get("numerics") or []):
            if (
                isinstance(num, dict)
                and "input_range" in num
                and isinstance(num["input_range"], list)
                and len(num["input_range"]) != 2
            ):
                goal_errors.append(
                    f"{path.name}:{getattr(num, 'line', line)}: {where}.acceptance.numerics[{i}]"
                    f".input_range: expected [low, high]"
                )
        goal_errors += _performance_errors(raw, where, line, path.name)
        gid = raw.get("id")
        if isinstance(gid, str):
            if gid in seen:
                goal_errors.append(
                    f"{path.name}:{line}: {where}: duplicate goal id {gid!r} "
                    f"(first defined at line {seen[gid]})"
                )
            else:
                seen[gid] = line
            if not gid.replace("-", "").replace("_", "").replace(".", "").isalnum():
                goal_errors.append(
                    f"{path.name}:{line}: {where}.id: {gid!r} may only contain "
                    "letters, digits, '-', '_' and '.'"
                )
        errors += goal_errors
        if not goal_errors:
            goals.append(from_dict(Goal, dict(_apply_defaults(raw, GOAL_SCHEMA), line=line)))
    defaults = [g.id for g in goals if g.default]
    if len(defaults) > 1:
        errors.append(f"{path.name}: more than one goal has default: true ({', '.join(defaults)})")
    if errors:
        raise ConfigError(errors)
    return goals


def pick_goal(goals: list[Goal], goal_id: str | None) -> Goal:
    if goal_id is None:
        for goal in goals:
            if goal.default:
                return goal
        raise ConfigError("no --goal given and no goal has 'default: true'")
    for goal in goals:
        if goal.id == goal_id:
            return goal
    raise ConfigError(f"unknown goal {goal_id!r}; known: {', '.join(g.id for g in goals)}")


def resolve_agent_path(repo: Path, name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return (
            candidate
            if candidate.is_absolute()
            else (Path.cwd() / candidate if (Path.cwd() / candidate).exists() else repo / candidate)
        )
    return repo / "agents" / f"{name_or_path}.yaml"


def load_agent(repo: Path, name_or_path: str) -> AgentConfig:
    path = resolve_agent_path(Path(repo), name_or_path)
    if not path.exists():
        available = sorted(p.stem for p in (Path(repo) / "agents").glob("*.yaml"))
        raise ConfigError(
            f"agent {name_or_path!r} not found at {path}; "
            f"available: {', '.join(available) or 'none'}"
        )
    data = load_yaml(path)
    errors: list[str] = []
    _check(data, AGENT_SCHEMA, "agent", getattr(data, "line", 1), errors, path.name)
    if not errors and data.get("provider") == "replay" and not data.get("trajectory"):
        errors.append(f"{path.name}:{data.line}: agent: provider 'replay' needs 'trajectory'")
    if not errors and data.get("provider") == "openai-compatible" and not data.get("base_url"):
        errors.append(
            f"{path.name}:{data.line}: agent: provider 'openai-compatible' needs 'base_url'"
        )
    if errors:
        raise ConfigError(errors)
    values = _apply_defaults(data, AGENT_SCHEMA)
    defaults = DEFAULT_PROMPTS[values["mode"]]
    values["prompts"] = {k: values["prompts"][k] or defaults[k] for k in defaults}
    return from_dict(AgentConfig, dict(values, name=path.stem, path=str(path)))
