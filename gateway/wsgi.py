import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")
application = get_wsgi_application()


def _freeze_what_is_loaded() -> None:
    """Move everything the process has loaded (Django, the views and what they import) out of the
    collector's reach: it lives as long as the process, and a full collection (generation 2) walked
    all of it while holding the GIL, stalling every request of the process. Measured in the web
    workers during `bench/surge.py`'s hold: full collections of 116-248 ms before, 7-66 ms after.
    The URL configuration is loaded first, so that the views are part of what is frozen rather than
    of the first request."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - loading it is the point
    gc.collect()
    gc.freeze()


_freeze_what_is_loaded()
