"""A small Django project on the shared session, for the Django tests: the same routes as
the Express app of ``fixtures/node/django-app.js``, under gunicorn (WSGI) or uvicorn (ASGI).

The store comes from the environment: ``TS_DJANGO_STORE`` (a URL, default ``memory://``),
``TS_DJANGO_STORE_OPTIONS`` (JSON keywords of the store), ``TS_DJANGO_DB`` (the SQLite file
holding the users).
"""
