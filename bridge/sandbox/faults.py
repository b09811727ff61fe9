"""Injected failures (error answers, slowness, cut bodies, dropped connections), so tests can
show what a client does when the vendor misbehaves."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = ["CORE_FAULT_KINDS", "FaultInjector", "FaultKind", "FaultRule"]

FaultKind = Literal["status", "slow", "malformed", "drop"]
CORE_FAULT_KINDS: frozenset[str] = frozenset({"status", "slow", "malformed", "drop"})


@dataclass(slots=True)
class FaultRule:
    """One fault: what it does (`kind`), where (`route`/`path`/`method`), how often.

    * `route`: a route name such as ``"DELETE item"`` (exact match);
      `path`: a regex searched in the request path; neither: every vendor request.
    * `kind`: ``status`` (answer `status` with optional `retry_after` and `body`),
      ``slow`` (wait `delay` real seconds, then answer normally), ``malformed`` (answer 200
      with the real body cut short: the vendor acted, the client cannot read the answer),
      ``drop`` (close the connection without an answer). Subclasses may define more kinds
      and look them up with `FaultInjector.take`.
    * `when`: ``before`` the handler runs (the vendor did not act) or ``after`` it ran (it
      acted, then the answer was lost or replaced). Defaults: ``after`` for malformed,
      ``before`` otherwise.
    * trigger: `count` fires on the next N matches; `probability` fires at random from the
      injector's seeded RNG (reproducible); both: at most `count` random firings; neither:
      every match.
    """

    kind: str
    route: str | None = None
    path: str | None = None
    method: str | None = None
    status: int = 503
    retry_after: float | None = None
    body: Any = None
    delay: float = 0.0
    probability: float | None = None
    count: int | None = None
    when: Literal["before", "after"] | None = None
    fired: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper() if self.method else None
        self._path_re = re.compile(self.path) if self.path else None
        if self.kind == "malformed":
            self.when = "after"  # a malformed answer needs the real one to cut short
        elif self.when is None:
            self.when = "before"
        if self.when not in ("before", "after"):
            raise ValueError(f"fault rule: when must be before or after, not {self.when!r}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault rule: probability must be within 0..1")
        if self.count is not None and self.count < 0:
            raise ValueError("fault rule: count must be >= 0")

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "kind",
        "route",
        "path",
        "method",
        "status",
        "retry_after",
        "body",
        "delay",
        "probability",
        "count",
        "when",
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build from admin JSON; unknown keys are an error (typos must not pass silently)."""
        unknown = set(data) - set(cls._FIELDS)
        if unknown:
            raise ValueError(f"fault rule: unknown keys {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("fault rule: 'kind' is required")
        return cls(**{k: data[k] for k in cls._FIELDS if k in data})

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._FIELDS}
        out["fired"] = self.fired
        return out

    def matches(self, method: str, path: str, route: str | None) -> bool:
        if self.method and self.method != method.upper():
            return False
        if self.route is not None and self.route != route:
            return False
        return not (self._path_re is not None and not self._path_re.search(path))


class FaultInjector:
    """An ordered list of fault rules; the first rule that matches and fires wins. Thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        made = rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule)
        with self._lock:
            self._rules.append(made)
        return made

    def set_rules(self, rules: Iterable[FaultRule | Mapping[str, Any]]) -> None:
        made = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules = made

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Forget every rule and re-seed the RNG (same seed: same sequence of firings)."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(self._seed)

    def take(
        self,
        method: str,
        path: str,
        route: str | None,
        *,
        kinds: Iterable[str] = CORE_FAULT_KINDS,
        when: str | None = None,
    ) -> FaultRule | None:
        """The rule that fires for this request, if any (consuming one of its `count`)."""
        wanted = frozenset(kinds)
        with self._lock:
            for rule in self._rules:
                if rule.kind not in wanted or (when is not None and rule.when != when):
                    continue
                if rule.count is not None and rule.count <= 0:
                    continue
                if not rule.matches(method, path, route):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                return rule
        return None
