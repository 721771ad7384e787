"""Django on express-session's sessions (extra ``django``; Django 4.2 and 5.x).

``MIDDLEWARE``: :class:`ExpressSessionMiddleware` in place of Django's ``SessionMiddleware``
and, for logins made by passport on the Express side,
:class:`~token_session.web.django.passport.PassportAuthenticationMiddleware` in place of
Django's ``AuthenticationMiddleware``; ``settings.TOKEN_SESSION`` holds the store and the
express-session options (see the Django guide).
"""

from .middleware import ExpressSessionMiddleware
from .passport import PassportAuthenticationMiddleware
from .session import DjangoExpressSession

__all__ = ["DjangoExpressSession", "ExpressSessionMiddleware", "PassportAuthenticationMiddleware"]
