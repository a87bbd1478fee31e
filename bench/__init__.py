"""Benchmarks that print figures and write JSON (`make bench`; see docs/bench.md).

``run`` runs them all and writes ``results/latest.json``. The benchmarks, each
runnable alone as ``python -m bench.<name>``: ``workflow``, ``dispatch`` (pure),
``skeleton`` (ingest and latency), ``roundtrip``, ``fusion``, ``fanout`` (1,000
consoles; its clients are in ``lean``), ``memory`` and ``recovery``. What they
share: ``metric`` (the :class:`~bench.metric.Metric` record and reporting) and
``servers`` (embedded servers, a database, `ecc serve` as a child process).
"""
