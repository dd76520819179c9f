"""The ASGI entry point, with the request body limits applied before Django sees the request.

Django's ASGI handler reads a request's whole body (spooling it to disk) before any middleware runs,
so ``gateway.middleware.BodyLimitMiddleware`` would come too late here. :class:`BodyLimitApplication`
refuses a ``Content-Length`` over the path's limit (``gateway.http.bodylimits``) without receiving a
byte, and stops a body without one (chunked) as soon as it passes the limit: Django is told the client
went away, and the client gets the 413.
"""

import json
import os
import re
import secrets

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings.local")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class BodyLimitApplication:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from gateway.http.bodylimits import body_limit

        path = scope["path"]
        limit, _ = body_limit(path)
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._refuse(send, path, int(declared), headers)
        state = {"received": 0, "over": False, "started": False}

        async def capped_receive():
            if state["over"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True  # Django stops reading (RequestAborted) and answers nothing
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, capped_receive, watched_send)
        if state["over"] and not state["started"]:
            await self._refuse(send, path, None, headers)

    @staticmethod
    async def _refuse(send, path: str, length, headers) -> None:
        from gateway.http.bodylimits import too_large

        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(12)}"
        exc = too_large(path, length)
        body = json.dumps({**exc.as_problem(), "request_id": request_id}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": exc.http_status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


application = BodyLimitApplication(get_asgi_application())
