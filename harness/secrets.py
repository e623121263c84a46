"""Secrets: collected once from the environment, kept out of children, scrubbed from all output.

Note [secret handling]: every value of an environment variable whose name looks like a
credential (and the agent's `api_key_env`) is collected at start-up, BEFORE the provider takes
its key out of `os.environ`. From then on nothing that leaves the harness (records, logs, commit
messages, the prompt sent to the model) may contain a value, raw or trivially encoded (base64 at
every alignment, base32, hex with or without separators, decimal byte lists, reversed, rot13,
URL-encoded, case-folded). Children never see them: they get an allow-listed environment
(sandbox.child_env), not ours minus suspicious names.
"""

from __future__ import annotations

import base64
import codecs
import ctypes
import ctypes.util
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|PRIVATE|SESSION|BEARER", re.IGNORECASE
)
MIN_SECRET_LEN = 8  # shorter values would redact ordinary words
MARK = "[REDACTED]"
PR_SET_DUMPABLE = 4


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def looks_like_a_value(value: str) -> bool:
    """Skip what a secret-looking name often holds but is no secret (SSH_AUTH_SOCK=/tmp/...,
    *_KEYRING_PROVIDER=disabled): redacting paths and plain words would garble every log."""
    return not (value.startswith("/") or re.fullmatch(r"[a-z]+|[0-9]{1,11}", value))


def _aligned_b64(data: bytes, encode) -> list[str]:
    """The part of encode(prefix + data + suffix) fixed by `data`, for each of 3 alignments."""
    out = []
    for shift in range(3):
        encoded = encode(b"\0" * shift + data).decode().rstrip("=")
        # Characters mixing pad bits and data bits at either end depend on the neighbours.
        start = (shift * 8 + 5) // 6
        end = ((shift + len(data)) * 8) // 6
        piece = encoded[start:end]
        if len(piece) >= MIN_SECRET_LEN:
            out.append(piece)
    return out


def _aligned_b32(data: bytes) -> list[str]:
    out = []
    for shift in range(5):
        encoded = base64.b32encode(b"\0" * shift + data).decode().rstrip("=")
        start = (shift * 8 + 4) // 5
        end = ((shift + len(data)) * 8) // 5
        piece = encoded[start:end]
        if len(piece) >= MIN_SECRET_LEN:
            out.append(piece)
    return out


def encodings(value: str) -> list[str]:
    """Literal strings that reveal `value` (each searched case-sensitively)."""
    raw = value.encode()
    forms = {value, value[::-1], codecs.encode(value, "rot13"), value.upper(), value.lower()}
    forms.update(_aligned_b64(raw, base64.b64encode))
    forms.update(_aligned_b64(raw, base64.urlsafe_b64encode))
    forms.update(_aligned_b64(raw[::-1], base64.b64encode))
    forms.update(_aligned_b32(raw))
    forms.add("".join(f"%{b:02X}" for b in raw))
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LEN), key=len, reverse=True)


def _byte_patterns(value: str) -> list[re.Pattern]:
    """Hex and decimal byte sequences with any separators ('\\x', '0x', ',', ' ', ':', '%')."""
    raw = value.encode()
    sep = r"(?:\\x|0x|%|[\s,:;\-\[\]])*"
    hexes = sep.join(f"(?:{b:02x})" for b in raw)
    decimal = r"[\s,;]+".join(str(b) for b in raw)
    return [
        re.compile(hexes, re.IGNORECASE),
        re.compile(r"(?<!\d)" + decimal + r"(?!\d)"),
    ]


@dataclass
class SecretSet:
    """The run's secret values, with every encoding the redactor looks for."""

    values: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.values = sorted({v for v in self.values if len(v) >= MIN_SECRET_LEN}, key=len)[::-1]
        self._literals = sorted(
            {form for v in self.values for form in encodings(v)}, key=len, reverse=True
        )
        self._patterns = [p for v in self.values for p in _byte_patterns(v)]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, extra_names=()) -> SecretSet:
        taken = dict(_TAKEN) if environ is None else {}
        environ = {**taken, **(os.environ if environ is None else environ)}
        values = [v for k, v in environ.items() if is_secret_name(k) and looks_like_a_value(v)]
        return cls(values + [environ[n] for n in extra_names if n and n in environ])

    def add(self, values: Iterable[str]) -> SecretSet:
        return SecretSet([*self.values, *values])

    def __bool__(self) -> bool:
        return bool(self.values)

    def redact(self, text: str) -> tuple[str, int]:
        """`text` with every secret (in any known encoding) replaced by a marker; hit count."""
        if not text or not self.values:
            return text, 0
        hits = 0
        for form in self._literals:
            if form in text:
                hits += text.count(form)
                text = text.replace(form, MARK)
        for pattern in self._patterns:
            text, n = pattern.subn(MARK, text)
            hits += n
        return text, hits

    def scrub(self, text: str) -> str:
        return self.redact(text)[0]

    def redact_value(self, value):
        """`value` (str, or dicts/lists/tuples of them) redacted throughout; hit count."""
        if isinstance(value, str):
            return self.redact(value)
        hits = 0
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                out[key], n = self.redact_value(item)
                hits += n
            return out, hits
        if isinstance(value, (list, tuple)):
            items = []
            for item in value:
                clean, n = self.redact_value(item)
                items.append(clean)
                hits += n
            return items, hits
        return value, 0

    def found_in(self, data: bytes) -> bool:
        return self.redact(data.decode("utf-8", "replace"))[1] > 0


# Values taken out of os.environ, so a later run in the same process (a nightly loop) still
# finds its key and still redacts it.
_TAKEN: dict[str, str] = {}


def take_from_environ(name: str) -> str:
    """Read an environment variable once and remove it, so no later child can inherit it."""
    if name in os.environ:
        _TAKEN[name] = os.environ.pop(name)
        try:
            os.unsetenv(name)
        except OSError:
            pass
    return _TAKEN.get(name, "")


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace or /proc/<pid>/mem by same-uid peers."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
