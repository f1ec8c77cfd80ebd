"""Outbound HTTP for Python agents, over WASI HTTP (``wasi:http/outgoing-handler``).

``get(url)`` and ``post(url, body)`` return a :class:`Response` whose body is
read as it arrives (``iter_chunks``) or whole (``read``, ``text``). Requests
reach only the destinations on the host's allow-list (empty by default:
``agent-host run --allow-http HOST``); a refused or failed request raises
:class:`HttpError` with WASI's error code.

Policy: one request at a time per call, blocking the job's ``run`` (the host
suspends the instance, not a thread); request bodies are written in 4 KiB
pieces, the most WASI's blocking write takes at once.
"""

from typing import Iterable, Iterator, Mapping, Optional, Union
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as _t
from wit_world.imports.wasi_io_streams import StreamError_Closed

#: The most bytes one blocking write takes (WASI 0.2).
_WRITE_CHUNK = 4096
#: How much one read asks for.
_READ_CHUNK = 64 * 1024

_METHODS = {
    "GET": _t.Method_Get,
    "HEAD": _t.Method_Head,
    "POST": _t.Method_Post,
    "PUT": _t.Method_Put,
    "DELETE": _t.Method_Delete,
    "PATCH": _t.Method_Patch,
    "OPTIONS": _t.Method_Options,
}


class HttpError(Exception):
    """A request that got no response; ``code`` is WASI's ``error-code`` value."""

    def __init__(self, code: object):
        name = type(code).__name__.removeprefix("ErrorCode_")
        detail = getattr(code, "value", None)
        super().__init__(f"{name}: {detail}" if detail is not None else name)
        self.code = code


class Response:
    """A response: status, headers, and its body as a stream."""

    def __init__(self, response: _t.IncomingResponse):
        self._response = response
        self.status: int = response.status()
        with response.headers() as fields:
            self.headers = {k.lower(): v.decode("latin-1") for k, v in fields.entries()}
        self._body: Optional[_t.IncomingBody] = response.consume()

    def iter_chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive; the body can be read once."""
        body, self._body = self._body, None
        if body is None:
            return
        with body:
            with body.stream() as stream:
                while True:
                    try:
                        chunk = stream.blocking_read(_READ_CHUNK)
                    except Err as err:
                        if isinstance(err.value, StreamError_Closed):
                            break
                        raise HttpError(err.value) from None
                    if chunk:
                        yield chunk

    def read(self) -> bytes:
        """The whole body."""
        return b"".join(self.iter_chunks())

    def text(self, encoding: str = "utf-8") -> str:
        """The whole body as text."""
        return self.read().decode(encoding)


def request(
    method: str,
    url: str,
    headers: Optional[Mapping[str, str]] = None,
    body: Union[bytes, str, Iterable[bytes], None] = None,
) -> Response:
    """Sends ``method url`` with ``headers`` and ``body`` (bytes, text or an
    iterable of byte chunks, streamed) and waits for the response's head."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    fields = _t.Fields.from_list(
        [(k, v.encode("latin-1")) for k, v in (headers or {}).items()]
    )
    outgoing = _t.OutgoingRequest(fields)
    method_type = _METHODS.get(method.upper())
    outgoing.set_method(method_type() if method_type else _t.Method_Other(method))
    outgoing.set_scheme(_t.Scheme_Http() if parts.scheme == "http" else _t.Scheme_Https())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query(parts.path + (f"?{parts.query}" if parts.query else "") or "/")
    out_body = outgoing.body()
    future = outgoing_handler.handle(outgoing, None)
    if isinstance(body, str):
        body = body.encode()
    chunks = [body] if isinstance(body, (bytes, bytearray)) else (body or [])
    with out_body.write() as stream:
        for chunk in chunks:
            for i in range(0, len(chunk), _WRITE_CHUNK):
                stream.blocking_write_and_flush(bytes(chunk[i : i + _WRITE_CHUNK]))
    _t.OutgoingBody.finish(out_body, None)
    with future:
        with future.subscribe() as ready:
            ready.block()
        got = future.get()
    if got is None or isinstance(got, Err):
        raise HttpError(_t.ErrorCode_InternalError("the response was taken already"))
    inner = got.value
    if isinstance(inner, Err):
        raise HttpError(inner.value)
    return Response(inner.value)


def get(url: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    """``GET url``."""
    return request("GET", url, headers)


def post(
    url: str,
    body: Union[bytes, str, Iterable[bytes]],
    headers: Optional[Mapping[str, str]] = None,
) -> Response:
    """``POST url`` with ``body``."""
    return request("POST", url, headers, body)
