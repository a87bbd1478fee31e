"""The gateway's Host policy (core): its own names only, against DNS rebinding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from command.settings import Settings
from consoles.hosts import HostPolicy, hostname


@pytest.mark.parametrize("host", ["127.0.0.1:8780", "localhost:8780", "[::1]:8780",
                                  "LOCALHOST", "10.0.0.5", "console.localhost:80",
                                  "ecc.city.example", "ECC.City.Example.:443"])
def test_its_own_names_are_allowed(host: str) -> None:
    """IP literals, localhost and the configured public names are the gateway's."""
    assert HostPolicy(["ecc.city.example"]).allows(host)


@pytest.mark.parametrize("host", [None, "", "evil.example", "evil.example:8780",
                                  "localhost.evil.example", "127.1", "[::1", "[nope]:1",
                                  "a b", "localhost:99999", "user@localhost", "ecc.city.example/x"])
def test_other_names_are_refused(host: str | None) -> None:
    """A rebinding name, a malformed value or no Host at all is refused."""
    assert not HostPolicy(["ecc.city.example"]).allows(host)


@given(st.text(max_size=300))
def test_any_text_is_a_clean_verdict(text: str) -> None:
    """Garbage in a Host header never raises: it is allowed or refused."""
    assert isinstance(HostPolicy(["x.example"]).allows(text), bool)
    name = hostname(text)
    assert name is None or name == name.lower()


def test_the_public_names_are_read_from_the_environment() -> None:
    """ECC_CONSOLE_HOSTS and ECC_CONSOLE_MAX_PER_PEER reach the settings."""
    s = Settings.from_env({"ECC_CONSOLE_HOSTS": "ecc.city.example, console.city.example",
                           "ECC_CONSOLE_MAX_PER_PEER": "200"})
    assert s.console_hosts == ("ecc.city.example", "console.city.example")
    assert s.console_max_per_peer == 200


def test_a_url_in_the_public_names_says_what_to_write() -> None:
    """A scheme or port in ECC_CONSOLE_HOSTS is refused with the form to use."""
    with pytest.raises(ValueError, match="names only"):
        Settings.from_env({"ECC_CONSOLE_HOSTS": "https://ecc.city.example:443"})
