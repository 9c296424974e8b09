"""Request bodies streamed to a file under a size limit: multipart/form-data (the file in field
`file`, or `image_file` as remove.bg and Clipdrop name it; other fields are parameters) or the
raw body itself.

Nothing is held in memory beyond one chunk, and nothing is spooled anywhere but the file given
(Starlette's form parser would spool the whole upload to the system's temporary folder first,
without a limit). A body over the limit stops being written at the limit (HTTP 413).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from starlette.requests import ClientDisconnect, Request

FILE_FIELDS = ("file", "image_file")
MAX_FIELD_BYTES = 8192
MAX_FIELDS = 32
#: Multipart framing and parameter fields on top of the file itself.
FORM_SLACK = 64 * 1024
#: A body over the limit is read on (and thrown away) this far, so the client gets to read the
#: 413 answer instead of a reset connection; beyond it the connection is closed.
DRAIN_BYTES = 16 * 1024 * 1024


class UploadError(Exception):
    """The body cannot be taken; `status` is the HTTP status to answer with."""

    status = 400


class TooLarge(UploadError):
    status = 413


@dataclass
class Received:
    """What a request carried: the file written, the client's name for it (display only), fields."""

    path: Path
    name: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def display_name(filename: str | None, default: str = "upload") -> str:
    """The client's file name as text safe to show and to put in a header: its last path
    component only, no control or separator characters, at most 120 characters. Never used
    to build a path."""
    if not filename:
        return default
    name = re.split(r"[/\\]", filename)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"<>|:*?')
    name = name.strip(" .")[:120]
    return name or default


def too_large_message(limit: int) -> str:
    return f"the upload is larger than this server's limit of {format_size(limit)}"


def format_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


async def receive(request: Request, dest: Path, limit: int) -> Received:
    """Stream the request's file into `dest` (created; must not exist); UploadError on anything
    wrong, with `dest` removed."""
    stream = request.stream()  # one iterator: what is left of it after an error is drained from it
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_SLACK:
        if int(declared) <= limit + DRAIN_BYTES:
            await _drain(stream, DRAIN_BYTES)
        raise TooLarge(too_large_message(limit))
    content_type = request.headers.get("content-type", "")
    sink = _FileSink(dest, limit)
    try:
        if content_type.lower().startswith("multipart/form-data"):
            return await _multipart(stream, sink, content_type)
        return await _raw(stream, sink)
    except TooLarge:
        sink.discard()
        await _drain(stream, DRAIN_BYTES)
        raise
    except BaseException:
        sink.discard()
        raise


class _FileSink:
    """The destination file, opened on the first byte, counting against the limit."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit
        self.size = 0
        self._file: Any = None

    def open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)

    @property
    def opened(self) -> bool:
        return self._file is not None

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(too_large_message(self.limit))
        self._file.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        try:
            self.close()
        except OSError:
            pass
        self._file = None
        self.path.unlink(missing_ok=True)


async def _raw(stream: AsyncIterator[bytes], sink: _FileSink) -> Received:
    sink.open()
    try:
        async for chunk in stream:
            sink.write(chunk)
    except ClientDisconnect:
        raise UploadError("the upload was cut off before it ended") from None
    sink.close()
    if sink.size == 0:
        raise UploadError("no file: send it as the multipart field 'file' or as the request body")
    return Received(sink.path, display_name(None), sink.size)


async def _multipart(stream: AsyncIterator[bytes], sink: _FileSink, content_type: str) -> Received:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UploadError("multipart/form-data without a boundary")
    form = _FormState(sink)
    try:
        parser = MultipartParser(boundary, cast(Any, form.callbacks()))
    except (MultipartParseError, ValueError) as error:
        raise UploadError(f"malformed multipart body ({error})") from None
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > sink.limit + FORM_SLACK:  # fields or framing too large on their own
                raise TooLarge(too_large_message(sink.limit))
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        raise UploadError("the upload was cut off before it ended") from None
    except MultipartParseError as error:
        raise UploadError(f"malformed multipart body ({error})") from None
    if not form.ended:
        raise UploadError("the multipart body ended early (no closing boundary)")
    if not sink.opened:
        raise UploadError("no file: send it as the multipart field 'file' or as the request body")
    if sink.size == 0:
        raise UploadError("the uploaded file is empty")
    return Received(sink.path, display_name(form.filename), sink.size, form.fields)


class _FormState:
    """python-multipart's callbacks: headers of each part, the file part into the sink, fields kept."""

    def __init__(self, sink: _FileSink) -> None:
        self.sink = sink
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.ended = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._name, self._value = b"", b""
        self._part: str | None = None  # "file", "field" or "skip"
        self._field_name = ""
        self._field = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._finished,
        }

    def _begin(self) -> None:
        self._headers, self._name, self._value = [], b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._name.strip().lower(), self._value.strip()))
        self._name, self._value = b"", b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = next((v for k, v in self._headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name in FILE_FIELDS:
            if self.sink.opened:
                raise UploadError("more than one file in the request; send one file per request")
            self.sink.open()
            self.filename = filename.decode("utf-8", "replace") if filename is not None else None
            self._part = "file"
        elif filename is not None:
            raise UploadError(f"unexpected file field {name[:40]!r}; send the file as the field 'file'")
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise UploadError(f"more than {MAX_FIELDS} form fields")
            self._part, self._field_name, self._field = "field", name, bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self.sink.write(memoryview(data)[start:end])
        elif self._part == "field":
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD_BYTES:
                raise UploadError(f"form field {self._field_name[:40]!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if self._part == "file":
            self.sink.close()
        elif self._part == "field":
            try:
                self.fields[self._field_name] = self._field.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(f"form field {self._field_name[:40]!r} is not UTF-8 text") from None
        self._part = None

    def _finished(self) -> None:
        self.ended = True


async def _drain(stream: AsyncIterator[bytes], most: int) -> None:
    """Read and drop up to `most` more bytes of the body (see DRAIN_BYTES)."""
    seen = 0
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > most:
                break
    except (ClientDisconnect, RuntimeError):  # gone, or the stream was consumed already
        pass
