"""The simulated city: its data (stations, units, devices, cameras, hospitals) and the
simulator that plays its outside world, its field units and its desk (``ecc demo``)."""
