"""Secrets from inline values, `*_file` paths and systemd credentials ($CREDENTIALS_DIRECTORY)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from appliance.config import Settings
from appliance.errors import ConfigError

# systemd credential name -> what it fills. `LoadCredential=api-token:/path` in the unit
# makes $CREDENTIALS_DIRECTORY/api-token readable to the service alone.
CREDENTIAL_NAMES = {
    "api-token": "server.api_tokens",
    "stripe-secrets": "webhooks.stripe.secrets",
    "github-secrets": "webhooks.github.secrets",
    "s3-secret-access-key": "storage.s3.secret_access_key",
    "minio-secret-key": "storage.minio.secret_key",
    "smtp-password": "email.password",
    "callback-secret": "uploads.callback_secret",
}


def _read_secret_file(source: str, key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"{source}: {key} = {str(path)!r}: cannot read: {exc.strerror}"]) from None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _credential(name: str) -> str | None:
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip()


def resolve_secrets(settings: Settings) -> None:
    """Fill secret values from *_file paths and credentials, in place."""
    src = settings.source
    server = settings.server
    # A named token file that does not exist yet is created at first start (ensure_api_token).
    if server.api_token_file is not None and server.api_token_file.exists():
        server.api_tokens = [*server.api_tokens, *_lines(server.api_token_file.read_text())]
    token = _credential("api-token")
    if token:
        server.api_tokens = [*server.api_tokens, *_lines(token)]

    for name, section in (("stripe", settings.webhooks.stripe), ("github", settings.webhooks.github)):
        if section.secrets_file is not None:
            text = _read_secret_file(src, f"webhooks.{name}.secrets_file", section.secrets_file)
            section.secrets = [*section.secrets, *_lines(text)]
        from_cred = _credential(f"{name}-secrets")
        if from_cred:
            section.secrets = [*section.secrets, *_lines(from_cred)]

    s3 = settings.storage.s3
    if s3 is not None and s3.secret_access_key is None:
        s3.secret_access_key = _one_secret(src, "storage.s3.secret_access_key_file", s3.secret_access_key_file,
                                           "s3-secret-access-key")
    minio = settings.storage.minio
    if minio is not None and minio.secret_key is None:
        minio.secret_key = _one_secret(src, "storage.minio.secret_key_file", minio.secret_key_file,
                                       "minio-secret-key")
    email = settings.email
    if email.password is None:
        email.password = _one_secret(src, "email.password_file", email.password_file, "smtp-password")
    uploads = settings.uploads
    if uploads.callback_secret is None:
        uploads.callback_secret = _one_secret(src, "uploads.callback_secret_file", uploads.callback_secret_file,
                                              "callback-secret")


def _one_secret(source: str, key: str, path: Path | None, credential: str) -> str | None:
    """A single-valued secret: its *_file when one is named, else the systemd credential, else None."""
    if path is not None:
        return _read_secret_file(source, key, path)
    return _credential(credential)


def ensure_api_token(settings: Settings) -> Path | None:
    """Generate a token into <data_dir>/api-token (mode 0600) when none is configured.

    Returns the file the token lives in, or None when tokens came from the config or credentials.
    """
    server = settings.server
    if server.api_tokens:
        return server.api_token_file
    path = server.api_token_file or server.data_dir / "api-token"
    if path.exists():
        server.api_tokens = _lines(path.read_text(encoding="utf-8"))
        if server.api_tokens:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    server.api_tokens = [token]
    return path
