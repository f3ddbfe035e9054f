"""Optional OpenID Connect sign-in for the console (authorization code flow with PKCE).

When an identity provider is configured, ``/console/oidc/login`` sends the browser to it
with a fresh ``state``, ``nonce`` and PKCE challenge (kept in a short-lived signed cookie);
``/console/oidc/callback`` exchanges the code, verifies the ID token (signature from the
provider's JWKS, issuer, audience, expiry, nonce) and signs in the party named by the
configured claim. Only registered parties can sign in; every failure is audited.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Annotated, Any

import httpx
import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from collabzone.errors import AuthenticationError, CollabzoneError, InvalidInputError
from collabzone.server import _acting
from collabzone.server._headers import is_https
from collabzone.server._settings import OidcSettings

FLOW_COOKIE = "cz_oidc"
FLOW_TTL = 600
router = APIRouter(prefix="/console/oidc", include_in_schema=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Provider:
    """An identity provider's discovered endpoints and keys (fetched once, lazily)."""

    def __init__(self, settings: OidcSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self._timeout = timeout
        self._meta: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                response = httpx.get(url, timeout=self._timeout)
                response.raise_for_status()
                self._meta = dict(response.json())
            except (httpx.HTTPError, ValueError):
                raise InvalidInputError(
                    "the identity provider's discovery document is unreachable: check --oidc-issuer"
                ) from None
        return self._meta

    def authorize_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return str(httpx.URL(self.meta["authorization_endpoint"], params=params))

    def id_token_claims(
        self, code: str, redirect_uri: str, verifier: str, nonce: str
    ) -> dict[str, Any]:
        """Exchange ``code`` and verify the ID token; AuthenticationError says what failed."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "code_verifier": verifier,
        }
        if self.settings.client_secret:
            form["client_secret"] = self.settings.client_secret
        try:
            response = httpx.post(self.meta["token_endpoint"], data=form, timeout=self._timeout)
        except httpx.HTTPError:
            raise AuthenticationError("the identity provider did not answer") from None
        if response.status_code != 200:
            raise AuthenticationError("the identity provider refused the sign-in code")
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise AuthenticationError("the identity provider returned no ID token")
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.meta["jwks_uri"], timeout=int(self._timeout))
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                options={"require": ["exp", "iat", "sub", "nonce"]},
            )
        except (jwt.InvalidTokenError, jwt.PyJWKClientError):
            raise AuthenticationError("the ID token did not verify") from None
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise AuthenticationError("the ID token's nonce does not match this sign-in")
        return claims


def _provider(request: Request) -> Provider:
    provider: Provider | None = getattr(request.app.state, "oidc", None)
    if provider is None:
        raise InvalidInputError("no identity provider is configured (--oidc-issuer)")
    return provider


@router.get("/login")
def oidc_login(request: Request) -> RedirectResponse:
    provider = _provider(request)
    state = request.app.state.cz
    nonce, verifier, flow_state = (secrets.token_urlsafe(n) for n in (24, 48, 24))
    flow = {
        "state": flow_state,
        "nonce": nonce,
        "verifier": verifier,
        "exp": int(time.time()) + FLOW_TTL,
    }
    redirect_uri = str(request.url_for("oidc_callback"))
    response = RedirectResponse(
        provider.authorize_url(redirect_uri, flow_state, nonce, verifier), status_code=303
    )
    response.set_cookie(
        FLOW_COOKIE,
        jwt.encode(flow, state.csrf_key, algorithm="HS256"),
        max_age=FLOW_TTL,
        httponly=True,
        samesite="lax",  # the provider redirects back cross-site with a top-level GET
        secure=state.settings.secure_cookies or is_https(request),
        path="/console/oidc",
    )
    return response


@router.get("/callback", name="oidc_callback", response_model=None)
def oidc_callback(
    request: Request,
    code: Annotated[str, Query(max_length=4000)] = "",
    state_param: Annotated[str, Query(alias="state", max_length=200)] = "",
) -> Response:
    from collabzone.server._console import sign_in

    provider = _provider(request)
    server = request.app.state.cz
    try:
        flow = jwt.decode(
            request.cookies.get(FLOW_COOKIE, ""), server.csrf_key, algorithms=["HS256"]
        )
    except jwt.InvalidTokenError:
        server.deny("anonymous", "console.oidc", "sign-in flow expired or missing")
        raise AuthenticationError(
            "the sign-in took too long or came from elsewhere: retry"
        ) from None
    if not code or not secrets.compare_digest(state_param, str(flow["state"])):
        server.deny("anonymous", "console.oidc", "state mismatch")
        raise AuthenticationError("the sign-in response does not match this browser: retry")
    redirect_uri = str(request.url_for("oidc_callback"))
    try:
        claims = provider.id_token_claims(code, redirect_uri, flow["verifier"], flow["nonce"])
        name = claims.get(provider.settings.party_claim)
        if not isinstance(name, str):
            raise AuthenticationError(
                f"the ID token has no {provider.settings.party_claim!r} claim naming a party"
            )
        party = _acting.party_named(server.zone, name)
        if party.disabled_at is not None:
            raise AuthenticationError(f"party {name!r} is disabled")
    except CollabzoneError as exc:
        server.deny("anonymous", "console.oidc", exc.message)
        raise AuthenticationError(f"sign-in refused: {exc.message}") from None
    response = sign_in(request, party)
    response.delete_cookie(FLOW_COOKIE, path="/console/oidc")
    return response
