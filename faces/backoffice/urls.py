from django.urls import path

from faces.backoffice import channels, topups, views

app_name = "backoffice"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("logout/", views.StaffLogoutView.as_view(), name="logout"),
    path("login/code/", views.otp_verify, name="otp-verify"),
    path("login/enrol/", views.otp_enrol, name="otp-enrol"),
    path("audit/", views.audit_log, name="audit"),
    path("brownout/", views.brownouts, name="brownouts"),
    path("brownout/<int:brownout_id>/resume", views.brownout_resume, name="brownout-resume"),
    path("channels/", channels.channels, name="channels"),
    path("channels/new", channels.channel_new, name="channel-new"),
    path("channels/onboarding/<int:onboarding_id>/", channels.onboarding, name="onboarding"),
    path("channels/onboarding/<int:onboarding_id>.json", channels.onboarding_json, name="onboarding-json"),
    path("channels/<str:code>/", channels.channel_detail, name="channel"),
    path("channels/<str:code>/status", channels.channel_status, name="channel-status"),
    path("deposits/", views.deposits, name="deposits"),
    path("deposits/<int:deposit_id>/confirm", views.deposit_confirm, name="deposit-confirm"),
    path("topups/<int:request_id>/record", topups.topup_record, name="topup-record"),
    path("topups/<int:request_id>/proof", topups.topup_proof, name="topup-proof"),
    path("reconciliation/", views.reconciliation, name="reconciliation"),
    path("reconciliation/run", views.reconciliation_run, name="reconciliation-run"),
    path("settlement/", views.settlement, name="settlement"),
    path("settlement.csv", views.settlement_csv, name="settlement-csv"),
    path("serials/", views.serials, name="serials"),
    path("incidents/", views.incidents, name="incidents"),
    path("incidents/<int:note_id>/", views.incident_edit, name="incident-edit"),
    path("incidents/<int:note_id>/resolve", views.incident_resolve, name="incident-resolve"),
]
