from django.contrib import auth
from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_POST


def _view(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse(
        {
            "app": "django",
            "user": user.username if user.is_authenticated else None,
            "cart": request.session.get("cart", []),
        }
    )


async def me(request: HttpRequest) -> JsonResponse:
    """An async view: the session is already loaded, request.auser() reads passport.user."""
    user = await request.auser()
    return JsonResponse(
        {
            "app": "django",
            "user": user.username if user.is_authenticated else None,
            "cart": await request.session.aget("cart", []),
        }
    )


def csrf(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"token": get_token(request)})


@require_POST
def cart(request: HttpRequest) -> JsonResponse:
    """CSRF-protected: send the token from /csrf as X-CSRFToken."""
    request.session["cart"] = [*request.session.get("cart", []), request.GET["item"]]
    return _view(request)


@require_POST
def login_view(request: HttpRequest) -> JsonResponse:
    """A demo login (CSRF-protected, no password): Django's login() writes passport.user."""
    user = get_user_model().objects.get(username=request.GET.get("user", "grace"))
    auth.login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return _view(request)


@require_POST
def logout_view(request: HttpRequest) -> JsonResponse:
    auth.logout(request)
    return _view(request)
