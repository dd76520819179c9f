"""Domain errors.

Services raise subclasses of :class:`ApplicationError`; the API layer turns each into an
``application/problem+json`` answer (see ``gateway.http.problems``).  ``code`` is stable and
documented in ``docs/errors.md``; ``message`` is written for a person who has to act on it.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """A refusal a person can act on. Each subclass states its stable ``code``, its ``http_status``,
    a short ``title``, and ``what_to_do``: the line the error catalogue (``docs/errors.md``, generated
    by ``manage.py errors_doc``) and the OpenAPI documents show for it. ``headers`` (e.g.
    ``Retry-After``) may be set on an instance."""

    code = "application_error"
    http_status = 400
    title = "The request could not be carried out"
    what_to_do = ""
    # A refusal that sheds load on purpose (a 503 during a surge) is answered, not logged as a server
    # error: thousands a second would only cost the CPU the refusal saves.
    sheds_load = False

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def as_problem(self) -> dict:
        body = {
            "type": f"https://errors.e-meterai.example/{self.code}",
            "title": self.title,
            "status": self.http_status,
            "detail": self.message,
            "code": self.code,
        }
        body.update(self.extra)
        return body


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404
    title = "Not found"
    what_to_do = "The path or object does not exist (or is not yours). Check the id and the URL."


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    http_status = 503
    title = "Temporarily unavailable"
    what_to_do = (
        "A service the gateway depends on is briefly unavailable; nothing was done. Retry after `Retry-After` seconds."
    )
