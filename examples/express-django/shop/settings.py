"""The Django half: the sessions and logins of the Express app in server.js."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "token_session.web.django.ExpressSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "token_session.web.django.PassportAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
CSRF_USE_SESSIONS = True  # the CSRF secret lives in the shared session
TEMPLATES: list[dict[str, object]] = []

# what server.js gives express-session, connect-redis and passport
TOKEN_SESSION = {
    "store": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "store_options": {"prefix": "sess:"},
    "secret": os.environ.get("SESSION_SECRET", "change me"),
    "resave": False,
    "save_uninitialized": False,
    "cookie": {"max_age": 24 * 3600 * 1000, "same_site": "lax"},
    "passport": {"field": "username"},  # passport.serializeUser gives the username
}
