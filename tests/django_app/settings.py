"""Settings of the test project: express-session's options of the Express app it shares with."""

import json
import os

SECRET_KEY = "django-test-secret, not the session secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.django_app.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "token_session.web.django.ExpressSessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "token_session.web.django.PassportAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
# the CSRF secret lives in the shared session
CSRF_USE_SESSIONS = True
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TS_DJANGO_DB", ":memory:"),
    }
}
TEMPLATES: list[dict[str, object]] = []
TOKEN_SESSION = {
    "store": os.environ.get("TS_DJANGO_STORE", "memory://"),
    "store_options": json.loads(os.environ.get("TS_DJANGO_STORE_OPTIONS", "{}")),
    # tests/web_apps.py's EXPRESS_OPTIONS, in snake_case
    "secret": ["new secret", "old secret"],
    "resave": False,
    "save_uninitialized": False,
    "rolling": True,
    "cookie": {"max_age": 60_000, "same_site": "lax", "priority": "high"},
    "passport": {"field": "pk"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
