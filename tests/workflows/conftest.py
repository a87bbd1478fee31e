"""Core fixtures: the built-in catalogue, read once."""

from __future__ import annotations

import pytest

from command.settings import load_catalogue
from workflows.catalogue import Catalogue


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()
