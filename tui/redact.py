"""Redaction of secrets from a report document before it leaves the node.

What is removed, in every format:

- container environment values (``env`` maps, CRI's ``config.envs`` ``{key, value}`` lists, the runtime
  spec's ``process.env`` ``"KEY=VALUE"`` strings, ``{"name", "value"}`` pairs in embedded pod JSON);
- values of keys named like a password, secret, token, credential, API key or registry ``auth``;
- in any text: ``KEY=value`` / ``key: value`` for such names, ``--password value`` flags, Bearer/Basic
  credentials, passwords in URLs, JWTs, private keys and well-known token formats;
- then every value removed above wherever else it appears (a password echoed in a command line).

The document keeps its shape: a value becomes ``[redacted]`` and the key stays, so a reader sees that
DB_PASSWORD was set without seeing it. :func:`redact_document` returns the counts to show in the report.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

MARK = "[redacted]"
#: Shortest value that is also scrubbed wherever else it appears (shorter ones would hit ordinary text).
MIN_ECHO = 4

T = TypeVar("T")

SENSITIVE = r"(?:passw(?:or)?d|passwd|pwd|secret|token|credential|api[_-]?key|private[_-]?key|access[_-]?key)"
_SENSITIVE_KEY = re.compile(rf"(?i){SENSITIVE}|^(?:auth|authorization|\.dockerconfigjson)$|[_.-]auth$")
_ENV_KEYS = frozenset({"env", "envs", "environment"})

# Patterns over free text; each keeps its group 1 (and 3 when present) and replaces group 2.
_TEXT_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "private key",
        re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)([\s\S]*?)(-----END [A-Z ]*PRIVATE KEY-----)"),
    ),
    ("env value", re.compile(r'("name"\s*:\s*"[^"]*"\s*,\s*"value"\s*:\s*")((?:[^"\\]|\\.)+)(")')),
    (
        "registry credential",
        re.compile(r'(?i)("(?:auth|identitytoken|registrytoken|password)"\s*:\s*")((?:[^"\\]|\\.)+)(")'),
    ),
    ("token", re.compile(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{8,})()")),
    ("password", re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)")),
    ("password", re.compile(rf"(?i)(--?[\w-]*{SENSITIVE}[\w-]*(?:=|\s+))([^\s\"',;&|]+)()")),
    ("password", re.compile(rf"(?i)(\b[\w.-]*{SENSITIVE}[\w.-]*[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&|}}]+)()")),
    ("token", re.compile(r"()(\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)()")),
    (
        "token",
        re.compile(
            r"()(\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}|xox[abprs]-[\w-]{10,}"
            r"|AKIA[0-9A-Z]{16}|AIza[\w-]{35})\b)()"
        ),
    ),
]


#: What every text rule's match holds (a quote, ``://``, a sensitive word, a token's prefix...), matched
#: case-insensitively: a text without any of these can match no rule, so it is passed over in one search.
_ANY_RULE = re.compile(
    rf'(?i)"|://|bearer|basic|private key|eyJ|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|AKIA|AIza|{SENSITIVE}'
)


@dataclass
class Redactor:
    """Walks a JSON-like document, replacing secrets; remembers what it removed to scrub echoes of it."""

    counts: Counter[str] = field(default_factory=Counter)
    removed: set[str] = field(default_factory=set)
    #: Whether each key seen so far is named like a secret (a report repeats a few keys thousands of times).
    _sensitive: dict[str, bool] = field(default_factory=dict, init=False, repr=False)
    #: Texts seen so far that no rule can match (a report repeats most of its strings: paths, ids, titles).
    _plain: set[str] = field(default_factory=set, init=False, repr=False)

    def _take(self, value: str, kind: str) -> str:
        if value and value != MARK:
            self.counts[kind] += 1
            if len(value) >= MIN_ECHO:
                self.removed.add(value)
        return MARK

    def text(self, value: str) -> str:
        if value in self._plain:
            return value
        if not _ANY_RULE.search(value):
            self._plain.add(value)
            return value
        for kind, pattern in _TEXT_RULES:
            value = pattern.sub(partial(self._replace, kind), value)
        return value

    def _replace(self, kind: str, match: re.Match[str]) -> str:
        return match.group(1) + self._take(match.group(2), kind) + match.group(3)

    def env_list(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, str) and "=" in item:
                key, val = item.split("=", 1)
                out.append(f"{key}={self._take(val, 'container env value')}" if val else item)
            elif isinstance(item, dict) and ("value" in item and ("key" in item or "name" in item)):
                copy = dict(item)
                if isinstance(copy["value"], str) and copy["value"]:
                    copy["value"] = self._take(copy["value"], "container env value")
                out.append(self.walk(copy))
            else:
                out.append(self.walk(item))
        return out

    def walk(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            if key.lower() in _ENV_KEYS:
                return {
                    k: self._take(v, "container env value") if isinstance(v, str) and v else self.walk(v, k)
                    for k, v in value.items()
                }
            return {k: self._entry(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            if key.lower() in _ENV_KEYS:
                return self.env_list(value)
            return [self.walk(v) for v in value]
        if isinstance(value, tuple):
            return self.walk(list(value), key)
        if isinstance(value, str):
            return self.text(value)
        return value

    def _entry(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            sensitive = self._sensitive.get(key)
            if sensitive is None:
                sensitive = self._sensitive[key] = bool(_SENSITIVE_KEY.search(key))
            if value and sensitive:
                kind = "registry credential" if "auth" in key.lower() else "password or token"
                return self._take(value, kind)
            return self.text(value)
        return self.walk(value, key)

    def scrub_echoes(self, value: Any) -> Any:
        """Replace every removed value wherever it still appears (longest first)."""
        if not self.removed:
            return value
        secrets = sorted(self.removed, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(s) for s in secrets))

        def scrub(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: scrub(x) for k, x in v.items()}
            if isinstance(v, list):
                return [scrub(x) for x in v]
            if isinstance(v, str):
                return pattern.sub(lambda _m: self._echo(), v)
            return v

        return scrub(value)

    def _echo(self) -> str:
        self.counts["repeat of a redacted value"] += 1
        return MARK


def redact_document(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A redacted copy of ``doc`` and the summary of what was removed (``enabled``, ``values``, ``kinds``)."""
    redactor = Redactor()
    cleaned = redactor.scrub_echoes(redactor.walk(doc))
    summary = {
        "enabled": True,
        "values": sum(redactor.counts.values()),
        "kinds": dict(sorted(redactor.counts.items())),
        "marker": MARK,
        "rules": "container env values; values of keys named like password, secret, token, credential or auth; "
        "bearer/basic credentials, URL passwords, JWTs, private keys and known token formats in any text",
    }
    return cleaned, summary


def not_redacted() -> dict[str, Any]:
    return {
        "enabled": False,
        "values": 0,
        "kinds": {},
        "marker": MARK,
        "rules": "none: written with --no-redact; this report may contain secrets",
    }


def redacted(value: T) -> T:
    """A copy of ``value`` (JSON-like data) with secrets replaced, by the report's rules."""
    redactor = Redactor()
    return cast(T, redactor.scrub_echoes(redactor.walk(value)))
