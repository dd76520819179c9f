"""Per API key and per channel rate limits: GCRA in one Redis Lua script.

Each channel has two kinds of bucket, both configured on its ``Channel`` row (public schema):

- one per API key: ``rate_limit_per_key`` requests per second sustained, ``rate_limit_burst`` at once;
- one for the whole channel: ``rate_limit_per_channel`` per second, burst ``max(rate_limit_burst,
  rate_limit_per_channel)`` (at least one second of its rate, so one key's burst cannot drain it).

A request must pass both. The check is one ``EVALSHA`` (redis-py's ``register_script`` falls back to
loading the script on ``NOSCRIPT``): the script reads both buckets, and charges both only if both pass,
so a refused request costs nothing. Time comes from the Redis server (``TIME``), so every web process
agrees on it; both keys share one hash tag, so the script also runs unchanged on Redis Cluster.

GCRA keeps one number per bucket, the *theoretical arrival time* (TAT): the moment the bucket would be
full again. With emission interval ``T = 1/rate`` and tolerance ``tau = burst * T``, a request is
allowed when ``max(TAT, now) + T - now <= tau``; it then moves TAT forward by ``T``.

When Redis cannot be reached the limiter does not take the API down, and does not give up limiting
either: each process falls back to an in-memory GCRA with the same limits (so the effective limit is at
most the number of web processes times the configured one), logs one warning per outage, and tries
Redis again after :data:`REDIS_RETRY_SECONDS`. See ``docs/rate-limits.md``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Literal

import redis
from django.conf import settings
from django.db import connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)

MICROS = 1_000_000
REDIS_TIMEOUT_SECONDS = 0.25  # connect and read; a healthy Redis answers in well under 1 ms
REDIS_RETRY_SECONDS = 1.0  # after a failure, use the in-process limiter this long before trying again
LOCAL_MAX_BUCKETS = 50_000  # the fallback limiter's memory bound

# One round trip, atomic: read both buckets, charge both only if both pass.
# KEYS[1] the API key's bucket, KEYS[2] the channel's bucket, KEYS[3] the channel's API key epoch
# (read only: see ``gateway.apikeys``, whose cache it keeps exact at no extra round trip).
# ARGV[1], ARGV[2]: emission interval and tolerance (microseconds) of the key bucket;
# ARGV[3], ARGV[4]: the same for the channel bucket; ARGV[5]: cost of this request.
# Returns {allowed, key_remaining, key_reset_us, channel_remaining, channel_reset_us, retry_after_us, epoch}.
GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[5])
local allowed = 1
local retry_after = 0
local tats, new_tats, intervals, tolerances = {}, {}, {}, {}
for i = 1, 2 do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local over = new_tat - now - tolerance
  if over > 0 then
    allowed = 0
    if over > retry_after then retry_after = over end
  end
  tats[i], new_tats[i], intervals[i], tolerances[i] = tat, new_tat, interval, tolerance
end
local out = {allowed}
for i = 1, 2 do
  local tat = tats[i]
  if allowed == 1 then
    tat = new_tats[i]
    redis.call('SET', KEYS[i], tat, 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  local remaining = math.floor((tolerances[i] - (tat - now)) / intervals[i])
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = tat - now
end
out[#out + 1] = retry_after
out[#out + 1] = redis.call('GET', KEYS[3]) or '0'
return out
"""


# --------------------------------------------------------------------------- policies and decisions


