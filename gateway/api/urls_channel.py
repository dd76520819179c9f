from django.urls import path

from gateway.api import views

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="channel-api-root"),
    path("customers", views.CustomerListApi.as_view(), name="customer-list"),
    path("customers/<str:customer_id>", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path("orders", views.OrderListApi.as_view(), name="order-list"),
    path("orders/<str:order_id>", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:order_id>/refunds", views.RefundCreateApi.as_view(), name="order-refunds"),
    path("payments/<str:provider>/webhook", views.PaymentWebhookApi.as_view(), name="payment-webhook"),
]
