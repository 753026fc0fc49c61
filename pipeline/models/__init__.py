"""SQLModel mirror of the unified tables, and their load specs (``SPECS``, in dependency order:
parents before children across schemas too), which ``pipeline.tables`` reads on first use.
Add a schema's module here, its specs to ``SPECS``.
"""

from pipeline.models import catalog, images, production
from pipeline.tables import TableSpec

SPECS: tuple[TableSpec, ...] = (*catalog.SPECS, *images.SPECS, *production.SPECS)

__all__ = ["SPECS", "catalog", "images", "production"]
