from django.urls import path

from faces.backoffice import views

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
    path("deposits/", views.deposits, name="deposits"),
    path("deposits/<int:deposit_id>/confirm", views.deposit_confirm, name="deposit-confirm"),
    path("reconciliation/", views.reconciliation, name="reconciliation"),
    path("reconciliation/run", views.reconciliation_run, name="reconciliation-run"),
    path("settlement/", views.settlement, name="settlement"),
    path("settlement.csv", views.settlement_csv, name="settlement-csv"),
    path("serials/", views.serials, name="serials"),
    path("incidents/", views.incidents, name="incidents"),
    path("incidents/<int:note_id>/", views.incident_edit, name="incident-edit"),
    path("incidents/<int:note_id>/resolve", views.incident_resolve, name="incident-resolve"),
]
