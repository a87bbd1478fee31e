"""Adapters: the borders with the outside world, one module per source."""
