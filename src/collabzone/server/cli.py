"""``collabzone serve``: run the zone server (uvicorn) for one zone directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from collabzone.server._settings import OidcSettings, ServerSettings, SmtpSettings

app = typer.Typer(help="Run the zone server: REST API, OAuth2, web console.")


@app.callback(invoke_without_command=True)
def serve(
    zone: Annotated[
        Path, typer.Option("--zone", envvar="COLLABZONE_ZONE", help="Zone directory.")
    ] = Path("zone"),
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="COLLABZONE_DB_URL", help="Metadata DB (postgresql://...)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate chain (PEM); enables HTTPS.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    token_ttl: Annotated[int, typer.Option(help="Access token lifetime, seconds.")] = 900,
    rate: Annotated[float, typer.Option(help="Requests per second per party.")] = 50.0,
    burst: Annotated[int, typer.Option(help="Burst size per party.")] = 200,
    max_body: Annotated[int, typer.Option(help="Largest JSON body, bytes.")] = 1 << 20,
    max_upload: Annotated[int, typer.Option(help="Largest dataset upload, bytes.")] = 1 << 30,
    upload_quota: Annotated[
        int, typer.Option(help="Bytes each party may upload per --upload-window.")
    ] = 4 << 30,
    upload_window: Annotated[float, typer.Option(help="Upload quota window, seconds.")] = 86400.0,
    smtp_host: Annotated[
        str | None, typer.Option(envvar="COLLABZONE_SMTP_HOST", help="SMTP server for e-mail.")
    ] = None,
    smtp_port: Annotated[int, typer.Option(envvar="COLLABZONE_SMTP_PORT")] = 587,
    smtp_sender: Annotated[
        str, typer.Option(envvar="COLLABZONE_SMTP_SENDER")
    ] = "collabzone@localhost",
    smtp_user: Annotated[str | None, typer.Option(envvar="COLLABZONE_SMTP_USER")] = None,
    smtp_password: Annotated[
        str | None, typer.Option(envvar="COLLABZONE_SMTP_PASSWORD", show_default=False)
    ] = None,
    smtp_starttls: Annotated[
        bool, typer.Option(envvar="COLLABZONE_SMTP_STARTTLS", help="Upgrade SMTP with STARTTLS.")
    ] = True,
    webhook_allow: Annotated[
        list[str] | None,
        typer.Option(
            envvar="COLLABZONE_WEBHOOK_ALLOW",
            help="Address or network webhooks may reach although it is not public (loopback, "
            "private...): only for receivers you run; repeat for several.",
        ),
    ] = None,
    webhook_ca: Annotated[
        Path | None,
        typer.Option(help="PEM CA bundle to verify HTTPS webhook receivers (default: system)."),
    ] = None,
    webhook_timeout: Annotated[
        float, typer.Option(help="Seconds a webhook delivery may take to connect, or to read.")
    ] = 5.0,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            envvar="COLLABZONE_TRUSTED_PROXIES",
            help="Address or network of a TLS proxy whose X-Forwarded-* headers to believe "
            "(repeat for several).",
        ),
    ] = None,
    party_cache: Annotated[
        float, typer.Option(help="Seconds a party's standing (disabled, re-keyed) is cached.")
    ] = 5.0,
    header_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send its request headers.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(help="Longest pause, seconds, while a request body arrives.")
    ] = 30.0,
    max_connections: Annotated[
        int, typer.Option(help="Open connections beyond which requests get 503.")
    ] = 1000,
    workers: Annotated[int, typer.Option(help="Threads for blocking zone calls.")] = 40,
    max_failures: Annotated[
        int, typer.Option(help="Failed sign-ins per address or client before a lock-out.")
    ] = 10,
    failure_window: Annotated[
        float, typer.Option(help="Seconds over which failed sign-ins are counted.")
    ] = 300.0,
    lockout_base: Annotated[
        float, typer.Option(help="First lock-out, seconds (doubles per further failure).")
    ] = 1.0,
    lockout_cap: Annotated[float, typer.Option(help="Longest lock-out, seconds.")] = 900.0,
    audit_window: Annotated[
        float, typer.Option(help="Repeated refusals fold into one audit event per this many s.")
    ] = 60.0,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(envvar="COLLABZONE_OIDC_ISSUER", help="OpenID provider for console sign-in."),
    ] = None,
    oidc_client_id: Annotated[str | None, typer.Option(envvar="COLLABZONE_OIDC_CLIENT_ID")] = None,
    oidc_client_secret: Annotated[
        str | None, typer.Option(envvar="COLLABZONE_OIDC_CLIENT_SECRET", show_default=False)
    ] = None,
    oidc_party_claim: Annotated[
        str, typer.Option(help="ID-token claim holding the party name.")
    ] = "collabzone_party",
) -> None:
    """Serve ZONE over HTTP(S) until interrupted (the master key comes from the environment)."""
    import uvicorn

    from collabzone.server._protocol import protocol_class
    from collabzone.server.app import create_app

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter("give both --ssl-certfile and --ssl-keyfile, or neither")
    if oidc_issuer and not oidc_client_id:
        raise typer.BadParameter("--oidc-issuer needs --oidc-client-id")
    oidc = (
        OidcSettings(oidc_issuer, oidc_client_id, oidc_client_secret, oidc_party_claim)
        if oidc_issuer and oidc_client_id
        else None
    )
    smtp = (
        SmtpSettings(smtp_host, smtp_port, smtp_sender, smtp_user, smtp_password, smtp_starttls)
        if smtp_host
        else None
    )
    settings = ServerSettings(
        zone_dir=zone,
        db_url=db,
        token_ttl=token_ttl,
        rate=rate,
        burst=burst,
        max_body=max_body,
        max_upload=max_upload,
        upload_quota=upload_quota,
        upload_window=upload_window,
        secure_cookies=ssl_certfile is not None,
        trusted_proxies=tuple(trusted_proxy or ()),
        party_cache_seconds=party_cache,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
        smtp=smtp,
        webhook_timeout=webhook_timeout,
        webhook_allow=tuple(webhook_allow or ()),
        webhook_ca=webhook_ca,
        threads=workers,
        max_failures=max_failures,
        failure_window=failure_window,
        lockout_base=lockout_base,
        lockout_cap=lockout_cap,
        audit_window=audit_window,
        oidc=oidc,
    )
    application = create_app(settings)
    uvicorn.run(
        application,
        host=host,
        port=port,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        http=protocol_class(settings.header_timeout, settings.body_timeout),
        limit_concurrency=settings.max_connections,
        proxy_headers=False,  # the app trusts only --trusted-proxy (never loopback by default)
        log_level="warning",
        access_log=False,
    )
