"""Channel provisioning in the background (the back office's onboarding)."""

from __future__ import annotations

from celery import shared_task

from tenants.services import run_onboarding as _run_onboarding


@shared_task(name="tenants.run_onboarding", ignore_result=True, acks_late=True)
def run_onboarding(onboarding_id: int) -> str:
    """Provision the channel of an :class:`~tenants.models.Onboarding`; safe to run twice."""
    return _run_onboarding(onboarding_id)
