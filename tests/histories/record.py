"""Record the golden histories again: ``python -m tests.histories.record``.

Runs tests/histories/test_record.py with ``ECC_RECORD_HISTORIES=1``: a short simulated
morning (and a rainstorm) against a real service, whose events and projections are
written over tests/histories/*.jsonl and *.expected.json. Only for a new history or a
new kind of event; never to make a failing replay pass (write an upcaster instead:
docs/store.md).
"""

from __future__ import annotations

import os
import sys

import pytest

if __name__ == "__main__":
    os.environ["ECC_RECORD_HISTORIES"] = "1"
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "tests/histories/test_record.py",
                          *sys.argv[1:]]))
