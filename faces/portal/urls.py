from django.contrib.auth import views as auth_views
from django.urls import path

from faces.compat import portal as compat_portal
from faces.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="portal:login"), name="logout"),
    path("customers/", views.customers, name="customers"),
    path("orders/", views.orders, name="orders"),
    path("stamps/", views.stamps, name="stamps"),
    path("keys/", views.api_keys, name="api-keys"),
    path("keys/<int:key_id>/revoke", views.api_key_revoke, name="api-key-revoke"),
    path("keys/<int:key_id>/rotate", views.api_key_rotate, name="api-key-rotate"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:endpoint_id>/", views.webhook_endpoint, name="webhook-endpoint"),
    path("webhooks/deliveries/<int:delivery_id>/replay", views.webhook_replay, name="webhook-replay"),
    path("compat-users/", compat_portal.compat_users, name="compat-users"),
]
