"""The zone server: a FastAPI app exposing every zone operation, plus the owners' console.

>>> from collabzone.server import ServerSettings, create_app           # doctest: +SKIP
>>> app = create_app(ServerSettings(zone_dir=Path("zone")))            # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                      # doctest: +SKIP

The OpenAPI schema is served at ``/openapi.json``. There is no ``/docs`` page: Swagger UI
loads its scripts from a CDN, and the zone runs offline behind a strict Content Security
Policy; load the schema into a local tool instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from collabzone.server import _api, _console, _errors, _oauth, _oidc
from collabzone.server._headers import SecurityHeaders
from collabzone.server._limits import BodyLimit, UploadGate, UploadQuota
from collabzone.server._settings import ServerSettings
from collabzone.server._state import ServerState
from collabzone.techniques.mpc import he_api, relay_api, survey_page
from collabzone.zone import Zone

VERSION = "1"


def _is_upload(method: str, path: str) -> bool:
    if method == "PUT" and path.startswith("/v1/he/") and "/ciphertexts/" in path:
        return True  # an HE deposit: a packed vector of 1M values is ~81 MB
    if method == "POST" and path.startswith("/v1/mpc/relay/") and "/uploads/" in path:
        return True  # a sealed MPC share package: 1M rows x 3 columns is ~70 MB
    return method == "POST" and path == "/v1/datasets"


def create_app(settings: ServerSettings, zone: Zone | None = None) -> FastAPI:
    """Build the app for one zone (opened once; each call acts as its token's party)."""
    state = ServerState(settings, zone)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        state.close()

    app = FastAPI(
        title="collabzone",
        version=VERSION,
        summary="A privacy-preserving data collaboration zone",
        description=(
            "Every call acts as the party of its OAuth2 access token (client credentials: "
            "client_id = party name, client_secret = the party token). Errors are "
            '`{"error": {"type", "code", "message", "reasons"?}}`.'
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.cz = state
    app.state.oidc = _oidc.Provider(settings.oidc) if settings.oidc else None
    _errors.install(app)
    app.include_router(_oauth.router)
    for router in _api.ROUTERS:
        app.include_router(router)
    app.include_router(_console.router)
    app.include_router(_oidc.router)
    app.include_router(survey_page.router)  # respondents' survey page (techniques.mpc)
    app.include_router(he_api.router)  # the HE mediator's inbox (techniques.mpc)
    app.include_router(relay_api.router)  # sealed MPC share packages (techniques.mpc)
    quota = UploadQuota(settings.upload_quota, settings.upload_window)

    def authorise_upload(token: str | None, client: str) -> str:
        caller = state.authorise(token, "datasets:write", "POST /v1/datasets", client)
        return caller.party.name

    app.add_middleware(
        UploadGate,
        is_upload=_is_upload,
        authorise=authorise_upload,
        quota=quota,
        render=_errors.render,
    )
    app.add_middleware(
        BodyLimit,
        default=settings.max_body,
        upload=settings.max_upload,
        is_upload=_is_upload,
    )
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:  # outermost: every layer sees the client's real address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    @app.get("/healthz", tags=["identity"])
    def healthz() -> dict[str, str]:
        """Liveness: the zone this server serves."""
        return {"status": "ok", "zone_id": state.zone.zone_id}

    return app
