"""Base settings. Every value that comes from the environment is read here and nowhere else."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("GATEWAY_DATA_DIR", BASE_DIR / ".data")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ".localhost,localhost,127.0.0.1,testserver")

# --------------------------------------------------------------------------- apps

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "gateway",
    "issuer",
    "billing",
    "billing.ledger",
    "staff",
    "stamping.brownout",
    "django_otp",
    "django_otp.plugins.otp_totp",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "tenants.customers",
    "tenants.members",
    "gateway.edge",
    "outbox",
    "stamping",
    "billing.retail",
    "faces.compat",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Channel"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# The public schema's host serves the issuer; channel hosts serve storefront API and portal.
PUBLIC_SCHEMA_URLCONF = "gateway.urls_public"
ROOT_URLCONF = "gateway.urls_channel"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
# Set the search_path once per connection and schema change, not before every query (half the
# round trips of a request were SETs without it).
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "gateway.metrics.MetricsMiddleware",  # first: refusals of the middleware below are counted too
    "gateway.middleware.RequestIdMiddleware",
    "gateway.middleware.BodyLimitMiddleware",
    "gateway.middleware.TenantMiddleware",
    "gateway.bulkhead.ChannelBulkheadMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "gateway.csp.CSPMiddleware",  # django-csp's, the policy built once per process
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "gateway.i18n.GatewayLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The portal's template tags live with the portal face, which is not an app.
            "libraries": {"ui": "faces.portal.templatetags.ui", "portal_roles": "faces.portal.templatetags.roles"},
        },
    },
]

WSGI_APPLICATION = "gateway.wsgi.application"
ASGI_APPLICATION = "gateway.asgi.application"

# --------------------------------------------------------------------------- data stores


def _database_config() -> dict:
    """From ``DATABASE_URL``, else the embedded server's location (started by the commands that need
    it, never by importing settings: see ``gateway.embedded``)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    else:
        from gateway.embedded import EMBEDDED_DATABASE, postgres_location

        location = postgres_location()
        config = {
            "NAME": EMBEDDED_DATABASE,
            "USER": location.user,
            "PASSWORD": "",
            "HOST": location.host,
            "PORT": str(location.port),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    config["ENGINE"] = "kernel.pgbackend"  # django-tenants' backend, one SET search_path fewer a request
    config.setdefault("OPTIONS", {})["connect_timeout"] = 5
    return config


DATABASES = {"default": _database_config()}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    from gateway.embedded import redis_url

    return redis_url()


REDIS_URL = _redis_url()


def _celery_url(redis_url: str) -> str:
    # kombu names a unix-socket Redis "redis+socket://" and its database "virtual_host".
    if not redis_url.startswith("unix://"):
        return redis_url
    return redis_url.replace("unix://", "redis+socket://", 1).replace("db=", "virtual_host=")


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# --------------------------------------------------------------------------- Celery

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None  # outcomes live in PostgreSQL, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task reserved by a worker that died comes back after ``visibility_timeout`` seconds; the scan
# for such tasks runs every ``unacked_restore_interval`` seconds (kombu's default would be 100 s).
# ``queue_order_strategy: priority``: a worker given ``-Q stamping,credit,default`` always takes from the
# first of its queues that has a message (docs/stamping.md, "Overload priorities and brownout").
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600, "unacked_restore_interval": 10,
                                   "unacked_restore_throttle": 1, "queue_order_strategy": "priority"}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after each task unless this is
