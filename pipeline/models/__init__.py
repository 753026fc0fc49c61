"""SQLModel mirror of the unified tables, and their load specs registered in ``pipeline.tables``.

Importing this package registers every unified table; add a schema's module to the import list.
The order of imports is the order of registration (parents before children across schemas too).
"""

from pipeline.models import catalog, images, production

__all__ = ["catalog", "images", "production"]
