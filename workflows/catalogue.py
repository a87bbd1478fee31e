"""Core: incident types, response plans and SLA rules, as data.

:func:`parse_catalogue` turns the TOML text of a catalogue (the default is
``workflows/data/catalogue.toml``) into a :class:`Catalogue`, or raises
:class:`CatalogueError` naming the line of the entry at fault, so an agency
can edit its plans without reading code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Token = str


class CatalogueError(ValueError):
    """A catalogue that cannot be used; ``line`` is 1-based, or None for the whole file."""

    def __init__(self, origin: str, line: int | None, message: str) -> None:
        where = f"{origin}:{line}" if line else origin
        super().__init__(f"{where}: {message}")
        self.origin = origin
        self.line = line


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskSpec(_Frozen):
    """Units of one capability from one agency: ``count`` tasks of one unit each."""

    agency: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    capability: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    count: int = Field(default=1, ge=1, le=20)


_NAME = r"^[a-z][a-z0-9_]{0,39}$"
# OASIS CAP 1.2 <category> and <responseType> values
CapCategory = Literal["Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                      "Transport", "Infra", "CBRNE", "Other"]
CapResponse = Literal["Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess",
                      "AllClear", "None"]


class Fusion(_Frozen):
    """How far and how long signals of a type are one incident (docs/fusion.md): within
    ``radius_m`` of the incident and ``window_s`` of its last signal, with a signal of a
    type of the same ``family`` (a medical call and a crash can be one event)."""

    radius_m: float = Field(gt=0, le=100_000)
    window_s: float = Field(gt=0, le=30 * 86_400)
    family: str = Field(pattern=_NAME)


class Keywords(_Frozen):
    """One hotline rule of a type: a call whose narrative (lower-cased) holds one of the
    ``keywords`` is of this type, at ``priority`` and ``confidence``. Rules of every type
    are tried in ``order`` (smallest first; specific before general): the first wins."""

    rule: str = Field(pattern=_NAME)
    order: int = Field(ge=0, le=1_000_000)
    priority: int = Field(ge=1, le=4)
    confidence: float = Field(gt=0, le=1)
    keywords: tuple[str, ...] = Field(min_length=1, max_length=500)

    @field_validator("keywords")
    @classmethod
    def _lower_case(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        for w in words:
            if not w.strip() or len(w) > 100:
                raise ValueError(f"keyword {w!r} must be 1 to 100 characters, not blank")
            if w != w.lower():
                raise ValueError(f"keyword {w!r} must be lower case (the narrative is "
                                 f"lower-cased before matching): write {w.lower()!r}")
        return words


class CapMapping(_Frozen):
    """The type in CAP 1.2. Out: what a public warning of the type says, its
    ``<category>`` and the ``<responseType>`` people inside the area act on (a Cancel is
    always AllClear). In (docs/adapters.md, "Classification"): a received alert is of
    this type by, strongest first, one of its ``<eventCode>`` values (``codes``, by
    scheme, the code's ``<valueName>``: ``{ SAME = ["FFW", "TSW"] }``), a word of its
    ``<event>`` text (``events``, lower case; the longest word found in any type wins),
    or its ``<category>`` (``categories``), the weakest evidence."""

    category: CapCategory = "Other"
    response: CapResponse = "Monitor"
    events: tuple[str, ...] = Field(default=(), max_length=500)
    codes: dict[str, tuple[str, ...]] = Field(default_factory=dict, max_length=20)
    categories: tuple[CapCategory, ...] = ()

    @field_validator("events")
    @classmethod
    def _events_lower_case(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        for w in words:
            if not w.strip() or len(w) > 100 or w != w.lower():
                raise ValueError(f"event word {w!r} must be 1 to 100 lower-case characters "
                                 "(the event text is lower-cased before matching)")
        return words

    @field_validator("codes")
    @classmethod
    def _codes_named(cls, codes: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for scheme, values in codes.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]{0,39}", scheme):
                raise ValueError(f"eventCode scheme {scheme!r} must be a <valueName> such as "
                                 "SAME")
            for v in values:
                if not v.strip() or len(v) > 100:
                    raise ValueError(f"eventCode {scheme} value {v!r} must be 1 to 100 "
                                     "characters")
        return codes


class EidoMapping(_Frozen):
    """The type in NENA EIDO: ``common`` is the incidentTypeCommonRegistryText ECC sends;
    ``words`` are lower-case words that, found in a received document's common type
    (and no hotline rule matching its words), make it this type."""

    common: str = Field(default="Other", min_length=1, max_length=100)
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class HotlineRule:
    """A hotline rule with the type it files a call under (derived, in order)."""

    name: str
    category: str
    priority: int
    confidence: float
    keywords: tuple[str, ...]


class IncidentType(_Frozen):
    """One incident type: the one place all of ECC learns about it (docs/workflows.md)."""

    id: str = Field(pattern=_NAME)
    label: str = Field(min_length=1, max_length=100)
    default_priority: int = Field(ge=1, le=4)
    # the label in other languages, by language tag: { zh = "火灾" }
    labels: dict[str, str] = Field(default_factory=dict)
    # the map's three-character code; by default the id's first three letters, upper-cased
    code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3}$")
    # required: a missing one is refused naming the line, never a silent default
    fusion: Fusion | None = None
    hotline: tuple[Keywords, ...] = ()
    cap: CapMapping = Field(default_factory=CapMapping)
    eido: EidoMapping = Field(default_factory=EidoMapping)

    @property
    def map_code(self) -> str:
        return self.code or self.id[:3].upper()


class Plan(_Frozen):
    type: str
    priority: int = Field(ge=1, le=4)
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)


class Threshold(_Frozen):
    """When ECC verifies an incident without a person: one signal this sure (or the
    evidence combined this sure), or this many different kinds of source."""

    auto_confidence: float = Field(default=0.9, gt=0, le=1)
    auto_sources: int = Field(default=2, ge=2, le=10)


class TypeThreshold(_Frozen):
    """A type's own threshold; what it leaves out comes from ``[verification]``."""

    auto_confidence: float | None = Field(default=None, gt=0, le=1)
    auto_sources: int | None = Field(default=None, ge=2, le=10)


class Verification(Threshold):
    # per type, where it differs (a medical call is acted on as it comes; a calibrated
    # water gauge past its level is believed)
    types: dict[str, TypeThreshold] = Field(default_factory=dict)

    def for_type(self, category: str) -> Threshold:
        own = self.types.get(category)
        if own is None:
            return self
        return Threshold(
            auto_confidence=own.auto_confidence if own.auto_confidence is not None
            else self.auto_confidence,
            auto_sources=own.auto_sources if own.auto_sources is not None
            else self.auto_sources)


class Retractions(_Frozen):
    """How much one source may take back on its own. A retraction (a CAP Cancel, an
    adapter withdrawing its signals) that would take back more signals than
    ``confirm_above`` waits for a supervisor's confirmation on the console instead."""

    confirm_above: int = Field(default=5, ge=0, le=10_000)


class Corroboration(_Frozen):
    """Evidence piling up raises the priority by one (never above 1), once per threshold:
    when the incident reaches this many kinds of source, and when it reaches this many
    signals. 0 turns a rule off."""

    raise_at_sources: int = Field(default=3, ge=0, le=10)
    raise_at_signals: int = Field(default=5, ge=0, le=1000)


class Sla(_Frozen):
    verify_s: float = Field(default=60, gt=0)
    task_pending_s: float = Field(default=30, gt=0)
    ack_s: float = Field(default=30, gt=0)
    on_scene_s: dict[str, float] = Field(default_factory=lambda: {"default": 600.0})

    def on_scene_for(self, category: str) -> float:
        return self.on_scene_s.get(category, self.on_scene_s.get("default", 600.0))


class Catalogue(_Frozen):
    agencies: tuple[str, ...]
    types: dict[str, IncidentType]
    plans: dict[str, tuple[Plan, ...]]  # by type, sorted by priority
    verification: Verification
    sla: Sla
    corroboration: Corroboration = Field(default_factory=Corroboration)
    retractions: Retractions = Field(default_factory=Retractions)
    # type -> the lowest priority (largest number) dispatched without a person's confirmation
    auto_dispatch: dict[str, int] = Field(default_factory=dict)

    def dispatches_itself(self, category: str, priority: int) -> bool:
        """Whether ECC offers this incident's tasks to units on its own."""
        return priority <= self.auto_dispatch.get(category, 0)

    def plan_for(self, category: str, priority: int) -> Plan:
        """The plan for a type at a priority: the first whose priority is >= it.

        Unknown types use ``other``; validation guarantees a priority-4 plan.
        """
        plans = self.plans.get(category) or self.plans["other"]
        for plan in plans:
            if plan.priority >= priority:
                return plan
        return plans[-1]

    def default_priority(self, category: str) -> int:
        known = self.types.get(category) or self.types["other"]
        return known.default_priority

    def type_of(self, category: str) -> IncidentType:
        """The type of a category; ``other`` for one the catalogue does not know."""
        return self.types.get(category) or self.types["other"]

    @cached_property
    def fusion(self) -> dict[str, Fusion]:
        """Each type's fusion settings (validation guarantees every type has them)."""
        return {t.id: t.fusion for t in self.types.values() if t.fusion is not None}

    @cached_property
    def hotline(self) -> tuple[HotlineRule, ...]:
        """Every type's hotline rules in the order they are tried."""
        rules = sorted(((k.order, i, t.id, k) for i, (t, k) in enumerate(
            (t, k) for t in self.types.values() for k in t.hotline)))
        return tuple(HotlineRule(k.rule, type_id, k.priority, k.confidence, k.keywords)
                     for _, _, type_id, k in rules)

    @cached_property
    def cap(self) -> dict[str, CapMapping]:
        """Each type's CAP mapping."""
        return {t.id: t.cap for t in self.types.values()}


def _lines_of(text: str, header: str) -> list[int]:
    """1-based line numbers of each ``[[header]]`` in order."""
    pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(parts)


def _check_types(origin: str, types: dict[str, IncidentType], lines: list[int]) -> None:
    """What one type's entry alone cannot check: fusion present, rules unique."""
    orders: dict[int, str] = {}
    names: dict[str, str] = {}
    for i, item in enumerate(types.values()):
        line = lines[i] if i < len(lines) else None
        if item.fusion is None:
            raise CatalogueError(origin, line, f"type {item.id!r} has no fusion settings: add "
                                 "fusion = { radius_m = ..., window_s = ..., family = \"...\" } "
                                 "(docs/fusion.md)")
        for k in item.hotline:
            if k.order in orders:
                raise CatalogueError(origin, line, f"type {item.id!r}: hotline rule {k.rule!r} "
                                     f"has order {k.order}, as {orders[k.order]!r} has; give "
                                     "each rule its own order")
            if k.rule in names:
                raise CatalogueError(origin, line, f"type {item.id!r}: hotline rule name "
                                     f"{k.rule!r} is used by type {names[k.rule]!r} too")
            orders[k.order], names[k.rule] = k.rule, item.id
    _check_cap(origin, types, lines)


def _check_cap(origin: str, types: dict[str, IncidentType], lines: list[int]) -> None:
    """Each CAP eventCode, event word and category means at most one type."""
    owners: dict[tuple[str, str], str] = {}
    for i, item in enumerate(types.values()):
        line = lines[i] if i < len(lines) else None
        keys = [("eventCode", f"{scheme.casefold()} {v.casefold()}")
                for scheme, values in item.cap.codes.items() for v in values]
        keys += [("event word", w) for w in item.cap.events]
        keys += [("category", c) for c in item.cap.categories]
        for key in keys:
            if owners.get(key, item.id) != item.id:
                raise CatalogueError(origin, line, f"type {item.id!r}: CAP {key[0]} "
                                     f"{key[1]!r} already means type {owners[key]!r}; each "
                                     "means one type")
            owners[key] = item.id


def parse_catalogue(text: str, origin: str = "catalogue.toml") -> Catalogue:
    """Parse and validate a catalogue. Raises :class:`CatalogueError`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:  # Python < 3.14 puts it only in the message
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise CatalogueError(origin, line, f"not valid TOML: {exc}") from exc

    agencies = doc.get("agencies")
    if not isinstance(agencies, list) or not agencies:
        raise CatalogueError(origin, None, "`agencies` must list at least one agency")

    type_lines = _lines_of(text, "type")
    types: dict[str, IncidentType] = {}
    for i, raw in enumerate(doc.get("type", [])):
        line = type_lines[i] if i < len(type_lines) else None
        try:
            item = IncidentType.model_validate(raw)
        except ValidationError as exc:
            raise CatalogueError(origin, line, f"[[type]]: {_describe(exc)}") from exc
        if item.id in types:
            raise CatalogueError(origin, line, f"type {item.id!r} is defined twice")
        types[item.id] = item
    if "other" not in types:
        raise CatalogueError(origin, None, "a type with id 'other' is required (the fallback)")

    plan_lines = _lines_of(text, "plan")
    plans: dict[str, list[Plan]] = {}
    for i, raw in enumerate(doc.get("plan", [])):
        line = plan_lines[i] if i < len(plan_lines) else None
        try:
            plan = Plan.model_validate(raw)
        except ValidationError as exc:
            raise CatalogueError(origin, line, f"[[plan]]: {_describe(exc)}") from exc
        if plan.type not in types:
            raise CatalogueError(origin, line, f"plan for unknown type {plan.type!r}; "
                                               f"known: {', '.join(sorted(types))}")
        for spec in plan.tasks:
            if spec.agency not in agencies:
                raise CatalogueError(origin, line, f"unknown agency {spec.agency!r}; "
                                                   f"known: {', '.join(agencies)}")
        same = plans.setdefault(plan.type, [])
        if any(p.priority == plan.priority for p in same):
            raise CatalogueError(origin, line, f"two plans for {plan.type!r} at priority "
                                               f"{plan.priority}")
        same.append(plan)
    for type_id in types:
        got = plans.get(type_id)
        if not got or max(p.priority for p in got) != 4:
            raise CatalogueError(origin, None, f"type {type_id!r} needs a plan for priority 4 "
                                               "(the catch-all)")
    _check_types(origin, types, type_lines)

    try:
        verification = Verification.model_validate(doc.get("verification", {}))
        sla = Sla.model_validate(doc.get("sla", {}))
        corroboration = Corroboration.model_validate(doc.get("corroboration", {}))
        retractions = Retractions.model_validate(doc.get("retractions", {}))
    except ValidationError as exc:
        raise CatalogueError(origin, None, _describe(exc)) from exc
    for type_id in verification.types:
        if type_id not in types:
            raise CatalogueError(origin, None, f"[verification.types.{type_id}]: unknown type")
    auto = doc.get("dispatch", {}).get("auto", {})
    for type_id, priority in auto.items():
        if type_id not in types or not isinstance(priority, int) or not 0 <= priority <= 4:
            raise CatalogueError(origin, None, f"[dispatch] auto.{type_id} must name a known "
                                               "type and a priority 0-4")
    extra: dict[str, Any] = {k: v for k, v in doc.items()
                             if k not in {"agencies", "type", "plan", "verification", "sla",
                                          "dispatch", "corroboration", "retractions"}}
    if extra:
        raise CatalogueError(origin, None, f"unknown sections: {', '.join(sorted(extra))}")
    return Catalogue(
        agencies=tuple(agencies),
        types=types,
        plans={k: tuple(sorted(v, key=lambda p: p.priority)) for k, v in plans.items()},
        verification=verification,
        sla=sla,
        corroboration=corroboration,
        retractions=retractions,
        auto_dispatch=dict(auto),
    )