# set: each task then opened a new PostgreSQL backend (a fork, its catalog caches, the search path), and
# a surge runs many short tasks (drainer slices, webhooks, credits). Set, the fix-up closes them only every this
# many tasks; gateway.celery treats a task as Django treats a request instead: a connection is reused
# until CONN_MAX_AGE, and one that failed or is unusable is closed (CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues by priority class, highest first: stamping (finishing accepted stamps, stale jobs, the brownout
# check), credit (crediting paid orders, sending refunds, releasing dead holds), default (the rest).
CELERY_WORKER_QUEUES = "stamping,credit,default"  # what every worker consumes, in this order
CELERY_TASK_ROUTES = {
    "gateway.stamping.drain_lane": {"queue": "stamping"},
    "gateway.stamping.resume_stale": {"queue": "stamping"},
    "gateway.brownout.evaluate": {"queue": "stamping"},
    "billing.sweep_orders": {"queue": "credit"},
    "billing.send_refunds": {"queue": "credit"},
    "billing.sweep_expired_pending": {"queue": "credit"},
}
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "gateway.tasks.heartbeat", "schedule": timedelta(seconds=30)},
    "sweep-expired-holds": {"task": "billing.sweep_expired_pending", "schedule": timedelta(seconds=30)},
    "sweep-orders": {"task": "billing.sweep_orders", "schedule": timedelta(seconds=60)},
    "reconcile": {"task": "billing.reconcile", "schedule": timedelta(minutes=10)},
    "stamping-resume-stale": {"task": "gateway.stamping.resume_stale", "schedule": timedelta(seconds=5)},
    "webhooks-sweep": {"task": "gateway.webhooks.sweep_all", "schedule": timedelta(seconds=30)},
    "idempotency-purge": {"task": "gateway.idempotency.purge_expired", "schedule": timedelta(hours=1)},
    "compat-purge-uploads": {"task": "compat.purge_uploads", "schedule": timedelta(hours=1)},
    "brownout-evaluate": {"task": "gateway.brownout.evaluate", "schedule": timedelta(seconds=5)},
    "retention-sweep": {"task": "stamping.retention_sweep", "schedule": timedelta(hours=1)},
}
_ = crontab  # kept importable for later schedules

# --------------------------------------------------------------------------- auth and security

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "gateway.http.problems.csrf_failure"
LOGIN_URL = "portal:login"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp): scripts, styles and everything else from the site itself only;
# no inline script, handler or style anywhere (templates load static/js and static/css files instead),
# no plugins, no <base>, no framing, forms post to the site only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --------------------------------------------------------------------------- i18n, static

LANGUAGE_CODE = "en"  # the APIs' and the portals' default; the end user's pages default to Indonesian (gateway.i18n)
LANGUAGES = [("id", "Bahasa Indonesia"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # .po committed, .mo compiled by `manage.py i18n_compile`
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600  # the language switch persists
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_ROOT = BASE_DIR / "static" / "root"  # files browsers ask for at the site root: /favicon.ico
MEDIA_ROOT = DATA_DIR / "media"

# --------------------------------------------------------------------------- API

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "gateway.http.problems.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "gateway.http.negotiation.FastContentNegotiation",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "gateway.http.schema.GatewayAutoSchema",
}

# --------------------------------------------------------------------------- logging

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "gateway.logging.ContextFilter"}},
    "formatters": {"json": {"()": "gateway.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        "pikepdf": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},  # its INFO is a line per table while the stamp's fonts are built
    },
}

# --------------------------------------------------------------------------- the product

