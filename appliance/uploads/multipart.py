"""Streaming multipart/form-data: python-multipart's push parser turned into a list of events per chunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from python_multipart.multipart import MultipartParser, parse_options_header

from appliance.errors import BadRequest

EventKind = Literal["begin", "data", "end"]
MAX_BOUNDARY = 70


@dataclass
class FormPart:
    """One part's headers: the form field name, the client's file name (never used as a path)."""

    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest("body must be multipart/form-data with a boundary")
    if len(boundary) > MAX_BOUNDARY:
        raise BadRequest(f"the multipart boundary is over {MAX_BOUNDARY} characters (RFC 2046)")
    return boundary


class StreamingForm:
    """Feed it chunks as they arrive; it answers with (kind, part, data) events, holding nothing whole."""

    def __init__(self, boundary: bytes) -> None:
        self.events: list[tuple[EventKind, FormPart, bytes]] = []
        self.part = FormPart()
        self.done = False
        self._field = bytearray()
        self._value = bytearray()
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def feed(self, chunk: bytes) -> list[tuple[EventKind, FormPart, bytes]]:
        try:
            self.parser.write(chunk)
        except Exception as exc:  # the parser's own errors: a malformed body
            raise BadRequest(f"malformed multipart body: {exc}") from None
        events, self.events = self.events, []
        return events

    def finish(self) -> None:
        if not self.done:
            raise BadRequest("multipart body ended before its closing boundary")

    def _part_begin(self) -> None:
        self.part = FormPart()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        value = self._value.decode("latin-1").strip()  # lossless: names are decoded as UTF-8 below
        self.part.headers[name] = value
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get("content-disposition", "").encode("latin-1"))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        self.part.content_type = self.part.headers.get("content-type")
        self.events.append(("begin", self.part, b""))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", self.part, bytes(data[start:end])))

    def _part_end(self) -> None:
        self.events.append(("end", self.part, b""))

    def _end(self) -> None:
        self.done = True
