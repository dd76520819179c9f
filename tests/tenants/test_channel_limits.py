from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Channel

pytestmark = pytest.mark.django_db


def test_the_issuer_sets_a_channels_limits(channels, capsys):
    call_command("channel_limits", "--channel", "alpha", "--per-key", "7", "--concurrency", "2")
    shown = json.loads(capsys.readouterr().out)
    alpha = Channel.objects.get(code="alpha")
    assert (alpha.rate_limit_per_key, alpha.stamping_concurrency) == (7, 2)
    assert shown["rate_limit_per_key"] == 7 and shown["stamping_concurrency"] == 2


def test_nonsense_limits_are_refused_and_change_nothing(channels):
    before = Channel.objects.get(code="alpha").rate_limit_per_key
    with pytest.raises(CommandError, match="at least 1"):
        call_command("channel_limits", "--channel", "alpha", "--per-key", "0")
    assert Channel.objects.get(code="alpha").rate_limit_per_key == before
