"""The simulated city: its data (stations, units) and, later, the simulator itself."""
