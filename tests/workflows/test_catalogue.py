"""The catalogue: every type has plans, and a bad file is refused naming its line."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from tests.toml_text import dumps
from workflows.catalogue import Catalogue, CatalogueError, parse_catalogue

TYPES = {"fire", "medical", "traffic", "crime", "flood", "gas_leak", "structural",
         "utility_outage", "hazmat", "maintenance", "other"}
TEXT = resources.files("workflows").joinpath("data/catalogue.toml").read_text()


def test_the_built_in_catalogue_covers_every_type(catalogue: Catalogue) -> None:
    """All eleven incident types have a plan at every priority 1 to 4."""
    assert set(catalogue.types) == TYPES
    for type_id in TYPES:
        for priority in (1, 2, 3, 4):
            assert catalogue.plan_for(type_id, priority).tasks


@pytest.mark.parametrize(("type_id", "agencies"), [
    ("gas_leak", {"utility", "fire"}),
    ("flood", {"utility", "fire", "police"}),
    ("traffic", {"police", "health"}),
    ("fire", {"fire", "health", "police"}),
])
def test_plans_are_multi_agency(catalogue: Catalogue, type_id: str, agencies: set[str]) -> None:
    """A serious incident of each kind needs the agencies a command centre would send."""
    plan = catalogue.plan_for(type_id, 2)
    assert agencies <= {spec.agency for spec in plan.tasks}


def test_unknown_types_fall_back_to_other(catalogue: Catalogue) -> None:
    """A category nobody planned for still gets a plan and a priority."""
    assert catalogue.plan_for("noise", 3) == catalogue.plan_for("other", 3)
    assert catalogue.default_priority("noise") == catalogue.types["other"].default_priority


def test_an_unknown_agency_names_the_line_of_its_plan() -> None:
    """A typo in a plan's agency is refused with the line of that [[plan]]."""
    doc = tomllib.loads(TEXT)
    n, plan = next((n, plan) for n, plan in enumerate(doc["plan"])
                   if plan["tasks"][0]["agency"] == "utility")
    plan["tasks"][0]["agency"] = "utlity"
    bad = dumps(doc)
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(bad, "plans.toml")
    plan_line = [i for i, line in enumerate(bad.splitlines(), 1) if line == "[[plan]]"][n]
    assert info.value.line == plan_line
    assert f"plans.toml:{plan_line}" in str(info.value) and "utlity" in str(info.value)


def test_bad_toml_names_its_line() -> None:
    """A syntax error is refused with its line number."""
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(TEXT + "\n[[plan]\n", "c.toml")
    assert info.value.line == len((TEXT + "\n[[plan]\n").splitlines())


def test_a_type_without_a_catch_all_plan_is_refused() -> None:
    """Every type needs a priority-4 plan, so no incident is ever without one."""
    bad = TEXT + '\n[[type]]\nid = "drone"\nlabel = "Drone"\ndefault_priority = 3\n'
    with pytest.raises(CatalogueError, match="'drone' needs a plan for priority 4"):
        parse_catalogue(bad)


def test_two_plans_for_one_type_and_priority_are_refused() -> None:
    """Ambiguous plans are refused at the second one's line."""
    extra = '\n[[plan]]\ntype = "fire"\npriority = 4\ntasks = [{ agency = "fire", ' \
            'capability = "engine" }]\n'
    with pytest.raises(CatalogueError, match="two plans") as info:
        parse_catalogue(TEXT + extra)
    assert info.value.line == len((TEXT + extra).splitlines()) - 3


def test_a_types_verification_takes_what_it_leaves_out_from_the_default() -> None:
    """[verification.types.fire] sets only auto_sources: its confidence bar is the one in
    [verification], not a built-in value; a type with no table takes [verification]."""
    doc = tomllib.loads(TEXT)
    assert doc["verification"]["auto_confidence"] != 0.95
    assert "fire" not in doc["verification"].get("types", {})
    doc["verification"]["auto_confidence"] = 0.95
    doc["verification"].setdefault("types", {})["fire"] = {"auto_sources": 3}
    cat = parse_catalogue(dumps(doc))
    fire, crime = cat.verification.for_type("fire"), cat.verification.for_type("crime")
    assert (fire.auto_confidence, fire.auto_sources) == (0.95, 3)
    assert (crime.auto_confidence, crime.auto_sources) == (0.95, 2)
    assert cat.verification.for_type("medical").auto_confidence == 0.7
    with pytest.raises(CatalogueError, match=r"verification\.types\.drone"):
        parse_catalogue(TEXT + "\n[verification.types.drone]\nauto_sources = 3\n")
