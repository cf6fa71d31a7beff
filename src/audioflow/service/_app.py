"""``create_app``: the HTTP service over audioflow's public API (FastAPI)."""

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .._formats import CONTENT_TYPES, FORMATS
from ..errors import (
    ConfigurationError,
    DecodeError,
    InvalidTransitionError,
    JobNotFoundError,
    StoreUnavailableError,
)
from ..pipeline import Pipeline
from ..records import (
    FINISHED_STATUSES,
    Job,
    JobError,
    JobEvent,
    JobOptions,
    JobStatus,
    Progress,
)
from ..stages.decode import Decode
from ..store._watch import last_event
from ..store.protocol import JobStore
from ..worker import Enqueue, cancel, run_job, sweep_forever
from ._auth import ApiKey, KeyRing, Limited, keys_from_env
from ._models import (
    ArtifactOut,
    ErrorOut,
    JobErrorOut,
    JobListOut,
    JobOut,
    ProgressOut,
    StatusOut,
    WebhookAttemptOut,
    WebhookOut,
)
from .webhooks import SIGNATURE_HEADER, sign

__all__ = ["create_app"]

log = logging.getLogger("audioflow.service")

_WEBHOOK_SUFFIX = ".webhook"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 415, 422, 429, 503)
}


class ApiError(HTTPException):
    """An error answered as ``{"error": {"type", "message"}}``."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.kind = kind


_BINARY = {"type": "string", "format": "binary"}
_LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "TooLarge", f"the upload is over the {limit}-byte limit")


def _safe_name(filename: str) -> str:
    """A display name: the last path part, printable, at most 120 characters."""
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\"'<>")
    return name.strip(". ")[:120] or "upload"


def _suffix(filename: str) -> str:
    """The file's extension, if a plain one (PyAV probes content; this only helps it)."""
    match = re.search(r"\.([A-Za-z0-9]{1,8})$", filename)
    return f".{match.group(1).lower()}" if match else ""


