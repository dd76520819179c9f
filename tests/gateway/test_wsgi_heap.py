"""A web process freezes what it has loaded (``gateway.wsgi``): the collector's full passes then walk
only what requests made since, not Django and every module, while holding the GIL."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import gc, sys
import gateway.wsgi
frozen = gc.get_freeze_count()
before = len(gc.get_objects(generation=2))
gc.collect()
print(frozen, before, "faces.storefront.stamps" in sys.modules)
"""


def test_the_loaded_heap_is_frozen_with_the_views_in_it():
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "gateway.settings.test"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    frozen, in_oldest, views_loaded = done.stdout.split()
    # Django, the apps and the views: far more than what is left for a full collection to walk.
    assert int(frozen) > 50_000
    assert int(frozen) > 10 * int(in_oldest)
    assert views_loaded == "True"  # loaded before the freeze, not by the first request
