"""Adapters: the borders with the outside world, one module per source.

None yet: signals arrive on NATS (``ecc signal send`` publishes one). The video,
sensor, hotline and CAP adapters come with their issue.
"""

__all__: list[str] = []