class _Service:
    def __init__(
        self,
        store: JobStore,
        ring: KeyRing,
        upload_dir: Path,
        *,
        pipeline: Pipeline | Callable[[], Pipeline] | None,
        enqueue: Enqueue | None,
        max_upload_bytes: int,
        max_duration: float | None,
        max_running: int,
        webhook_attempts: int,
        webhook_backoff: float,
        webhook_timeout: float,
    ) -> None:
        self.store = store
        self.ring = ring
        self.upload_dir = upload_dir
        self._pipeline_factory = pipeline
        self._enqueue = enqueue
        self.pipeline: Pipeline | None = None
        self.max_upload_bytes = max_upload_bytes
        self.max_duration = max_duration
        self.slots = anyio.Semaphore(max_running)
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff = webhook_backoff
        self.webhook_timeout = webhook_timeout
        self.detach = anyio.Event()
        self.tg: anyio.abc.TaskGroup | None = None
        self.http: httpx.AsyncClient | None = None

    def public(self, message: str) -> str:
        """``message`` without this server's upload folder: an error about an upload
        names the stored file (``<job id>.<ext>``), never where it is stored."""
        return message.replace(f"{self.upload_dir}{os.sep}", "")

    # ------------------------------------------------------------- life

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        async with httpx.AsyncClient(timeout=self.webhook_timeout) as http:
            self.http = http
            async with anyio.create_task_group() as tg:
                self.tg = tg
                if self._enqueue is None:  # jobs run here
                    factory = self._pipeline_factory
                    if factory is None:
                        self.pipeline = Pipeline.default(store=self.store)
                    elif isinstance(factory, Pipeline):
                        self.pipeline = factory
                    else:
                        self.pipeline = factory()
                    tg.start_soon(self._sweep)
                await self._adopt()
                try:
                    yield
                finally:
                    self.detach.set()  # runs in hand let go; the sweep recovers them
                    tg.cancel_scope.cancel()
            if self.pipeline is not None and self._pipeline_factory is not self.pipeline:
                await self.pipeline.aclose()

    async def _sweep(self) -> None:
        assert self.pipeline is not None
        await sweep_forever(
            self.store, self.enqueue, interval=max(1.0, self.pipeline.lease_seconds / 2)
        )

    async def _adopt(self) -> None:
        """Count and follow the unfinished jobs already in the store (a restart)."""
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            cursor = None
            while True:
                page = await self.store.list(status=status, limit=500, cursor=cursor)
                for job in page.jobs:
                    owner = job.meta.get("owner")
                    if owner is None or job.id.endswith(_WEBHOOK_SUFFIX):
                        continue
                    self.ring.adopt(owner, job.id)
                    self._follow(job.id, owner)
                    if status is JobStatus.QUEUED and self._enqueue is None:
                        await self.enqueue(job.id)
                cursor = page.cursor
                if cursor is None:
                    break

    async def enqueue(self, job_id: str) -> None:
        if self._enqueue is not None:
            await self._enqueue(job_id)
            return
        assert self.tg is not None
        self.tg.start_soon(self._run, job_id)

    async def _run(self, job_id: str) -> None:
        assert self.pipeline is not None
        async with self.slots:
            try:
                report = await run_job(self.pipeline, job_id, detach=self.detach)
            except Exception:
                log.exception("job %s: its run could not start", job_id)
                return
            log.info("job %s: %s %s", job_id, report.outcome.value, report.reason)

    def _follow(self, job_id: str, owner: str) -> None:
        assert self.tg is not None
        self.tg.start_soon(self._follow_safely, job_id, owner)

    async def _follow_safely(self, job_id: str, owner: str) -> None:
        # A follower runs in the app's task group: its error must not stop the app.
        try:
            await self._follow_until_end(job_id, owner)
        except Exception:
            log.exception("job %s: following it failed", job_id)
            self.ring.end_job(owner, job_id)

    async def _follow_until_end(self, job_id: str, owner: str) -> None:
        """Free the owner's slot when the job ends, then send its webhook."""
        await last_event(self.store, job_id)
        job = await self.store.get(job_id)
        self.ring.end_job(owner, job_id)
        if job is not None and job.status in FINISHED_STATUSES:
            await self._deliver_webhook(job)

    # ------------------------------------------------------------- webhooks

    async def _deliver_webhook(self, job: Job) -> None:
        record = await self.store.get(job.id + _WEBHOOK_SUFFIX)
        key = self.ring.named(job.meta.get("owner", ""))
        if record is None or key is None or key.webhook_secret is None:
            return
        if record.meta.get("delivered") == "true":
            return
        assert self.http is not None
        body = json.dumps(
            {
                "job_id": job.id,
                "status": job.status.value,
                "error": (
                    {"type": job.error.type, "message": self.public(job.error.message)}
                    if job.error
                    else None
                ),
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                "formats": sorted(job.artifacts),
            },
            separators=(",", ":"),
        ).encode()
        attempts: list[dict[str, Any]] = json.loads(record.meta.get("attempts", "[]"))
        for n in range(self.webhook_attempts):
            if n:
                await anyio.sleep(self.webhook_backoff * 2 ** (n - 1))
            started = anyio.current_time()
            attempt: dict[str, Any] = {"at": datetime.now(UTC).isoformat()}
            try:
                answer = await self.http.post(
                    record.source,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(key.webhook_secret, body),
                        "User-Agent": "audioflow-webhook",
                    },
                )
                attempt["status_code"] = answer.status_code
                ok = 200 <= answer.status_code < 300
            except httpx.HTTPError as exc:
                attempt["error"] = type(exc).__name__
                ok = False
            attempt["elapsed_ms"] = round((anyio.current_time() - started) * 1000, 1)
            attempts.append(attempt)
            meta = dict(record.meta, attempts=json.dumps(attempts), delivered=str(ok).lower())
            try:
                await self.store.update(record.id, meta=meta)
            except Exception:
                log.exception("job %s: could not record a webhook attempt", job.id)
            if ok:
                return
        log.warning("job %s: webhook not delivered after %d attempts", job.id, len(attempts))

    # ------------------------------------------------------------- views

    async def view(self, job: Job, request: Request) -> JobOut:
        base = str(request.base_url).rstrip("/") + f"/v1/jobs/{job.id}"
        webhook = None
        if job.meta.get("callback") == "true":
            record = await self.store.get(job.id + _WEBHOOK_SUFFIX)
            if record is not None:
                webhook = WebhookOut(
                    url=record.source,
                    delivered=record.meta.get("delivered") == "true",
                    attempts=[
                        WebhookAttemptOut(**a)
                        for a in json.loads(record.meta.get("attempts", "[]"))
                    ],
                )
        error = job.error
        return JobOut(
            id=job.id,
            status=job.status.value,
            filename=job.meta.get("filename", ""),
            bytes=int(job.meta.get("bytes", "0")),
            sha256=job.meta.get("sha256", ""),
            language=job.options.language,
            formats=list(job.options.formats),
            progress=ProgressOut(
                stage=job.progress.stage,
                fraction=job.progress.fraction,
                message=job.progress.message,
            ),
            error=JobErrorOut(
                type=error.type, message=self.public(error.message), stage=error.stage
            )
            if error
            else None,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            artifacts=[
                ArtifactOut(
                    format=fmt, url=f"{base}/artifacts/{fmt}", content_type=CONTENT_TYPES[fmt]
                )
                for fmt in sorted(job.artifacts)
                if fmt in CONTENT_TYPES
            ],
            events_url=f"{base}/events",
            webhook=webhook,
        )

    async def owned(self, job_id: str, key: ApiKey) -> Job:
        """The job, if ``key`` made it; else 404 (another key's job does not exist)."""
        job = None
        if not job_id.endswith(_WEBHOOK_SUFFIX):
            job = await self.store.get(job_id)
        if job is None or job.meta.get("owner") != key.name:
            raise ApiError(404, "JobNotFound", f"no job {job_id!r}")
        return job


