from django.urls import path

from . import views

urlpatterns = [
    path("me", views.me),
    path("csrf", views.csrf),
    path("cart", views.cart),
    path("login", views.login_view),
    path("logout", views.logout_view),
]