ISSUER_HOST = os.environ.get("ISSUER_HOST", "localhost")
# Stamping admission (docs/stamping.md): a channel is refused with 503 + Retry-After when its lane could
# not finish one more job within STAMPING_MAX_WAIT_SECONDS (from the lane model: workers, lanes, measured
# cost), once it has STAMPING_MIN_BACKLOG jobs; or past STAMPING_CHANNEL_BACKLOG_LIMIT jobs in any case.
# The assumed figures stand in until the workers have measured real ones.
STAMPING_CHANNEL_BACKLOG_LIMIT = int(os.environ.get("STAMPING_CHANNEL_BACKLOG_LIMIT", "5000"))
STAMPING_MAX_WAIT_SECONDS = float(os.environ.get("STAMPING_MAX_WAIT_SECONDS", "15"))
STAMPING_MIN_BACKLOG = int(os.environ.get("STAMPING_MIN_BACKLOG", "20"))
# Intake pace (docs/stamping.md): once a lane holds STAMPING_MIN_BACKLOG jobs, it takes new ones at most
# this many times as fast as the lane model says it stamps them (0: no pace).
STAMPING_INTAKE_PACE = float(os.environ.get("STAMPING_INTAKE_PACE", "1.5"))
STAMPING_ASSUMED_RATE = float(os.environ.get("STAMPING_ASSUMED_RATE", "20"))  # stamps/s of one worker
STAMPING_ASSUMED_DISPATCH_SECONDS = float(os.environ.get("STAMPING_ASSUMED_DISPATCH_SECONDS", "0.05"))
STAMPING_WORKER_SLOTS = int(os.environ.get("STAMPING_WORKER_SLOTS", "2"))  # until workers report themselves
# Lower classes first (docs/stamping.md, "Overload priorities"): new purchases and new customers are
# refused (503 purchases_overloaded / registrations_overloaded) once the lane passes this share of the
# limits above that refuse a stamp request: "purchases=0.75,registrations=0.5" (1 or more: never before stamps).
STAMPING_CLASS_SHARES = {
    kind.strip(): float(share)
    for kind, _, share in (
        item.partition("=")
        for item in os.environ.get("STAMPING_CLASS_SHARES", "purchases=0.75,registrations=0.5").split(",")
        if item.strip()
    )
}
# Web tier bulkheads (gateway/bulkhead.py): the threads of one web process (gunicorn gthread; set by
# gateway/gunicorn_conf.py from the same variable) and the share of them one channel may hold at once.
WEB_THREADS = int(os.environ.get("WEB_THREADS", "1"))
WEB_CHANNEL_SHARE = float(os.environ.get("WEB_CHANNEL_SHARE", "0.25"))
# The nice value added, for the length of a request, to the web thread serving a channel the bulkhead
# is refusing (it wants more than its share): the other channels' requests get the CPU first. 0: off.
# Giving the priority back needs RLIMIT_NICE (deploy/ sets it); without it nothing is lowered
# (gateway/threadpriority.py).
WEB_BUSY_NICE = int(os.environ.get("WEB_BUSY_NICE", "10"))
# Brownout (stamping/brownout, docs/stamping.md): web processes re-read the pauses in force every
# BROWNOUT_CACHE_SECONDS; a refusal's Retry-After is spread over BROWNOUT_RETRY_AFTER_SECONDS (low,high).
# Automatic pauses on backlog age (seconds the oldest queued stamp has waited): "class=start/stop,..." -
# paused at ``start``, lifted at ``stop`` (hysteresis); per channel, and issuer-wide (every channel) on
# the oldest of all - a backstop for when the workers as a whole fall behind (admission holds each lane
# to STAMPING_MAX_WAIT_SECONDS, so one channel's surge alone stays under it). Lower classes get lower
# thresholds, so they are refused first. An empty value turns it off.
BROWNOUT_CACHE_SECONDS = float(os.environ.get("BROWNOUT_CACHE_SECONDS", "2"))
BROWNOUT_RETRY_AFTER_SECONDS = tuple(
    float(n) for n in os.environ.get("BROWNOUT_RETRY_AFTER_SECONDS", "30,90").split(",")
)


def _thresholds(raw: str) -> dict[str, tuple[float, float]]:
    steps = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kind, _, pair = item.partition("=")
        start, _, stop = pair.partition("/")
        steps[kind.strip()] = (float(start), float(stop))
    return steps


BROWNOUT_AUTO_CHANNEL = _thresholds(os.environ.get("BROWNOUT_AUTO_CHANNEL", "registrations=20/5,purchases=40/10"))
BROWNOUT_AUTO_ISSUER = _thresholds(os.environ.get("BROWNOUT_AUTO_ISSUER", "registrations=90/20,purchases=180/45"))
# Celery worker processes run this much nicer than the web processes (0: the same priority), and
# under SCHED_IDLE (a waking web thread takes the CPU from them at once; gateway/celery.py).
WORKER_NICE = int(os.environ.get("WORKER_NICE", "10"))
WORKER_SCHED_IDLE = env_bool("WORKER_SCHED_IDLE", True)
# bench/api.py's yardstick endpoint (one database read); never on in production.
GATEWAY_BENCH_ENDPOINTS = env_bool("GATEWAY_BENCH_ENDPOINTS", False)
# The issuer's public verification endpoints (no API key): (rate per second, burst) per client address,
# and for all clients together. A serial lookup costs 1, a document upload PUBLIC_UPLOAD_COST.
# GATEWAY_PUBLIC_RATE_LIMITS="5/30,1000/2000" sets both.
PUBLIC_RATE_LIMITS = tuple(
    tuple(int(n) for n in pair.split("/"))
    for pair in os.environ.get("GATEWAY_PUBLIC_RATE_LIMITS", "5/30,1000/2000").split(",")
)
PUBLIC_UPLOAD_COST = 5
# Proxies in front of the gateway that append to X-Forwarded-For (0: the client is REMOTE_ADDR).
NUM_PROXIES = int(os.environ.get("GATEWAY_NUM_PROXIES", "0"))
# Webhook deliveries to loopback/private/link-local addresses: off in production (SSRF), on for
# development, where receivers listen on this machine.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
VERIFY_BASE_URL = os.environ.get("VERIFY_BASE_URL", "http://localhost:8000/v/")
ISSUER_KEY_DIR = Path(os.environ.get("ISSUER_KEY_DIR", DATA_DIR / "issuer-keys"))
# Development only: where `manage.py dev_keys` keeps the development root CA's private key (never beside the
# signing key, which the stamping workers read); the demo's local TSA issues its certificate from it.
ISSUER_DEV_CA_DIR = Path(os.environ.get("ISSUER_DEV_CA_DIR", DATA_DIR / "issuer-dev-ca"))


