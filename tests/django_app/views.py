"""The routes of the Express app (fixtures/node/django-app.js), in sync and async views."""

from typing import Any

from django.contrib import auth, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponseNotFound, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _view(request: HttpRequest, user: Any) -> JsonResponse:
    return JsonResponse(
        {
            "app": "django",
            "user": user.username if user.is_authenticated else None,
            "cart": request.session.get("cart", []),
            "messages": [str(message) for message in messages.get_messages(request)],
        }
    )


def me(request: HttpRequest) -> JsonResponse:
    return _view(request, request.user)


async def ame(request: HttpRequest) -> JsonResponse:
    user = await request.auser()  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "app": "django",
            "user": user.username if user.is_authenticated else None,
            "cart": await request.session.aget("cart", []),  # type: ignore[attr-defined]
        }
    )


def _user(name: str) -> Any:
    return get_user_model().objects.get(username=name)


@csrf_exempt
def login_view(request: HttpRequest) -> JsonResponse:
    user = _user(request.GET["user"])
    auth.login(request, user, backend=BACKEND)
    return _view(request, user)


@csrf_exempt
async def alogin_view(request: HttpRequest) -> JsonResponse:
    if not hasattr(auth, "alogin"):  # Django 4.2
        return HttpResponseNotFound()  # type: ignore[return-value]
    user = await get_user_model().objects.aget(username=request.GET["user"])
    await auth.alogin(request, user, backend=BACKEND)
    return JsonResponse({"app": "django", "user": user.username})


@csrf_exempt
def logout_view(request: HttpRequest) -> JsonResponse:
    auth.logout(request)
    return JsonResponse({"app": "django", "user": None})


@csrf_exempt
async def alogout_view(request: HttpRequest) -> JsonResponse:
    if not hasattr(auth, "alogout"):
        return HttpResponseNotFound()  # type: ignore[return-value]
    await auth.alogout(request)
    return JsonResponse({"app": "django", "user": None})


def cart(request: HttpRequest) -> JsonResponse:
    """CSRF-protected: the token comes from /csrf."""
    request.session["cart"] = [*request.session.get("cart", []), request.GET["item"]]
    return _view(request, request.user)


@csrf_exempt
async def acart(request: HttpRequest) -> JsonResponse:
    if not hasattr(request.session, "aget"):  # Django 4.2
        return HttpResponseNotFound()  # type: ignore[return-value]
    items = await request.session.aget("cart", [])  # type: ignore[attr-defined]
    await request.session.aset("cart", [*items, request.GET["item"]])  # type: ignore[attr-defined]
    return JsonResponse({"app": "django", "cart": await request.session.aget("cart")})  # type: ignore[attr-defined]


def csrf(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"token": get_token(request)})


@csrf_exempt
def message(request: HttpRequest) -> JsonResponse:
    messages.info(request, request.GET["text"])
    return JsonResponse({"app": "django"})


@csrf_exempt
def boom(request: HttpRequest) -> JsonResponse:
    """A change to the session, then a server error: nothing is written."""
    request.session["cart"] = ["lost"]
    return JsonResponse({"error": "boom"}, status=500)
