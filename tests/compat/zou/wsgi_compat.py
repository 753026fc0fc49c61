"""Zou's Flask app for gunicorn, with the access-token lifetime from ``COMPAT_JWT_ACCESS_SECONDS``.

zou 1.0.97 hard-codes ``JWT_ACCESS_TOKEN_EXPIRES`` (7 days) in ``zou/app/config.py``; flask-jwt-extended
reads it from ``app.config`` each time it signs a token, so setting it here shortens every access
token the server issues (login and ``/auth/refresh-token`` alike). Runs in the zou venv, not the
pipeline's.
"""

import datetime
import os

from zou.app import app

_seconds = os.environ.get("COMPAT_JWT_ACCESS_SECONDS")
if _seconds:
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = datetime.timedelta(seconds=int(_seconds))

__all__ = ["app"]
