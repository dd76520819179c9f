"""Key rotation: the new key works at once, the old one during the overlap window only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateway.apikeys import InvalidApiKey, authenticate_api_key, issue_api_key, revoke_api_key, rotate_api_key
from gateway.models import ApiKey

pytestmark = pytest.mark.django_db


def test_rotation_overlaps_then_the_old_key_expires(channels):
    alpha = channels["alpha"]
    old = issue_api_key(channel=alpha, name="shop", scopes=("read", "stamp"))
    new = rotate_api_key(api_key=old.api_key, overlap=timedelta(hours=1))
    assert new.plaintext != old.plaintext
    assert sorted(new.api_key.scopes) == ["read", "stamp"] and new.api_key.name == "shop"
    assert authenticate_api_key(presented=old.plaintext, channel=alpha).pk == old.api_key.pk  # overlap
    assert authenticate_api_key(presented=new.plaintext, channel=alpha).pk == new.api_key.pk
    ApiKey.objects.filter(pk=old.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # time passes
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(presented=old.plaintext, channel=alpha)
    assert authenticate_api_key(presented=new.plaintext, channel=alpha).pk == new.api_key.pk


def test_a_revoked_key_cannot_be_rotated(channels):
    issued = issue_api_key(channel=channels["alpha"], name="gone")
    revoke_api_key(api_key=issued.api_key)
    before = ApiKey.objects.count()
    with pytest.raises(InvalidApiKey):
        rotate_api_key(api_key=issued.api_key)
    assert ApiKey.objects.count() == before


def test_rotating_twice_never_extends_the_old_keys_life(channels):
    issued = issue_api_key(channel=channels["alpha"], name="twice")
    rotate_api_key(api_key=issued.api_key, overlap=timedelta(hours=1))
    first_expiry = ApiKey.objects.get(pk=issued.api_key.pk).expires_at
    rotate_api_key(api_key=issued.api_key, overlap=timedelta(days=3))
    assert ApiKey.objects.get(pk=issued.api_key.pk).expires_at == first_expiry
