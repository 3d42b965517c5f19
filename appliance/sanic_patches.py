"""Fixes to Sanic applied at import: a request line with a control character gets its 400, not a dropped connection."""

from __future__ import annotations

from typing import Any

from sanic.exceptions import BadRequest
from sanic.http.http1 import Http

_create_empty_request = Http.create_empty_request


def _create_empty_request_for_any_url(self: Any) -> None:
    # Sanic builds a stand-in request to render the error, from the same URL that was refused:
    # for "/\x00" that raises again and the client gets no answer at all. Render it for "*" instead.
    try:
        _create_empty_request(self)
    except BadRequest:
        self.url = None
        _create_empty_request(self)


Http.create_empty_request = _create_empty_request_for_any_url  # type: ignore[method-assign]