def derived_secret(secret_key: str, purpose: str) -> str:
    """A separate secret per purpose, derived from the project secret (HMAC-SHA256)."""
    import hashlib
    import hmac

    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()


# Payment providers this installation takes payments with (comma-separated): simulator, midtrans,
# xendit. None by default; local and test enable the simulator; production refuses the simulator.
PAYMENT_PROVIDERS = [p.strip() for p in os.environ.get("PAYMENT_PROVIDERS", "").split(",") if p.strip()]
# Midtrans (Snap): the server key from the dashboard; sandbox unless MIDTRANS_IS_PRODUCTION=1. The base
# URLs can be overridden (tests point them at a local fake).
MIDTRANS_SERVER_KEY = os.environ.get("MIDTRANS_SERVER_KEY", "")
MIDTRANS_IS_PRODUCTION = env_bool("MIDTRANS_IS_PRODUCTION", False)
MIDTRANS_SNAP_BASE_URL = os.environ.get("MIDTRANS_SNAP_BASE_URL") or (
    "https://app.midtrans.com" if MIDTRANS_IS_PRODUCTION else "https://app.sandbox.midtrans.com"
)
MIDTRANS_API_BASE_URL = os.environ.get("MIDTRANS_API_BASE_URL") or (
    "https://api.midtrans.com" if MIDTRANS_IS_PRODUCTION else "https://api.sandbox.midtrans.com"
)
# Xendit (Invoices): the secret API key and the callback verification token, both from the dashboard.
XENDIT_SECRET_KEY = os.environ.get("XENDIT_SECRET_KEY", "")
XENDIT_CALLBACK_TOKEN = os.environ.get("XENDIT_CALLBACK_TOKEN", "")
XENDIT_API_BASE_URL = os.environ.get("XENDIT_API_BASE_URL", "https://api.xendit.co")
# Seconds an adapter waits for a provider's API before giving up (the caller retries later).
PAYMENT_PROVIDER_TIMEOUT = float(os.environ.get("PAYMENT_PROVIDER_TIMEOUT", "10"))

# The simulator payment provider's webhook secret (a real provider's comes from its dashboard).
PAYMENT_SIMULATOR_SECRET = os.environ.get("PAYMENT_SIMULATOR_SECRET", "")
# Where the simulator sends its webhooks; unset = this same server on 127.0.0.1 (with the channel's Host header).
PAYMENT_SIMULATOR_WEBHOOK_BASE = os.environ.get("PAYMENT_SIMULATOR_WEBHOOK_BASE", "")

# --------------------------------------------------------------------------- compat facade (issue 18)
# The drop-in facade of the issuer's API under /compat/ (docs/compat.md): token lifetime, how long a
# serial reserved by `stampv2` holds its unit, and how long `docSigningZ` waits for the stamp before
# answering 97 (retry with the same serial: the same stamp, never a second unit).
COMPAT_TOKEN_TTL_SECONDS = int(os.environ.get("COMPAT_TOKEN_TTL_SECONDS", str(24 * 3600)))
COMPAT_RESERVATION_SECONDS = int(os.environ.get("COMPAT_RESERVATION_SECONDS", str(24 * 3600)))
COMPAT_SIGN_WAIT_SECONDS = float(os.environ.get("COMPAT_SIGN_WAIT_SECONDS", "20"))

