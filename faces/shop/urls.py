from django.urls import path

from faces.shop import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("signin", views.request_link, name="request-link"),
    path("signin/<str:token>", views.sign_in, name="signin"),
    path("signout", views.sign_out, name="signout"),
    path("buy", views.buy, name="buy"),
    path("orders/<str:order_id>", views.order_page, name="order"),
]

urlpatterns += [
    path("stamp", views.stamp, name="stamp"),
    path("stamps/<str:job_id>", views.job_page, name="job"),
    path("stamps/<str:job_id>/document", views.job_document, name="job-document"),
]

urlpatterns += [
    path("stamp/preview", views.preview, name="preview"),
    path("stamp/preview/<str:token>/<int:page>.png", views.preview_page, name="preview-page"),
]
