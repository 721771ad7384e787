from django.urls import path

from . import views

urlpatterns = [
    path("me", views.me),
    path("ame", views.ame),
    path("login", views.login_view),
    path("alogin", views.alogin_view),
    path("logout", views.logout_view),
    path("alogout", views.alogout_view),
    path("cart", views.cart),
    path("acart", views.acart),
    path("csrf", views.csrf),
    path("message", views.message),
    path("boom", views.boom),
]
