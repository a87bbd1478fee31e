"""The wiring: the composition root (:mod:`ecc.app`) and the ``ecc`` command line
(:mod:`ecc.cli`).

The top of the house. It alone imports ``command``, ``adapters``, ``consoles`` and
``sim`` together, and builds the running system from settings; no other package
imports it (tests/test_layout.py holds both promises).
"""
