from django.urls import path

from faces.payments import views

urlpatterns = [
    path("pay/simulator/<str:order_id>", views.pay_simulator, name="pay-simulator"),
    path("pay/simulator/<str:order_id>/payments/<str:ref>", views.pay_simulator_sent, name="pay-simulator-sent"),
    path("pay/<str:provider>/<str:order_id>", views.pay_checkout, name="pay-checkout"),
]