@dataclass(frozen=True)
class Policy:
    """A sustained ``rate`` (requests per second) with a bucket of ``burst`` requests."""

    name: str
    rate: int
    burst: int
    per_seconds: int = 1  # ``rate`` requests per this many seconds (sign-in throttles: 1 per minute)

    @property
    def interval_us(self) -> int:
        return max(1, round(MICROS * self.per_seconds / self.rate))

    @property
    def tolerance_us(self) -> int:
        return self.burst * self.interval_us

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill: ``q / w`` is the sustained rate (rounded down)."""
        return max(1, math.ceil(self.burst * self.per_seconds / self.rate))


def policies_for(channel) -> tuple[Policy, Policy]:
    """The (per key, per channel) policies from the channel row. A 0 in the row counts as 1."""
    burst = max(1, channel.rate_limit_burst)
    per_key = Policy("key", rate=max(1, channel.rate_limit_per_key), burst=burst)
    per_channel_rate = max(1, channel.rate_limit_per_channel)
    per_channel = Policy("channel", rate=per_channel_rate, burst=max(burst, per_channel_rate))
    return per_key, per_channel


@dataclass(frozen=True)
class BucketState:
    policy: Policy
    remaining: int  # requests that would pass right now
    reset: float  # seconds until the bucket is full again


@dataclass(frozen=True)
class Decision:
    allowed: bool
    buckets: tuple[BucketState, BucketState]  # (key, channel)
    retry_after: float  # seconds until a refused request could pass; 0.0 when allowed
    source: Literal["redis", "local"]
    keys_epoch: bytes | None = None  # the channel's API key epoch (None from the fallback)
    reads: list | None = None  # answers to the caller's piggybacked ``reads`` (None: not read)
    cost: int = 1  # what this request costs (a refused one: what the next try will cost)

    @property
    def remaining(self) -> int:
        return min(b.remaining for b in self.buckets)

    @property
    def reset(self) -> float:
        return max(b.reset for b in self.buckets)

    def seconds_to_reset(self, bucket: BucketState) -> int:
        """``RateLimit``'s ``t`` for ``bucket``: with room left (``r`` > 0), the seconds until it is full
        again; empty (``r`` = 0), the seconds until the next request fits (one costing what this one
        did, when refused). So on a 429 ``Retry-After`` is the largest ``t`` of the empty buckets: the
        headers never disagree (``r=0;t=2`` with ``Retry-After: 1`` did)."""
        if bucket.remaining > 0:
            return math.ceil(bucket.reset)
        cost = 1 if self.allowed else self.cost
        wait_us = round(bucket.reset * MICROS) + bucket.policy.interval_us * cost - bucket.policy.tolerance_us
        return max(1, math.ceil(wait_us / MICROS))

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10), plus
        ``Retry-After`` when refused."""
        headers = {
            "RateLimit-Policy": ", ".join(
                f'"{b.policy.name}";q={b.policy.burst};w={b.policy.window}' for b in self.buckets
            ),
            "RateLimit": ", ".join(
                f'"{b.policy.name}";r={b.remaining};t={self.seconds_to_reset(b)}' for b in self.buckets
            ),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class RateLimited(ApplicationError):
    code = "rate_limited"
    http_status = 429
    title = "Too many requests"
    what_to_do = "Wait `Retry-After` seconds; `RateLimit` / `RateLimit-Policy` say how much is left."

    def __init__(self, decision: Decision, *, who: str = "This API key or channel"):
        super().__init__(
            f"{who} sent more requests than its limit allows. "
            f"Retry after {max(1, math.ceil(decision.retry_after))} s; the RateLimit header shows what is left."
        )
        self.decision = decision
        self.headers = decision.headers()


# --------------------------------------------------------------------------- the Redis side

_clients: dict[str, tuple[redis.Redis, object]] = {}
_clients_lock = threading.Lock()


def _client_and_script(url: str):
    """A client on a module-level pool for ``url`` (one per URL, made once) and the registered script."""
    hit = _clients.get(url)
    if hit is None:
        with _clients_lock:
            hit = _clients.get(url)
            if hit is None:
                pool = redis.ConnectionPool.from_url(
                    url,
                    socket_timeout=REDIS_TIMEOUT_SECONDS,
                    socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                    retry=Retry(NoBackoff(), 0),  # the fallback below is the retry policy
                )
                client = redis.Redis(connection_pool=pool)
                hit = (client, client.register_script(GCRA_LUA))
                _clients[url] = hit
    return hit


def _namespace() -> str:
    """Keeps deployments (databases) that share one Redis apart; tests set ``RATE_LIMIT_NAMESPACE``."""
    return getattr(settings, "RATE_LIMIT_NAMESPACE", None) or connection.settings_dict["NAME"]


def _tag(channel_id: int) -> str:
    return f"{{{_namespace()}:{channel_id}}}"  # one hash tag: a channel's keys live in one cluster slot


def bucket_keys(*, channel, api_key_id: int) -> tuple[str, str]:
    tag = _tag(channel.pk)
    return f"rl:{tag}:key:{api_key_id}", f"rl:{tag}:channel"


def keys_epoch_key(*, channel_id: int) -> str:
    return f"rl:{_tag(channel_id)}:keys-epoch"


def read_keys_epoch(*, channel_id: int) -> bytes | None:
    """The channel's API key epoch (``b"0"`` before the first change), or None when Redis cannot say."""
    if time.monotonic() < _redis_retry_at:
        return None
    try:
        value = _client_and_script(settings.REDIS_URL)[0].get(keys_epoch_key(channel_id=channel_id))
    except redis.RedisError as exc:
        _note_redis_failure(exc)
        return None
    return value if value is not None else b"0"


def bump_keys_epoch(*, channel_id: int) -> bool:
    """Move the channel's API key epoch on (every cached key of it is re-read). False if Redis is down."""
    try:
        _client_and_script(settings.REDIS_URL)[0].incr(keys_epoch_key(channel_id=channel_id))
    except redis.RedisError:
        return False
    return True


def _decide(policies, raw, source, reads=None, cost: int = 1) -> Decision:
    allowed, key_remaining, key_reset_us, channel_remaining, channel_reset_us, retry_after_us = map(int, raw[:6])
    return Decision(
        allowed=bool(allowed),
        buckets=(
            BucketState(policies[0], key_remaining, key_reset_us / MICROS),
            BucketState(policies[1], channel_remaining, channel_reset_us / MICROS),
        ),
        retry_after=retry_after_us / MICROS,
        source=source,
        keys_epoch=raw[6] if len(raw) > 6 else None,
        reads=reads,
        cost=cost,
    )


# --------------------------------------------------------------------------- the fallback


class LocalLimiter:
    """The same GCRA in process memory, for when Redis is unreachable. Thread-safe, bounded in size."""

    def __init__(self, max_buckets: int = LOCAL_MAX_BUCKETS):
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max = max_buckets

    def check(self, keys: tuple[str, str], policies: tuple[Policy, Policy], cost: int = 1) -> list[int]:
        now = time.monotonic_ns() // 1000
        with self._lock:
            if len(self._tats) >= self._max:
                self._tats = {k: v for k, v in self._tats.items() if v > now}
                if len(self._tats) >= self._max:  # still full of live buckets: start over, never grow
                    self._tats.clear()
            tats, new_tats, retry_after, allowed = [], [], 0, 1
            for key, policy in zip(keys, policies, strict=True):
                tat = max(self._tats.get(key, now), now)
                new_tat = tat + policy.interval_us * cost
                over = new_tat - now - policy.tolerance_us
                if over > 0:
                    allowed = 0
                    retry_after = max(retry_after, over)
                tats.append(tat)
                new_tats.append(new_tat)
            out = [allowed]
            for key, policy, tat, new_tat in zip(keys, policies, tats, new_tats, strict=True):
                if allowed:
                    tat = self._tats[key] = new_tat
                out += [max(0, (policy.tolerance_us - (tat - now)) // policy.interval_us), tat - now]
            out.append(retry_after)
            return out

    def clear(self) -> None:
        with self._lock:
            self._tats.clear()


local_limiter = LocalLimiter()
_redis_retry_at = 0.0  # monotonic time before which Redis is not tried again


def _note_redis_failure(exc: Exception) -> None:
    global _redis_retry_at
    first = _redis_retry_at == 0.0
    _redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
    if first:
        logger.warning(
            "rate limiter: Redis unreachable, using the per-process fallback limiter",
            extra={"error": type(exc).__name__},
        )


def _note_redis_recovered() -> None:
    global _redis_retry_at
    if _redis_retry_at:
        _redis_retry_at = 0.0
        logger.warning("rate limiter: Redis reachable again, fallback limiter off")


def reset_fallback_state() -> None:
    """Forget the outage state and the in-process buckets (tests, and after reconfiguration)."""
    global _redis_retry_at
    _redis_retry_at = 0.0
    local_limiter.clear()


# --------------------------------------------------------------------------- the API


def _round_trip(client: redis.Redis, commands: list[tuple]) -> list:
    """``commands`` in one write and their replies in order, error replies as exception values: what a
    non-transactional pipeline does, on a connection of the client's pool, without the pipeline's
    per-call machinery (about a fifth of this path's CPU). A connection that fails mid-way is closed,
    never returned to the pool with replies unread."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.exceptions.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def _script_with_reads(client, script, keys, args, reads) -> tuple[list, list]:
    """The rate-limit script and ``reads`` in one round trip (loading the script on NOSCRIPT)."""
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args), *reads]
    for attempt in range(2):
        results = _round_trip(client, commands)
        if attempt == 0 and isinstance(results[0], redis.exceptions.NoScriptError):
            client.script_load(GCRA_LUA)
            continue
        failed = next((r for r in results if isinstance(r, Exception)), None)
        if failed is not None:
            raise failed
        return results[0], results[1:]
    raise AssertionError("unreachable")  # pragma: no cover


def check_rate_limit(*, channel, api_key_id: int, cost: int = 1, reads: tuple = ()) -> Decision:
    """Charge one request (``cost``) to the key's and the channel's buckets if both have room.

    ``reads``: other Redis commands (read-only, e.g. ``("GET", key)``) the caller needs on this request,
    sent in the same round trip; their answers are ``Decision.reads`` (None when Redis was not reached).
    Never raises for an unreachable Redis: the in-process fallback answers instead.
    """
    return _check(
        policies_for(channel),
        bucket_keys(channel=channel, api_key_id=api_key_id),
        keys_epoch_key(channel_id=channel.pk),
        cost,
        reads,
    )


def _check(policies, keys: tuple[str, str], epoch_key: str, cost: int, reads: tuple = ()) -> Decision:
    """Both buckets in one script call (the fallback limiter while Redis is unreachable)."""
    if time.monotonic() >= _redis_retry_at:
        client, script = _client_and_script(settings.REDIS_URL)
        args = (policies[0].interval_us, policies[0].tolerance_us, policies[1].interval_us, policies[1].tolerance_us)
        try:
            raw, answers = _script_with_reads(client, script, (*keys, epoch_key), (*args, cost), reads)
        except redis.RedisError as exc:
            _note_redis_failure(exc)
        else:
            _note_redis_recovered()
            return _decide(policies, raw, "redis", answers if reads else None, cost)
    return _decide(policies, local_limiter.check(keys, policies, cost), "local", cost=cost)


def public_policies() -> tuple[Policy, Policy]:
    """(per client address, all clients) for the issuer's public verification endpoints."""
    (client_rate, client_burst), (all_rate, all_burst) = settings.PUBLIC_RATE_LIMITS
    return Policy("client", rate=client_rate, burst=client_burst), Policy("public", rate=all_rate, burst=all_burst)


def client_address(request) -> str:
    """Who is asking: ``REMOTE_ADDR``, or with ``NUM_PROXIES`` trusted proxies in front, the address the
    outermost of them saw (counted from the right of ``X-Forwarded-For``, which a client can only
    prepend to)."""
    proxies = settings.NUM_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR") or "unknown"


def client_bucket(address: str) -> str:
    """The bucket a client address is charged to: an IPv4 address itself (an IPv4-mapped IPv6 one
    too), an IPv6 address's /64, which is what one subscriber gets (a client choosing a fresh address
    in its /64 for each request would otherwise have a fresh bucket each time)."""
    import ipaddress

    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


PUBLIC_WHO = "Your address (or everyone together)"


def enforce_public_rate_limit(request, *, cost: int = 1) -> Decision:
    """:func:`check_public_rate_limit` for ``request``'s client (its /64 for IPv6), raising
    :class:`RateLimited` when refused."""
    decision = check_public_rate_limit(client=client_bucket(client_address(request)), cost=cost)
    if not decision.allowed:
        raise RateLimited(decision, who=PUBLIC_WHO)
    return decision


def check_public_rate_limit(*, client: str, cost: int = 1) -> Decision:
    """Charge a request of the public verification endpoints (no API key) to its client address's
    bucket and to the bucket all clients share: one address cannot flood them, and all of them
    together cannot take the issuer's verification down. ``cost``: a document upload costs more than a
    serial lookup. Same script, headers, 429 and Redis fallback as the storefront's limits."""
    tag = _tag("public")
    return _check(public_policies(), (f"rl:{tag}:client:{client}", f"rl:{tag}:all"), f"rl:{tag}:epoch", cost)


def shop_preview_policies() -> tuple[Policy, Policy]:
    """(per signed-in applicant, per client address) for the storefront's placement preview."""
    (user_rate, user_burst), (client_rate, client_burst) = settings.SHOP_PREVIEW_RATE_LIMITS
    return (
        Policy("user", rate=max(1, user_rate), burst=max(1, user_burst)),
        Policy("client", rate=max(1, client_rate), burst=max(1, client_burst)),
    )


SHOP_PREVIEW_WHO = "You (or your address)"


def check_shop_preview(*, channel_id: int, customer_id: str, client: str, cost: int = 1) -> Decision:
    """Charge a placement preview of the storefront (``/shop/stamp/preview``: a PDF parsed, a page
    rendered and searched for an empty place) to the signed-in applicant's bucket and to the client
    address's bucket (one for all channels' storefronts: they share the renderer). Same script,
    headers, 429 and Redis fallback as the API's limits."""
    tag = _tag("shop-preview")
    keys = (f"rl:{tag}:user:{channel_id}:{customer_id}", f"rl:{tag}:client:{client}")
    return _check(shop_preview_policies(), keys, f"rl:{tag}:epoch", cost)


def enforce_shop_preview_rate_limit(request, *, cost: int = 1) -> Decision:
    """:func:`check_shop_preview` for ``request``'s channel, applicant (``request.shop_customer``) and
    client address (its /64 for IPv6), raising :class:`RateLimited` when refused."""
    decision = check_shop_preview(
        channel_id=request.tenant.pk,
        customer_id=str(request.shop_customer.pk),
        client=client_bucket(client_address(request)),
        cost=cost,
    )
    if not decision.allowed:
        raise RateLimited(decision, who=SHOP_PREVIEW_WHO)
    return decision


def enforce_rate_limit(*, channel, api_key_id: int, cost: int = 1) -> Decision:
    """:func:`check_rate_limit`, raising :class:`RateLimited` (429, with headers) when refused."""
    decision = check_rate_limit(channel=channel, api_key_id=api_key_id, cost=cost)
    if not decision.allowed:
        raise RateLimited(decision)
    return decision


# --------------------------------------------------------------------------- sign-in throttles


def login_policies() -> tuple[Policy, Policy]:
    """(per account, per client address) sign-in policies from ``settings.LOGIN_THROTTLES``."""
    (account_burst, account_every), (client_burst, client_every) = settings.LOGIN_THROTTLES
    return (
        Policy("account", rate=1, burst=max(1, account_burst), per_seconds=max(1, account_every)),
        Policy("client", rate=1, burst=max(1, client_burst), per_seconds=max(1, client_every)),
    )


def _login_keys(*, realm: str, account: str) -> tuple[str, str]:
    tag = _tag(f"login:{realm}")
    # Usernames are hashed: any length or character, one bounded key.
    digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
    return f"rl:{tag}:account:{digest}", f"rl:{tag}"


def check_login_attempt(*, realm: str, account: str, client: str) -> Decision:
    """Charge one sign-in attempt to the account's bucket and to the client address's bucket of
    ``realm`` (the back office, or a channel's portal), before the password is checked: a refused
    attempt is never checked, so even the right password waits until the bucket has room again
    (``Decision.retry_after``). Same script and Redis fallback as the API's limits."""
    account_key, prefix = _login_keys(realm=realm, account=account)
    return _check(login_policies(), (account_key, f"{prefix}:client:{client}"), f"{prefix}:epoch", 1)


def forget_login_attempts(*, realm: str, account: str) -> None:
    """After a successful sign-in the account has its attempts back (the address's bucket is not
    refilled: one good account must not buy an address more guesses on others)."""
    account_key, _ = _login_keys(realm=realm, account=account)
    with local_limiter._lock:
        local_limiter._tats.pop(account_key, None)
    if time.monotonic() < _redis_retry_at:
        return
    try:
        _client_and_script(settings.REDIS_URL)[0].delete(account_key)
    except redis.RedisError as exc:
        _note_redis_failure(exc)
