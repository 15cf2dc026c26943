"""The offline LLM's HTTP app: the subset of Ollama's API that the triage service and the `ollama` client use.

POST /api/chat (a whole answer, or NDJSON lines when `stream` is true or absent, Ollama's default),
GET /api/tags, GET /api/version, GET /api/ps, POST /api/show, GET / ("Ollama is running"); HEAD on
the GET paths. Errors are Ollama's `{"error": "..."}`: 400 for a request that cannot be served, 404
for a model this server does not have (the one model it serves answers to its Ollama name only).
Generations run one at a time on one thread (`GenerationWorker`); the other endpoints answer meanwhile.
A request with `logprobs` gets Ollama's `logprobs` list: on each streamed line, the tokens of its
piece; in a whole answer, every token.
"""

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from offline_llm.backend import ChatBackend, GeneratedToken, GenerationStats, ServedModel, answers_to, tokens_of
from offline_llm.errors import RequestError
from offline_llm.generation_worker import GenerationWorker, RunningGeneration
from offline_llm.json_body_route import JsonBodyRoute
from offline_llm.ollama_requests import ChatRequest, ShowRequest
from offline_llm.ollama_responses import (
    AssistantMessage,
    ChatChunk,
    ChatResponse,
    ErrorResponse,
    Logprob,
    ModelDetails,
    ModelEntry,
    PsResponse,
    RunningModel,
    ShowResponse,
    TagsResponse,
    TokenLogprob,
    VersionResponse,
)

logger = logging.getLogger(__name__)

SERVER_VERSION = "0.0.0-offline"
NDJSON = "application/x-ndjson"
INTERNAL_ERROR = "internal error in the offline LLM server"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A request this server cannot serve"},
    404: {"model": ErrorResponse, "description": "A model this server does not have"},
}
_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {NDJSON: {}}, "description": "The whole answer, or NDJSON lines when streaming"},
    **_ERRORS,
}

router = APIRouter(route_class=JsonBodyRoute)


def _backend(request: Request) -> ChatBackend:
    return cast(ChatBackend, request.app.state.backend)


def _worker(request: Request) -> GenerationWorker:
    return cast(GenerationWorker, request.app.state.worker)


Backend = Annotated[ChatBackend, Depends(_backend)]
Worker = Annotated[GenerationWorker, Depends(_worker)]


