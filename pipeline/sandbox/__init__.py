"""Faithful local simulators of the five source APIs (``pipeline sandbox``, ``make demo``, tests).

``core`` is the framework (clock, faults, counters, context), ``limits`` the per-client rate limits,
``tokens`` issued credentials, ``control`` the ``/_sandbox`` HTTP API, ``world`` the shared
generated catalogue, one module per service, and ``server`` starts them all.
"""