def create_app(
    store: JobStore,
    *,
    keys: Iterable[ApiKey] | None = None,
    upload_dir: str | Path = "audioflow-uploads",
    pipeline: Pipeline | Callable[[], Pipeline] | None = None,
    enqueue: Enqueue | None = None,
    max_upload_bytes: int = 2 * 1024**3,
    max_duration: float | None = None,
    max_running: int = 2,
    webhook_attempts: int = 3,
    webhook_backoff: float = 1.0,
    webhook_timeout: float = 10.0,
) -> FastAPI:
    """The audioflow HTTP service as an ASGI app (FastAPI); see ``docs/service.md``.

    Args:
        store: where jobs live (shared with the workers when they run elsewhere).
        keys: the API keys (default: from ``AUDIOFLOW_API_KEYS`` or the file named by
            ``AUDIOFLOW_API_KEYS_FILE``); at least one.
        upload_dir: where uploads are written (``<job id><ext>``, whatever the client
            named the file). With workers elsewhere it must be storage they see at the
            same path.
        pipeline: run jobs in this process with this pipeline (or a factory called at
            start-up); default ``Pipeline.default(store=store)``.
        enqueue: instead, send job ids to workers (``DramatiqQueue(...).enqueue``).
        max_upload_bytes: larger uploads are answered 413 as soon as they pass it.
        max_duration: longer media is refused (415) before it is queued.
        max_running: jobs run at once in this process (with ``pipeline``).
        webhook_attempts: deliveries of a job's webhook, at most.
        webhook_backoff: the first wait between deliveries in seconds (doubling).
        webhook_timeout: each delivery's time limit in seconds.
    """
    ring = KeyRing(keys_from_env() if keys is None else keys)
    if not ring.keys:
        raise ConfigurationError(
            "the service needs at least one API key (AUDIOFLOW_API_KEYS=name:key[:secret])"
        )
    if pipeline is not None and enqueue is not None:
        raise ConfigurationError("give pipeline= (jobs run here) or enqueue= (workers), not both")
    service = _Service(
        store,
        ring,
        Path(upload_dir).resolve(),
        pipeline=pipeline,
        enqueue=enqueue,
        max_upload_bytes=max_upload_bytes,
        max_duration=max_duration,
        max_running=max_running,
        webhook_attempts=webhook_attempts,
        webhook_backoff=webhook_backoff,
        webhook_timeout=webhook_timeout,
    )
    app = FastAPI(
        title="audioflow",
        summary="Audio and video files to timed transcripts and captions.",
        version="1",
        lifespan=service.lifespan,
        responses=_ERRORS,
    )
    app.state.audioflow = service
    bearer = HTTPBearer(auto_error=False)
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def auth(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        api_key: Annotated[str | None, Security(header_key)],
    ) -> ApiKey:
        presented = credentials.credentials if credentials else api_key
        key = ring.find(presented)
        if key is None:
            raise ApiError(
                401,
                "Unauthorized",
                "a valid API key is needed (Authorization: Bearer <key>, or X-API-Key)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return key

    Key = Annotated[ApiKey, Depends(auth)]

    # ----------------------------------------------------------------- errors

    def error(
        status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = getattr(exc, "kind", None) or re.sub(r"\W", "", str(exc.status_code))
        return error(exc.status_code, kind, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, "InvalidRequest", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return error(503, "StoreUnavailable", "the job store is unavailable", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, "InternalError", "internal error")

    # ----------------------------------------------------------------- endpoints

    @app.get("/v1/health", response_model=StatusOut, tags=["health"])
    async def health() -> StatusOut:
        """The process answers."""
        return StatusOut(status="ok")

    @app.get("/v1/ready", response_model=StatusOut, tags=["health"])
    async def ready() -> StatusOut:
        """The store answers (503 if not)."""
        try:
            with anyio.fail_after(2):
                await store.get("__audioflow_readiness__")
        except (StoreUnavailableError, TimeoutError) as exc:
            raise ApiError(503, "NotReady", "the job store does not answer") from exc
        return StatusOut(status="ready")

    @app.post(
        "/v1/jobs",
        status_code=201,
        response_model=JobOut,
        tags=["jobs"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def create_job(
        request: Request,
        key: Key,
        filename: Annotated[str, Query(min_length=1, max_length=255)] = "upload",
        language: Annotated[
            str | None, Query(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
        ] = None,
        formats: Annotated[str | None, Query(max_length=64, description="e.g. srt,vtt")] = None,
        callback_url: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> Response:
        """Upload a file (the request body, as it is) and queue its job.

        The body is written to disk as it arrives and hashed while written; a body over
        the size limit is answered 413 as soon as it passes it, and a file that is not
        media 415, before any job exists.
        """
        chosen = tuple(f.strip() for f in (formats or ",".join(FORMATS)).split(",") if f.strip())
        unknown = sorted(set(chosen) - set(FORMATS))
        if unknown or not chosen:
            raise ApiError(
                400, "InvalidFormats", f"unknown formats {unknown}; known: {list(FORMATS)}"
            )
        if callback_url is not None:
            if not re.match(r"^https?://[^\s/]+", callback_url):
                raise ApiError(400, "InvalidCallback", "callback_url must be an http(s) URL")
            if key.webhook_secret is None:
                raise ApiError(
                    400, "InvalidCallback", "this API key has no webhook secret to sign with"
                )
        declared = request.headers.get("content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > service.max_upload_bytes:
            raise _too_large(service.max_upload_bytes)
        job_id = uuid.uuid4().hex
        try:
            ring.start_job(key, job_id)
            ring.reserve_upload(key, length or 0)
        except Limited as exc:
            ring.end_job(key.name, job_id)
            raise ApiError(
                429, "TooManyRequests", str(exc), {"Retry-After": str(exc.retry_after)}
            ) from None
        name = _safe_name(filename)
        path = service.upload_dir / f"{job_id}{_suffix(name)}"
        created = False
        try:
            size, digest = await _receive(request, path, service.max_upload_bytes)
            if length is None:  # chunked: what arrived counts (the budget was checked)
                ring.reserve_upload(key, size, check=False)
            try:
                await Decode(max_duration=service.max_duration).probe(path)
            except DecodeError as exc:
                message = str(exc).replace(str(path), name)
                raise ApiError(415, type(exc).__name__, message) from None
            options = JobOptions(formats=chosen, language=language)
            meta = {"owner": key.name, "filename": name, "sha256": digest, "bytes": str(size)}
            if callback_url is not None:
                meta["callback"] = "true"
                await store.create(
                    Job(
                        id=job_id + _WEBHOOK_SUFFIX,
                        source=callback_url,
                        meta={"owner": key.name, "attempts": "[]", "delivered": "false"},
                    )
                )
            job = await store.create(Job(id=job_id, source=str(path), options=options, meta=meta))
            created = True
            service._follow(job_id, key.name)
            await service.enqueue(job_id)
        finally:
            if not created:
                ring.end_job(key.name, job_id)
                path.unlink(missing_ok=True)
                with anyio.CancelScope(shield=True):
                    try:
                        await store.delete(job_id + _WEBHOOK_SUFFIX)
                    except Exception:
                        log.exception("job %s: could not remove its webhook record", job_id)
        view = await service.view(job, request)
        return JSONResponse(
            view.model_dump(mode="json"),
            status_code=201,
            headers={"Location": view.events_url.removesuffix("/events")},
        )

    async def _receive(request: Request, path: Path, limit: int) -> tuple[int, str]:
        """Stream the body to ``path``; (bytes, sha256 hex)."""
        hasher = hashlib.sha256()
        size = 0
        try:
            async with await anyio.open_file(path, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    hasher.update(chunk)
                    await out.write(chunk)
        except ClientDisconnect:
            raise ApiError(400, "ClientDisconnect", "the upload was interrupted") from None
        return size, hasher.hexdigest()

    @app.get("/v1/jobs", response_model=JobListOut, tags=["jobs"])
    async def list_jobs(
        request: Request,
        key: Key,
        status: JobStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=256)] = None,
    ) -> JobListOut:
        """This key's jobs, oldest first, a page at a time (a page may hold fewer than
        ``limit``: the store pages every key's jobs)."""
        try:
            page = await store.list(status=status, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise ApiError(400, "InvalidCursor", str(exc)) from None
        mine = [
            await service.view(job, request)
            for job in page.jobs
            if job.meta.get("owner") == key.name and not job.id.endswith(_WEBHOOK_SUFFIX)
        ]
        return JobListOut(jobs=mine, cursor=page.cursor)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    async def get_job(job_id: str, request: Request, key: Key) -> JobOut:
        """One job: status, progress, error, renderings, webhook deliveries."""
        return await service.view(await service.owned(job_id, key), request)

    @app.get(
        "/v1/jobs/{job_id}/events",
        tags=["jobs"],
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def job_events(job_id: str, request: Request, key: Key) -> EventSourceResponse:
        """The job's changes as server-sent events, from a snapshot to its end.

        Each event's ``id`` is a cursor: reconnect with ``Last-Event-ID`` to get every
        change after it (or a ``snapshot`` with ``resync`` when those are gone).
        """
        await service.owned(job_id, key)
        cursor = request.headers.get("last-event-id") or None
        events = store.watch(job_id, cursor=cursor)
        try:
            first = await events.__anext__()
        except ValueError as exc:
            raise ApiError(400, "InvalidLastEventId", str(exc)) from None
        except StopAsyncIteration:
            first = None

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                if first is None:
                    return
                yield _sse(first, service.public)
                async for event in events:
                    yield _sse(event, service.public)
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()

        return EventSourceResponse(stream(), ping=15)

    @app.get(
        "/v1/jobs/{job_id}/artifacts/{fmt}",
        tags=["jobs"],
        responses={200: {"content": {t.split(";")[0]: {} for t in CONTENT_TYPES.values()}}},
    )
    async def artifact(job_id: str, fmt: str, key: Key) -> Response:
        """One rendering of a completed job, with its content type."""
        job = await service.owned(job_id, key)
        if fmt not in CONTENT_TYPES or fmt not in job.artifacts:
            raise ApiError(404, "NoSuchRendering", f"job {job_id!r} has no {fmt!r} rendering")
        stem = Path(job.meta.get("filename", job_id)).stem or job_id
        return Response(
            job.artifacts[fmt],
            media_type=CONTENT_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'},
        )

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"])
    async def cancel_job(job_id: str, request: Request, key: Key) -> JobOut:
        """Cancel a queued or running job (409 if it already finished)."""
        await service.owned(job_id, key)
        try:
            job = await cancel(store, job_id)
        except InvalidTransitionError as exc:
            raise ApiError(409, "AlreadyFinished", f"job {job_id!r} is {exc.current}") from None
        except JobNotFoundError:
            raise ApiError(404, "JobNotFound", f"no job {job_id!r}") from None
        return await service.view(job, request)

    @app.delete("/v1/jobs/{job_id}", status_code=204, tags=["jobs"])
    async def delete_job(job_id: str, key: Key) -> Response:
        """Delete the job, its uploaded file and its renderings (cancelling it first)."""
        job = await service.owned(job_id, key)
        if job.status not in FINISHED_STATUSES:
            try:
                await cancel(store, job_id)
            except (InvalidTransitionError, JobNotFoundError):
                pass
        await store.delete(job_id)
        await store.delete(job_id + _WEBHOOK_SUFFIX)
        if Path(job.source).parent == service.upload_dir:
            await anyio.Path(job.source).unlink(missing_ok=True)
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = resources.files("audioflow.service").joinpath("static/index.html").read_text()
        return HTMLResponse(html)

    return app


def _sse(event: JobEvent, public: Callable[[str], str]) -> dict[str, str]:
    """One store event as a server-sent event: its cursor as the id, its kind as the
    event name, the status and what changed of interest to a client as JSON data
    (error messages through ``public``)."""
    changes = event.changes
    data: dict[str, Any] = {
        "status": event.status.value,
        "version": event.version,
        "resync": event.resync,
    }
    if isinstance(changes.progress, Progress):
        p = changes.progress
        data["progress"] = {"stage": p.stage, "fraction": p.fraction, "message": p.message}
    if isinstance(changes.error, JobError):
        data["error"] = {"type": changes.error.type, "message": public(changes.error.message)}
    if isinstance(changes.artifacts, dict):
        data["formats"] = sorted(changes.artifacts)
    return {"id": event.cursor, "event": event.kind.value, "data": json.dumps(data)}
