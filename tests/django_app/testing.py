"""Django set up once in the test process on this project, with its users in a SQLite
file the servers started by the tests share."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

USERS = {"ada": 1, "grace": 2}  # as fixtures/node/django-app.js has them
_db: Path | None = None


def setup_django() -> Path:
    """Set Django up (once) and return the users' database file."""
    global _db
    if _db is not None:
        return _db
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    _db = Path(tempfile.mkdtemp(prefix="ts-django-")) / "users.sqlite3"
    os.environ["TS_DJANGO_DB"] = str(_db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django_app.settings"
    django.setup()
    call_command("migrate", verbosity=0)
    model = get_user_model()
    for name, pk in USERS.items():
        model.objects.create_user(username=name, password="pw", id=pk)
    return _db
