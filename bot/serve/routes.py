"""Routes the chat closes, and what a visitor sees before logging in (plain ASGI middleware).

- :class:`KnownRoutes`: an unknown API endpoint or event gets a clean 404, not a 500;
- :class:`PrivateUntilLogin`: with a password set, the login page says nothing about the chat;
- :class:`OptionalHistory`: a plain HTTP call of ``/ask`` with the question alone gets no history.
"""

import json
import re

# -- routes that only ever fail ----------------------------------------------------------------

_NAMED_CALL = re.compile(r"/gradio_api/(?:call/v2|call|run|api)/([^/]+)(?:/[^/]*)?/?$")
_BY_INDEX = re.compile(r"/gradio_api/(?:queue/join|run/predict|api/predict)/?$")
_PROXY = re.compile(r"/gradio_api/proxy=")


class KnownRoutes:
    """ASGI middleware: a request for an API endpoint or event the app does not have gets a clean 404.

    Gradio answers an unknown ``api_name`` or ``fn_index`` with a 500 and a
    traceback in the log, and so a ``/proxy=`` URL it cannot parse (the chat
    proxies nothing: that route is closed). ``api_names`` are the app's named
    endpoints (``ask``); ``fn_ids`` its events' numbers, which the page sends
    as ``fn_index``.
    """

    def __init__(self, app, api_names: set[str], fn_ids: set[int]):
        self.app = app
        self.api_names = set(api_names) | {"predict"}  # the page's own events go to /run/predict
        self.fn_ids = set(fn_ids)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _PROXY.search(path):
            await self._refuse(scope, receive, send, "Not Found")
            return
        named = _NAMED_CALL.search(path)
        if named and named.group(1) not in self.api_names:
            await self._refuse(scope, receive, send, f"There is no API endpoint named {named.group(1)!r}.")
            return
        if scope.get("method") == "POST" and _BY_INDEX.search(path):
            body, receive = await _read_body(receive)
            try:
                fn_index = json.loads(body).get("fn_index") if body else None
            except (ValueError, AttributeError):
                fn_index = None  # not JSON (or not an object): Gradio's own validation answers
            if fn_index is not None and (not isinstance(fn_index, int) or fn_index not in self.fn_ids):
                await self._refuse(scope, receive, send, f"There is no event number {fn_index!r}.")
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope, receive, send, detail: str):
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": detail}, status_code=404)(scope, receive, send)


async def _read_body(receive):
    """The whole request body, and a ``receive`` that replays it to the app."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


# -- what a visitor sees before logging in -----------------------------------------------------

#: Served to nobody when a password is set: the PWA manifest names the bot (and the PWA is off).
_HIDDEN_WITH_A_PASSWORD = re.compile(r"/manifest\.json/?$")
_API_INFO = re.compile(rb"window\.gradio_api_info\s*=\s*.*?;\s*</script>", re.S)


class PrivateUntilLogin:
    """ASGI middleware, with a password set: the login page says nothing about the chat.

    Gradio's login page embeds the API's description (``/ask``'s parameters)
    in ``window.gradio_api_info`` even before the visitor logs in; this
    empties it in a page that asks for a login (its embedded config has
    ``"auth_required": true``). ``/manifest.json`` is not served at all.
    FastAPI's own ``/openapi.json`` is switched off by the app (see
    :class:`~bot.serve.app.ChatApp`).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _HIDDEN_WITH_A_PASSWORD.search(path):
            from starlette.responses import JSONResponse

            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        if path.rstrip("/") != scope.get("root_path", "").rstrip("/"):  # only the page itself
            await self.app(scope, receive, send)
            return
        start, parts = None, []

        async def held_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(parts)
            if b'"auth_required":true' in body.replace(b" ", b""):
                body = _API_INFO.sub(b"window.gradio_api_info = null;</script>", body)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, held_send)


class OptionalHistory:
    """ASGI middleware: ``POST /gradio_api/call/ask`` with the question alone gets no history.

    ``gradio_client`` fills in the optional ``history``; Gradio's plain HTTP
    route does not, and answers ``{"data": ["..."]}`` (all a curl user sends)
    with an empty error. This adds the missing ``null``, nothing else; the
    body is already capped by :class:`~bot.serve.guard.BodyLimit`, which runs
    first.
    """

    ROUTE = "/gradio_api/call/ask"

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        asks = scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith(self.ROUTE)
        if not asks:
            await self.app(scope, receive, send)
            return
        chunks, message = [], {"more_body": True}
        while message.get("more_body"):
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
        body = b"".join(chunks)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None  # Gradio answers it as it would have
        if isinstance(payload, dict) and isinstance(payload.get("data"), list) and len(payload["data"]) == 1:
            payload["data"].append(None)
            body = json.dumps(payload).encode()
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
