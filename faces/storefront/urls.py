from django.urls import path

from faces.storefront import views
from gateway.http.schema import ApiDocsPage, SchemaApi, StorefrontSchemaGenerator

urlpatterns = [
    path("", views.ApiRootApi.as_view(), name="channel-api-root"),
    path("schema", SchemaApi.for_host(StorefrontSchemaGenerator), name="channel-api-schema"),
    path("docs", ApiDocsPage.as_view(generator_class=StorefrontSchemaGenerator), name="channel-api-docs"),
    path("status", views.ServiceStatusApi.as_view(), name="service-status"),
    path("customers", views.CustomerListApi.as_view(), name="customer-list"),
    path("customers/<int:customer_id>", views.CustomerDetailApi.as_view(), name="customer-detail"),
    path("orders", views.OrderListApi.as_view(), name="order-list"),
    path("orders/<str:order_id>", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:order_id>/refunds", views.OrderRefundsApi.as_view(), name="order-refunds"),
    path("refunds/<str:refund_id>", views.RefundDetailApi.as_view(), name="refund-detail"),
    path("payments/<str:provider>/webhook", views.PaymentWebhookApi.as_view(), name="payment-webhook"),
]

from faces.storefront import stamps  # noqa: E402

urlpatterns += [
    path("stamps", stamps.StampListApi.as_view(), name="stamp-list"),
    path("stamps/preview", stamps.StampPreviewApi.as_view(), name="stamp-preview"),  # before stamps/<job_id>
    path("stamps/<str:job_id>", stamps.StampDetailApi.as_view(), name="stamp-detail"),
    path("stamps/<str:job_id>/document", stamps.StampDocumentApi.as_view(), name="stamp-document"),
    path("batches", stamps.BatchListApi.as_view(), name="batch-list"),
    path("batches/<str:batch_id>", stamps.BatchDetailApi.as_view(), name="batch-detail"),
    path("document-types", stamps.DocumentTypesApi.as_view(), name="document-types"),
    path("balance", stamps.BalanceApi.as_view(), name="balance"),
]
