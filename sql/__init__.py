"""The numbered migrations (``NNN_name.sql``) and the example query pack (``queries/``).

Installed as the package ``pipeline.sql`` (see ``pyproject.toml``); read through
``importlib.resources.files("pipeline.sql")`` so a wheel carries them.
"""
