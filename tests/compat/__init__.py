"""Compatibility suites against real servers (slow; ``make compat``)."""
