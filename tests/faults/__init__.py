"""Seeded fault-and-kill trials of bridge against both simulators (see `harness`)."""
