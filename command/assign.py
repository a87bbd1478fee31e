"""Core: assign several pending tasks at once, optimally.

When tasks compete for the same units (a pile-up, a storm), first-come greedy
choices can send the only ladder to the lesser incident. :func:`assign`
minimises the priority-weighted total ETA over all tasks together with the
Hungarian method (scipy's ``linear_sum_assignment``).

Only each task's ``n`` nearest able units are considered, ``n`` being the
number of tasks: an optimal assignment never needs a unit beyond a task's
n-th nearest (of n nearest, at most n-1 can be taken by the others, and the
free one is no farther), so the result is the optimum over all units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from command.recommend import Candidate, UnitIndex

# Rough seconds until a committed unit is free again, by status: for stacking a task
# on the unit that will clear soonest. Field data should tune these.
FREE_IN_S: dict[str, float] = {"returning": 0, "at_hospital": 600, "on_scene": 1200,
                               "transporting": 1200, "en_route": 1800, "dispatched": 1800}

# A P1 minute weighs eight P4 minutes.
PRIORITY_WEIGHT = {1: 8.0, 2: 4.0, 3: 2.0, 4: 1.0}


@dataclass(frozen=True)
class Need:
    """One pending task: what it needs, where, how urgent."""

    key: str  # "<incident id>/<task id>"
    capability: str
    lat: float
    lon: float
    priority: int
    exclude: tuple[str, ...] = ()  # units that declined or missed it


def _weight(need: Need) -> float:
    return PRIORITY_WEIGHT.get(need.priority, 1.0)


def assign(index: UnitIndex, needs: Sequence[Need]) -> dict[str, Candidate]:
    """The optimal unit for each task that can get one; a unit serves at most one task."""
    if not needs:
        return {}
    n = len(needs)
    shortlist = [index.recommend(need.capability, need.lat, need.lon, k=n, exclude=need.exclude)
                 for need in needs]
    columns = sorted({c.unit_id for cands in shortlist for c in cands})
    if not columns:
        return {}
    col = {unit_id: j for j, unit_id in enumerate(columns)}
    able = np.zeros((n, len(columns)), dtype=bool)
    cost = np.zeros((n, len(columns)))
    for i, (need, cands) in enumerate(zip(needs, shortlist, strict=True)):
        for c in cands:
            able[i, col[c.unit_id]] = True
            cost[i, col[c.unit_id]] = _weight(need) * c.eta_s
    # An impossible pair costs more than all possible pairs together: the optimum serves
    # as many tasks as can be served, then minimises the weighted ETA. (A huge constant
    # such as 1e18 would swamp the real costs in floating point.)
    cost[~able] = cost[able].sum() + 1.0
    # scipy.optimize takes a second to import: a restarted service pays it on its first
    # assignment, not before it can take signals again.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    out: dict[str, Candidate] = {}
    for i, j in zip(rows, cols, strict=True):
        if not able[i, j]:
            continue  # no able unit left for this task
        out[needs[i].key] = next(c for c in shortlist[i] if c.unit_id == columns[j])
    return out


def greedy(index: UnitIndex, needs: Sequence[Need]) -> dict[str, Candidate]:
    """First come, first served: each task in turn takes its quickest free unit.

    The baseline that :func:`assign` must never be worse than.
    """
    taken: set[str] = set()
    out: dict[str, Candidate] = {}
    for need in needs:
        for c in index.recommend(need.capability, need.lat, need.lon, k=len(needs) + len(taken),
                                 exclude=need.exclude):
            if c.unit_id not in taken:
                taken.add(c.unit_id)
                out[need.key] = c
                break
    return out


def weighted_total(needs: Sequence[Need], chosen: dict[str, Candidate]) -> float:
    """Priority-weighted total ETA of an assignment."""
    return sum(_weight(need) * chosen[need.key].eta_s for need in needs if need.key in chosen)


def stack(index: UnitIndex, need: Need,
          status: Mapping[str, str]) -> tuple[Candidate, float] | None:
    """With no able unit free: the committed unit that would reach the task soonest once
    it clears, and its estimated seconds until free; None if no able unit is coming back.

    ``eta_s`` of the candidate is the wait plus the drive. The task stays pending; when
    that unit (or any able one) clears, the next round offers it the task.
    """
    rows = index.able(need.capability, need.exclude, busy_too=True)
    if rows.size == 0:
        return None
    # Vectorised: a round stacks every task no free unit can take, thousands of them
    # in a city-wide emergency, and must leave the event loop to the signal intake.
    free_in = np.array([FREE_IN_S.get(status.get(index.ids[row], ""), np.nan)
                        for row in rows])  # NaN: out of service or off duty, not coming
    coming = ~np.isnan(free_in)
    if not coming.any():
        return None
    rows, free_in = rows[coming], free_in[coming]
    total = free_in + index.eta(rows, need.lat, need.lon)
    best = int(np.argmin(total))  # the first of equals, as the unit order gives them
    row = rows[best:best + 1]
    return (Candidate(unit_id=index.ids[int(row[0])], eta_s=float(total[best]),
                      distance_m=float(index.distance_m(row, need.lat, need.lon)[0])),
            float(free_in[best]))
