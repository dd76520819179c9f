"""A tiny HTTP client for end-to-end tests: Host header per channel, cookies, JSON."""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class HttpClient:
    def __init__(self, base: str, host: str, key: str | None = None):
        self.base, self.host, self.key = base, host, key
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(
        self, method: str, path: str, *, json_body=None, form=None, data=None, headers=None, files=None
    ) -> Answer:
        hdrs = {"Host": self.host, **(headers or {})}
        if self.key:
            hdrs["Authorization"] = f"Bearer {self.key}"
        if files is not None:
            data, hdrs["Content-Type"] = multipart(form or {}, files)
        elif json_body is not None:
            data, hdrs["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)  # noqa: S310
        try:
            with self.opener.open(req, timeout=60) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())

    def get(self, path: str, **kw) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Answer:
        return self.request("POST", path, **kw)

    def csrf_form(self, path: str, fields: dict) -> Answer:
        """GET a page, then POST its form back with the CSRF token, as a browser would."""
        page = self.get(path, headers={"Accept": "text/html"})
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.post(
            path,
            form={"csrfmiddlewaretoken": token, **fields},
            headers={"Referer": f"http://{self.host}{path}", "Accept": "text/html"},
        )


def multipart(fields: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """Encode form fields and (field, filename, bytes) files as multipart/form-data."""
    boundary = f"----e2e{secrets.token_hex(12)}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
