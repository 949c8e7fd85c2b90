"""The browser chat (``bot serve``): a Gradio app over one :class:`~bot.core.Bot`.

One module per concern:

- :mod:`.render`: what the chat shows, escaped as text (no Gradio);
- :mod:`.watch`: the seed watcher and the index status line;
- :mod:`.guard`: the body limit and login throttle (ASGI), the client's address (IPv6 by /64), ``--auth``;
- :mod:`.gate`: the queue's door, where a client over its rate limit is answered before it takes a place;
- :mod:`.routes`: routes that only ever fail (clean 404s), the login page, ``/ask`` without a history;
- :mod:`.ratelimit`: the per-client rate limit (no Gradio);
- :mod:`.connections`: deadlines for reading a request, the cap on connections, quiet logs (uvicorn, no Gradio);
- :mod:`.gradio_fixes`: every change to Gradio's private internals, guarded by its version;
- :mod:`.app`: the page and the ``/ask`` API (:class:`~.app.ChatHandlers`, :func:`~.app.build_app`);
- :mod:`.server`: ``serve()``, the server's start-up, logs and shutdown.

Only :mod:`.app`, :mod:`.gradio_fixes` and :mod:`.server` import Gradio,
which takes seconds: the names below are imported when first used, so
``from bot.serve import DEFAULT_RATE_LIMIT`` (or importing :mod:`.render`)
does not pay for it.
"""

import importlib

from ..config import prepare_libraries

# Gradio reads its environment when imported; set it before any module here imports it.
prepare_libraries()

#: What the CLI and the tests use, and the module each lives in.
_EXPORTS = {
    "build_app": "app",
    "ChatHandlers": "app",
    "ServeError": "guard",
    "parse_auth": "guard",
    "launch_settings": "guard",
    "RateLimiter": "ratelimit",
    "DEFAULT_RATE_LIMIT": "ratelimit",
    "IndexStatus": "watch",
    "SeedWatcher": "watch",
    "serve": "server",
}

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "ChatHandlers",
    "IndexStatus",
    "RateLimiter",
    "SeedWatcher",
    "ServeError",
    "build_app",
    "launch_settings",
    "parse_auth",
    "serve",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