# --------------------------------------------------------------------------- issuer core (issue 3)
# Signing key (docs/issuer.md, "Keys"): a PKCS#11 token, or a PKCS#12 file, or a PEM key + certificate
# (+ chain); or, where ISSUER_DEV_KEYS allows it, development keys under ISSUER_KEY_DIR made by
# `manage.py dev_keys`. Paths in *_CHAIN / *_TRUST_ROOTS are separated by ":".
ISSUER_PKCS11_MODULE = os.environ.get("ISSUER_PKCS11_MODULE", "")  # path of the PKCS#11 library (.so)
ISSUER_PKCS11_TOKEN_LABEL = os.environ.get("ISSUER_PKCS11_TOKEN_LABEL", "")
ISSUER_PKCS11_KEY_LABEL = os.environ.get("ISSUER_PKCS11_KEY_LABEL", "")  # the key's (and certificate's) label
ISSUER_PKCS11_PIN = os.environ.get("ISSUER_PKCS11_PIN", "")
ISSUER_DEV_KEYS = False  # development keys may be made and used (local.py and test.py only)
ISSUER_SIGNING_PKCS12 = os.environ.get("ISSUER_SIGNING_PKCS12", "")
ISSUER_SIGNING_PKCS12_PASSWORD = os.environ.get("ISSUER_SIGNING_PKCS12_PASSWORD", "")
ISSUER_SIGNING_KEY = os.environ.get("ISSUER_SIGNING_KEY", "")
ISSUER_SIGNING_KEY_PASSWORD = os.environ.get("ISSUER_SIGNING_KEY_PASSWORD", "")
ISSUER_SIGNING_CERT = os.environ.get("ISSUER_SIGNING_CERT", "")
ISSUER_SIGNING_CHAIN = [p for p in os.environ.get("ISSUER_SIGNING_CHAIN", "").split(":") if p]
# Extra roots trusted when verifying uploaded documents (e.g. the previous signing CA after a rotation).
ISSUER_TRUST_ROOTS = [p for p in os.environ.get("ISSUER_TRUST_ROOTS", "").split(":") if p]
# RFC 3161 time-stamping authority (none: signatures carry the signing time only).
ISSUER_TSA_URL = os.environ.get("ISSUER_TSA_URL", "")
ISSUER_TSA_USERNAME = os.environ.get("ISSUER_TSA_USERNAME", "")
ISSUER_TSA_PASSWORD = os.environ.get("ISSUER_TSA_PASSWORD", "")
ISSUER_TSA_TIMEOUT = float(os.environ.get("ISSUER_TSA_TIMEOUT", "10"))
# Verifying an uploaded document (issuer/verification.py): caps checked before any validation
# (document_too_complex), worker processes per web process (verification_busy when all are busy),
# how much nicer they run than the web process, and the time one document may take.
VERIFY_MAX_SIGNATURES = int(os.environ.get("VERIFY_MAX_SIGNATURES", "10"))
VERIFY_MAX_REVISIONS = int(os.environ.get("VERIFY_MAX_REVISIONS", "24"))
VERIFY_WORKERS = int(os.environ.get("VERIFY_WORKERS", "1"))
VERIFY_NICE = int(os.environ.get("VERIFY_NICE", "15"))
VERIFY_TIME_BUDGET_SECONDS = float(os.environ.get("VERIFY_TIME_BUDGET_SECONDS", "5"))
# Ceiling for any document (every profile's max_bytes is capped by it) and for verification uploads.
STAMP_DEFAULT_MAX_BYTES = int(os.environ.get("STAMP_DEFAULT_MAX_BYTES", str(20 * 1024 * 1024)))
# ---------------------------------------------------------------------------- end of issuer core
# Request bodies (gateway/http/bodylimits.py): a batch upload's ceiling, and every other request's
# but the document uploads (which STAMP_DEFAULT_MAX_BYTES bounds). Larger is 413 before it is read.
STAMP_BATCH_MAX_BYTES = int(os.environ.get("STAMP_BATCH_MAX_BYTES", str(100 * 1024 * 1024)))
REQUEST_MAX_BYTES = int(os.environ.get("REQUEST_MAX_BYTES", str(1024 * 1024)))


# --------------------------------------------------------------------------- staff and logins (issue #13)
# A deposit of at least this many units is shown on the back office's overview (pending ones first).
LARGE_DEPOSIT_UNITS = int(os.environ.get("GATEWAY_LARGE_DEPOSIT_UNITS", "100000"))
# Sign-in throttles of the portal and the back office, "attempts/seconds" for one account, then for one
# client address: that many attempts at once, then one more each <seconds>. A refused attempt is refused
# even with the right password. A successful sign-in gives the account its attempts back.
LOGIN_THROTTLES = tuple(
    tuple(int(n) for n in pair.split("/"))
    for pair in os.environ.get("GATEWAY_LOGIN_THROTTLES", "5/60,20/30").split(",")
)
# Back-office sessions end after this much inactivity, and in any case this long after the sign-in.
BACKOFFICE_SESSION_IDLE_SECONDS = int(os.environ.get("GATEWAY_BACKOFFICE_SESSION_IDLE_SECONDS", str(30 * 60)))
BACKOFFICE_SESSION_MAX_SECONDS = int(os.environ.get("GATEWAY_BACKOFFICE_SESSION_MAX_SECONDS", str(10 * 60 * 60)))
# Issuer staff need a TOTP device. With self-enrolment a staff member without a device makes one at
# the first sign-in; without it (production) an administrator starts the enrolment
# (``manage.py staff_otp --username NAME``) and the person finishes it on the enrolment page.
BACKOFFICE_OTP_SELF_ENROL = env_bool("GATEWAY_BACKOFFICE_OTP_SELF_ENROL", False)
OTP_TOTP_ISSUER = os.environ.get("GATEWAY_OTP_ISSUER", "e-Meterai back office")


