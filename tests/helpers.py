"""Test helpers: polling with a deadline (never a bare sleep) and signal factories."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from command.city import Station, UnitSpec
from command.model import Signal
from command.subjects import Namespace
from workflows.geo import Location


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


_spot = itertools.count()


def far_apart() -> Location:
    """A fresh point, 5.5 km from every other this session has handed out, so signals
    that are meant to be separate events never fuse."""
    n = next(_spot)
    return Location(lat=34.30 + (n % 40) * 0.05, lon=113.10 + (n // 40) * 0.05)


def make_signal(**overrides: Any) -> Signal:
    """A valid hotline signal at a point of its own (see :func:`far_apart`)."""
    fields: dict[str, Any] = {
        "signal_id": f"sig-{uuid.uuid4().hex[:16]}",
        "source": "hotline",
        "category": "fire",
        "location": far_apart(),
        "observed_at": datetime(2026, 7, 20, 8, 30, tzinfo=UTC),
        "summary": "smoke from a shop",
        "confidence": 0.7,
    }
    fields.update(overrides)
    return Signal(**fields)


async def publish_signal(js: Any, ns: Namespace, signal: Signal, msg_id: str | None = None) -> Any:
    """Publish as an adapter would: JSON on the signal subject, with a message id."""
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    return await js.publish(ns.signal(signal.source, signal.category),
                            signal.model_dump_json().encode(), headers=headers)


@contextlib.asynccontextmanager
async def running_gateway(store: Any, nc: Any, ns: Namespace, **options: Any) -> AsyncIterator[Any]:
    """A console gateway of its own (no service) on a free port, for the block's duration."""
    import pytest

    from consoles.gateway import Gateway

    gateway = Gateway(store, nc, ns, **options)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.ready.wait(), 10)
        yield gateway
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data (the real data sets beside the repo, in CI too).

    ``ECC_SHARED_DATA`` points elsewhere. A missing data set fails the test with what
    to do, rather than passing it by skipping.
    """
    import os

    import pytest

    base = Path(os.environ.get("ECC_SHARED_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: check out shared/ beside the repository, or set "
                    "ECC_SHARED_DATA to its data folder")
    return path


def station(station_id: str, agency: str, lat: float, lon: float, *units: tuple[str, str],
            district: str = "a") -> Station:
    """A test city's station with its units as (id, kind) pairs: typed, so a change to the
    city model fails here rather than turning a TOML string into something else."""
    return Station(id=station_id, agency=agency, district=district, lat=lat, lon=lon,
                   units=tuple(UnitSpec(id=unit_id, kind=kind) for unit_id, kind in units))
