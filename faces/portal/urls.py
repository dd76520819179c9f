from django.contrib.auth import views as auth_views
from django.urls import path

from faces.compat import portal as compat_portal
from faces.portal import money, team, views

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
    path("topups/", money.topups, name="topups"),
    path("statements/", money.statement, name="statement"),
    path("statements/<str:month>.<str:kind>", money.statement_file, name="statement-file"),
    path("team/", team.team, name="team"),
    path("team/<int:member_id>/role", team.member_role, name="member-role"),
    path("team/<int:member_id>/remove", team.member_remove, name="member-remove"),
    path("join/<str:token>/", team.join, name="join"),
    path("reset/<str:token>/", team.reset, name="reset"),
    path("password-reset/", team.reset_request, name="password-reset"),
    path("compat-users/", compat_portal.compat_users, name="compat-users"),
]