# --------------------------------------------------------------------------- metrics (issue #17)
# GET /metrics (Prometheus text, any host): the scraper sends ``Authorization: Bearer METRICS_TOKEN``
# or comes from an address in METRICS_ALLOWED_NETWORKS (comma-separated CIDRs); with neither set,
# nobody reads it. Web and worker processes count into files under METRICS_DIR, a directory per
# instance (``web-<host>-<pid>``, ``worker-<host>-<pid>``), emptied when that instance starts.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS")
METRICS_DIR = Path(os.environ.get("GATEWAY_METRICS_DIR", DATA_DIR / "metrics"))
METRICS_CACHE_SECONDS = float(os.environ.get("METRICS_CACHE_SECONDS", "5"))
# host:port where a Celery worker instance answers /metrics itself (hosts without a web instance); off by default.
WORKER_METRICS_BIND = os.environ.get("WORKER_METRICS_BIND", "")
# Retention (docs/operations.md, "Backups and data lifecycle"): a stamped PDF is kept this many days after
# it was made, an uploaded document this many days after its job ended; then the hourly sweeper deletes
# it. 0 keeps them for ever. Serials, jobs and the ledger are never purged.
STAMPED_DOCUMENT_RETENTION_DAYS = int(os.environ.get("STAMPED_DOCUMENT_RETENTION_DAYS", "90"))
UPLOAD_RETENTION_DAYS = int(os.environ.get("UPLOAD_RETENTION_DAYS", "7"))
# pg_dump / pg_restore for ``manage.py channel_dump`` / ``channel_restore`` are looked for here first.
PG_BIN_DIR = os.environ.get("PG_BIN_DIR", "")
# --------------------------------------------------------------------------- channel lifecycle
# Portal invitations and password resets go out by mail through Django's pluggable EMAIL_BACKEND
# (the console in development; SMTP or a provider's backend in production).
EMAIL_BACKEND = os.environ.get("GATEWAY_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("GATEWAY_EMAIL_FILE_PATH", str(BASE_DIR / ".data" / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("GATEWAY_FROM_EMAIL", "e-Meterai gateway <no-reply@localhost>")
EMAIL_HOST = os.environ.get("GATEWAY_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("GATEWAY_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("GATEWAY_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("GATEWAY_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("GATEWAY_EMAIL_TLS", False)
PORTAL_INVITATION_HOURS = int(os.environ.get("GATEWAY_PORTAL_INVITATION_HOURS", "72"))
PORTAL_RESET_MINUTES = int(os.environ.get("GATEWAY_PORTAL_RESET_MINUTES", "60"))
# --------------------------------------------------------------------------- the reference storefront (/shop/)
# On every channel's host unless switched off for all (GATEWAY_SHOP=false) or for some channels by code.
SHOP_ENABLED = env_bool("GATEWAY_SHOP", True)
SHOP_DISABLED_CHANNELS = env_list("GATEWAY_SHOP_DISABLED_CHANNELS")
# Who delivers the one-time sign-in link: a dotted path to a callable (channel, email, link). The console
# sender logs it (development); production names the channel's mail gateway adapter.
SHOP_LINK_SENDER = os.environ.get("GATEWAY_SHOP_LINK_SENDER", "faces.shop.signin.console_sender")
SHOP_LINK_TTL_SECONDS = int(os.environ.get("GATEWAY_SHOP_LINK_TTL_SECONDS", "900"))
# The placement preview (/shop/stamp/preview: a PDF parsed and a page rendered and analysed): (rate per
# second, burst) per signed-in applicant, and per client address (all channels' storefronts together).
# GATEWAY_SHOP_PREVIEW_RATE_LIMITS="1/20,5/60" sets both.
SHOP_PREVIEW_RATE_LIMITS = tuple(
    tuple(int(n) for n in pair.split("/"))
    for pair in os.environ.get("GATEWAY_SHOP_PREVIEW_RATE_LIMITS", "1/20,5/60").split(",")
)
