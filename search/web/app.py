"""The HTTP app of ``search serve``: the CLI's queries over HTTP, and nothing else.

One ``GET`` endpoint per CLI query (``/similar``, ``/cold-start``, ``/recommend``, ``/songs``,
``/tags``). Query parameters are the CLI's options without the dashes (``?id=2172&min-plays=5``,
repeat ``tag=`` for several tags), and they are parsed by the CLI's own click options and answered
by the CLI's own ``ask_*`` functions over the one ``SongSearch``, so an answer (``results``) equals
the CLI's ``--json`` array and an error's one line equals the CLI's. Requests are answered one at a
time on the event loop: each call pins the live version (``SongSearch._pin``), so a new version
published by ``ingest`` is served at once and no answer mixes two; ``--workers N`` runs N processes.
"""

from __future__ import annotations

import gc
import hmac
import os
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Callable

import click
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from search import cli
from search.api import Answer, SongSearch
from search.clikit import flag_for
from search.contract import ArgumentError, NotFoundError, Settings, SongSearchError, StoreUnavailableError
from search.web.docs import docs_page, openapi_parameters
from search.web.workers import reuse_port_supported, run_workers

#: What one request may ask (also in the OpenAPI docs and README.md).
MAX_LIMIT = 100  # songs (or tags) in one answer
MAX_TEXT = 200  # characters in one parameter value
MAX_LIST = 50  # songs in context/like/dislike, or repeats of tag/exclude-artist
MAX_QUERY_STRING = 4096  # bytes
MAX_BODY = 1024  # bytes: every endpoint is a GET
OPEN_PATHS = {"/", "/docs", "/openapi.json"}  # no data: reachable without the API key
API_KEY_HEADER = "X-API-Key"
SWITCH_VALUES = {"": True, "1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def answer_object(answer: Answer) -> dict:
    """An answer as JSON: ``results`` is exactly the CLI's ``--json`` array."""
    return {"query": answer.query, "skipped": list(answer.skipped), "note": answer.note, "results": [r.to_dict() for r in answer]}


#: endpoint -> (the CLI's API call for it, its JSON)
QUERIES: dict[str, tuple[Callable, Callable]] = {
    "similar": (cli.ask_similar, answer_object),
    "cold-start": (cli.ask_cold_start, answer_object),
    "recommend": (cli.ask_recommend, answer_object),
    "songs": (cli.ask_songs, answer_object),
    "tags": (cli.ask_tags, cli.tag_objects),
}
HIDDEN_OPTIONS = {"help", "as_json"}


def http_parameters(command: click.Command) -> dict[str, click.Parameter]:
    """The query parameters of an endpoint: its command's options by flag without dashes, and
    positional arguments by name (``songs``: ``query``)."""
    params = {}
    for param in command.params:
        if param.name in HIDDEN_OPTIONS:
            continue
        key = param.name if isinstance(param, click.Argument) else max(param.opts, key=len).lstrip("-")
        params[key] = param
    return params


def command_line(command: click.Command, items: list[tuple[str, str]]) -> list[str]:
    """Query parameters -> the command line the CLI would parse; unknown or over-long ones are errors."""
    params, options, positional, repeats = http_parameters(command), [], [], {}
    for key, value in items:
        param = params.get(key)
        if param is None:
            raise click.UsageError(f"no such parameter: {key[:40]!r} (see /docs)")
        if len(value) > MAX_TEXT:
            raise click.UsageError(f"{_flag(param)} is longer than {MAX_TEXT} characters")
        repeats[key] = repeats.get(key, 0) + 1
        if repeats[key] > MAX_LIST:
            raise click.UsageError(f"{_flag(param)} is repeated more than {MAX_LIST} times")
        if isinstance(param, click.Argument):
            positional.append(value)
        elif getattr(param, "is_flag", False):
            switch = SWITCH_VALUES.get(value.strip().lower())
            if switch is None:
                raise click.UsageError(f"{_flag(param)} is a switch: true or false, got {value[:20]!r}")
            options += [_flag(param)] if switch else []
        else:
            options.append(f"{_flag(param)}={value}")
    return options + ["--"] + positional


def _flag(param: click.Parameter) -> str:
    return param.human_readable_name if isinstance(param, click.Argument) else max(param.opts, key=len)


def parse(name: str, items: list[tuple[str, str]]) -> click.Context:
    """The CLI's parsing of these parameters (its types, ranges and messages), then the HTTP limits."""
    command = cli.cli.commands[name]
    root = click.Context(cli.cli, info_name="search")
    ctx = command.make_context(name, command_line(command, items), parent=root)
    for param in command.params:
        value = ctx.params.get(param.name)
        if param.name == "limit" and value > MAX_LIMIT:
            raise click.UsageError(f"--limit must be at most {MAX_LIMIT} here, got {value}")
        if isinstance(value, (list, tuple)) and len(value) > MAX_LIST:
            raise click.UsageError(f"{_flag(param)} takes at most {MAX_LIST} entries, got {len(value)}")
    return ctx


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def error_of(exc: Exception) -> JSONResponse:
    """The CLI's one line for an error, with its HTTP status: 404 unknown song, 422 bad value,
    503 a store that cannot answer."""
    if isinstance(exc, ArgumentError):
        return error(422, f"{flag_for(exc.argument)} {exc.problem}")
    if isinstance(exc, NotFoundError):
        return error(404, str(exc))
    if isinstance(exc, StoreUnavailableError):
        return error(503, str(exc))
    if isinstance(exc, SongSearchError):
        return error(422, str(exc))
    if isinstance(exc, click.ClickException):
        return error(422, exc.format_message())
    if isinstance(exc, OSError):  # a vanished file under the embedded store
        return error(503, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    raise exc


class Songs:
    """The one SongSearch of this process, opened at start (or at the first request, when the
    store could not be reached then), closed at shutdown."""

    def __init__(self, search: SongSearch | None = None, opener: Callable[[], SongSearch] = partial(SongSearch, warm=True)):
        self._search, self._opener, self._own = search, opener, search is None
        if search is None:
            try:
                self._search = opener()
            except StoreUnavailableError:
                pass  # answered 503 until the store can be reached

    def get(self) -> SongSearch:
        if self._search is None:
            self._search = self._opener()
        return self._search

    def close(self) -> None:
        if self._own and self._search is not None:
            self._search.close()


class Guard:
    """A pure ASGI middleware: bounded query strings and bodies, and the API key (constant time)."""

    def __init__(self, app, api_key: str | None):
        self.app, self.expected = app, api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refusal = _refusal(scope, self.expected)
            if refusal is not None:
                return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


def _refusal(scope, expected: bytes | None) -> JSONResponse | None:
    if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
        return error(414, f"the query string is longer than {MAX_QUERY_STRING} bytes")
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"0")
    if b"transfer-encoding" in headers or not length.isdigit() or int(length) > MAX_BODY:
        return error(413, f"request bodies are limited to {MAX_BODY} bytes (every endpoint is a GET)")
    if expected is not None and scope["path"] not in OPEN_PATHS:
        given = headers.get(API_KEY_HEADER.lower().encode(), b"")
        if not hmac.compare_digest(given, expected):
            return error(401, f"a valid {API_KEY_HEADER} header is required")
    return None


def create_app(search: SongSearch | None = None, api_key: str | None = None, cors_origins: tuple[str, ...] = ()) -> FastAPI:
    """The app over ``search`` (by default the configured store: embedded, or QDRANT_URL)."""
    songs = Songs(search)

    @asynccontextmanager
    async def lifespan(app):
        yield
        songs.close()

    app = FastAPI(title="songsearch", version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan,
                  description=f"The `search` CLI's queries over HTTP. Limits: `limit` at most {MAX_LIMIT}, values at most {MAX_TEXT} "
                              f"characters, lists at most {MAX_LIST} entries, query strings at most {MAX_QUERY_STRING} bytes.")
    page = (Path(__file__).with_name("page.html")).read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/health", summary="The live version of both aliases and their point counts")
    async def health():
        try:
            return {"status": "ok", "aliases": songs.get().status()}
        except Exception as exc:  # noqa: BLE001 - turned into one line, or re-raised
            return error_of(exc)

    for name, (ask, to_json) in QUERIES.items():
        command = cli.cli.commands[name]
        app.add_api_route(f"/{name}", _endpoint(name, ask, to_json, songs), methods=["GET"], summary=command.help.splitlines()[0],
                          openapi_extra={"parameters": openapi_parameters(http_parameters(command), MAX_LIMIT, MAX_TEXT, MAX_LIST)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = {404: f"no such endpoint: {request.url.path[:60]} (see /docs)", 405: "method not allowed: every endpoint is a GET"}
        return error(exc.status_code, message.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET"], allow_headers=[API_KEY_HEADER])
    app.add_middleware(Guard, api_key=api_key)
    return app


def _endpoint(name: str, ask: Callable, to_json: Callable, songs: Songs):
    async def endpoint(request: Request):
        try:
            ctx = parse(name, request.query_params.multi_items())
            return JSONResponse(to_json(ask(songs.get(), ctx)))
        except Exception as exc:  # noqa: BLE001 - turned into one line, or re-raised
            return error_of(exc)

    endpoint.__name__ = name.replace("-", "_")
    return endpoint


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("songsearch")
    except PackageNotFoundError:
        return "0"


def app_from_env() -> FastAPI:
    """The app as ``search serve`` runs it (in each worker): SONGSEARCH_API_KEY, SONGSEARCH_CORS_ORIGINS."""
    origins = tuple(o.strip() for o in os.environ.get("SONGSEARCH_CORS_ORIGINS", "").split(",") if o.strip())
    app = create_app(api_key=os.environ.get("SONGSEARCH_API_KEY") or None, cors_origins=origins)
    # what is loaded by now lives as long as the process: the collector need not walk it at
    # every full collection (those pauses are the slow tail of a busy server's answers)
    gc.freeze()
    return app


def run(host: str, port: int, workers: int, api_key: str | None, cors_origins: tuple[str, ...]) -> None:
    import uvicorn

    Settings.from_env()  # a bad QDRANT_TIMEOUT is the CLI's one line here, not a traceback in a worker
    if api_key:
        os.environ["SONGSEARCH_API_KEY"] = api_key
    if cors_origins:
        os.environ["SONGSEARCH_CORS_ORIGINS"] = ",".join(cors_origins)
    options = dict(app="search.web.app:app_from_env", factory=True, host=host, port=port, access_log=False,
                   server_header=False, timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024)
    if workers > 1 and reuse_port_supported():
        run_workers(options, workers)
    else:
        uvicorn.run(**options, workers=workers)