def create_app(backend: ChatBackend, *, version: str = SERVER_VERSION) -> FastAPI:
    """The Ollama-protocol app over `backend`; `version` is what /api/version reports.

    Serve it with uvicorn. At shutdown, queued generations are dropped and the running one stops.
    """
    worker = GenerationWorker(backend)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            worker.close()

    app = FastAPI(
        title="Offline LLM",
        summary="A small GGUF model over Ollama's HTTP API (offline demo, not production triage).",
        version=version,
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.worker = worker
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(RequestError, _unservable_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


# -- endpoints ---------------------------------------------------------------------------------------


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
def root() -> str:
    """Ollama's health check."""
    return "Ollama is running"


@router.api_route("/api/version", methods=["GET", "HEAD"])
def server_version(request: Request) -> VersionResponse:
    """The server version (an Ollama-looking string; this is not Ollama)."""
    return VersionResponse(version=request.app.version)


@router.api_route("/api/tags", methods=["GET", "HEAD"])
def tags(backend: Backend) -> TagsResponse:
    """The one model this server answers with."""
    return TagsResponse(models=[_entry(backend.describe())])


@router.api_route("/api/ps", methods=["GET", "HEAD"])
def ps(backend: Backend) -> PsResponse:
    """The loaded model: always the served one, loaded for the server's whole life."""
    return PsResponse(models=[RunningModel(**_entry(backend.describe()).model_dump())])


@router.post("/api/show", response_model=ShowResponse, responses=_ERRORS)
def show(body: ShowRequest, backend: Backend) -> ShowResponse | JSONResponse:
    """The served model's details; 404 for any other model."""
    served = backend.describe()
    if not answers_to(served.name, body.requested):
        return _error(404, ErrorResponse.model_not_found(body.requested))
    return ShowResponse(details=_details(served), model_info={"general.name": served.display_name})


@router.post("/api/chat", response_model=ChatResponse, responses=_CHAT_RESPONSES)
async def chat(body: ChatRequest, backend: Backend, worker: Worker) -> Response | ChatResponse:
    """Answer a chat; queued behind the generation in progress, if any."""
    received = time.monotonic_ns()
    model = backend.model_name
    if not answers_to(model, body.model):
        logger.info("chat for a model not served", extra={"fields": {"requested": body.model, "served": model}})
        return _error(404, ErrorResponse.model_not_found(body.model))
    running = worker.submit(body)
    try:
        event = await running.next_event()  # waits for the generations queued before this one
        if body.stream:
            lines = _ndjson_lines(running, event, model, received, logprobs=body.logprobs)
            return StreamingResponse(lines, media_type=NDJSON)
        pieces: list[str] = []
        tokens: list[GeneratedToken] = []
        while isinstance(event, str):
            pieces.append(event)
            tokens.extend(tokens_of(event))
            event = await running.next_event()
    except RequestError:
        running.cancel()
        raise
    except Exception:
        running.cancel()
        logger.exception("offline LLM chat failed")
        return _error(500, ErrorResponse(error=INTERNAL_ERROR))
    except BaseException:  # the request was cancelled (server shutdown): stop its generation too
        running.cancel()
        raise
    _log_answer(model, event, received)
    tokens.extend(event.tokens)
    return _final(model, event, "".join(pieces), received, _logprobs(tokens, asked=body.logprobs))


async def _ndjson_lines(
    running: RunningGeneration, first: str | GenerationStats, model: str, received: int, *, logprobs: bool
) -> AsyncIterator[str]:
    """The stream: one `ChatChunk` line per piece, then the `ChatResponse` line with the figures.

    With `logprobs`, each line carries the tokens of its piece (Ollama leaves the list out of a line
    without tokens).

    A failure after the first line can no longer change the status: it ends the stream with an
    `{"error": ...}` line, as Ollama does. Closing the stream early (the client went away) stops the generation.
    """
    try:
        event = first
        while isinstance(event, str):
            piece_logprobs = _logprobs(tokens_of(event), asked=logprobs)
            yield _line(ChatChunk(model=model, message=AssistantMessage(content=event), logprobs=piece_logprobs))
            event = await running.next_event()
        yield _line(_final(model, event, "", received, _logprobs(event.tokens, asked=logprobs)))
        _log_answer(model, event, received)
    except Exception:
        logger.exception("offline LLM chat failed while streaming")
        yield _line(ErrorResponse(error=INTERNAL_ERROR))
    finally:
        running.cancel()


# -- shapes ------------------------------------------------------------------------------------------


def _details(served: ServedModel) -> ModelDetails:
    return ModelDetails(
        family=served.family,
        families=[served.family],
        parameter_size=served.parameter_size,
        quantization_level=served.quantization,
    )


def _entry(served: ServedModel) -> ModelEntry:
    return ModelEntry(
        name=served.name,
        model=served.name,
        modified_at=served.modified_at,
        size=served.size,
        digest=served.digest,
        details=_details(served),
    )


def _final(
    model: str, stats: GenerationStats, content: str, received: int, logprobs: list[Logprob] | None
) -> ChatResponse:
    return ChatResponse(
        model=model,
        message=AssistantMessage(content=content),
        logprobs=logprobs,
        done_reason=stats.done_reason,
        total_duration=time.monotonic_ns() - received,
        prompt_eval_count=stats.prompt_eval_count,
        prompt_eval_duration=stats.prompt_eval_duration,
        eval_count=stats.eval_count,
        eval_duration=stats.eval_duration,
    )


def _logprobs(tokens: Sequence[GeneratedToken], *, asked: bool) -> list[Logprob] | None:
    """Ollama's `logprobs` entries of generated tokens; None (left out) when not asked for or without tokens."""
    if not asked or not tokens:
        return None
    return [
        Logprob(
            token=_text(token.piece),
            logprob=token.logprob,
            bytes=_bytes(token.piece),
            top_logprobs=[
                TokenLogprob(token=_text(alt.piece), logprob=alt.logprob, bytes=_bytes(alt.piece)) for alt in token.top
            ]
            or None,
        )
        for token in tokens
    ]


def _text(piece: bytes) -> str:
    # A token that ends inside a multi-byte character gets a replacement character; `bytes` stay exact.
    return piece.decode("utf-8", "replace")


def _bytes(piece: bytes) -> list[int] | None:
    return list(piece) or None


def _line(shape: BaseModel) -> str:
    return shape.model_dump_json() + "\n"


def _log_answer(model: str, stats: GenerationStats, received: int) -> None:
    logger.info(
        "chat answered",
        extra={
            "fields": {
                "model": model,
                "prompt_eval_count": stats.prompt_eval_count,
                "eval_count": stats.eval_count,
                "done_reason": stats.done_reason,
                "duration_ms": round((time.monotonic_ns() - received) / 1e6),
            }
        },
    )


# -- errors ------------------------------------------------------------------------------------------


def _error(status: int, body: ErrorResponse) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump())


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    return _error(400, ErrorResponse(error=describe_validation_errors(cast(RequestValidationError, exc).errors())))


async def _unservable_request(_request: Request, exc: Exception) -> JSONResponse:
    return _error(400, ErrorResponse(error=str(exc)))


async def _http_error(request: Request, exc: Exception) -> Response:
    http_exc = cast(StarletteHTTPException, exc)
    if http_exc.status_code == 404:
        message = f"not found: {request.url.path} (this offline server has /api/chat)"
    elif http_exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    else:
        message = str(http_exc.detail)
    response = _error(http_exc.status_code, ErrorResponse(error=message))
    response.headers.update(http_exc.headers or {})  # e.g. 405's Allow
    return response


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line for the client naming each bad field, without echoing the request's text back."""
    problems: list[str] = []
    for error in errors:
        kind = error.get("type")
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        context = error.get("ctx") or {}
        if kind == "json_invalid":
            return f"the body is not JSON: {context.get('error', 'invalid')} (at character {error['loc'][-1]})"
        if not where and kind == "missing":
            return "missing request body"
        if not where and kind in ("model_attributes_type", "dict_type", "model_type"):
            return "the body must be a JSON object"
        if kind == "value_error":  # our own validators: the message names its field
            problems.append(str(context.get("error", error.get("msg"))))
        else:
            problems.append(f"{where or 'body'}: {error.get('msg')}")
    return "; ".join(problems) or "invalid request"
