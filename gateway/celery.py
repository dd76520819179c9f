"""The Celery application.

Tasks that touch a channel's data run in that channel's schema: they take ``schema_name`` as an
argument and enter it explicitly (see ``gateway.tasks.tenant_task``); none falls back silently to
the public schema.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
