"""The configuration schema, its loading from TOML, and the one-line-per-error report of `config check`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/ingestbox/ingestbox.toml")
DEFAULT_LISTEN = "127.0.0.1:8480"
MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 500 * MiB
QUEUE_NAMES = ("file-processing", "media-transcoding", "webhook-handling", "email-sending")
DEFAULT_ALLOWED_TYPES = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "video/mp4",
    "video/quicktime",
    "application/pdf",
]


class Strict(BaseModel):
    """A config section: unknown keys are errors, values are validated, nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ServerSettings(Strict):
    listen: str = DEFAULT_LISTEN
    data_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("INGESTBOX_DATA_DIR", "ingestbox-data")), validate_default=True
    )
    api_tokens: list[str] = Field(default_factory=list)
    api_token_file: Path | None = None
    public_url: str | None = None
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    db_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8480")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LocalStorageSettings(Strict):
    root: Path | None = None


class S3Settings(Strict):
    endpoint_url: str | None = None
    bucket: str = Field(min_length=3)
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    secret_access_key_file: Path | None = None
    part_size_mb: int = Field(default=8, ge=5, le=512)
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class MinioSettings(Strict):
    endpoint: str = Field(min_length=1)
    bucket: str = Field(min_length=3)
    access_key: str | None = None
    secret_key: str | None = None
    secret_key_file: Path | None = None
    secure: bool = True
    region: str | None = None
    part_size_mb: int = Field(default=8, ge=5, le=512)
    presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class StorageSettings(Strict):
    backend: Literal["local", "s3", "minio"] = "local"
    local: LocalStorageSettings = Field(default_factory=LocalStorageSettings)
    s3: S3Settings | None = None
    minio: MinioSettings | None = None

    @model_validator(mode="after")
    def _backend_section_present(self) -> StorageSettings:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError('backend "s3" needs a [storage.s3] section with at least bucket')
        if self.backend == "minio" and self.minio is None:
            raise ValueError('backend "minio" needs a [storage.minio] section with endpoint and bucket')
        return self


class ClamdSettings(Strict):
    address: str | None = None
    required: bool = False
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("address")
    @classmethod
    def _address_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("unix:///"):
            return value
        if value.startswith("tcp://"):
            host, sep, port = value[len("tcp://") :].rpartition(":")
            if sep and host and port.isdigit():
                return value
        raise ValueError('must be "unix:///path/to/clamd.ctl" or "tcp://host:port"')


class UploadSettings(Strict):
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0, le=64 * 1024 * MiB)
    allowed_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))
    clamd: ClamdSettings = Field(default_factory=ClamdSettings)
    # Signs the POST to an upload's callback_url; unset: a key generated into <data_dir>/callback-secret.
    callback_secret: str | None = None
    callback_secret_file: Path | None = None


class StripeSettings(Strict):
    secrets: list[str] = Field(default_factory=list)
    secrets_file: Path | None = None
    tolerance_seconds: int = Field(default=300, ge=1, le=86400)
    forward_to: str | None = None
    forward_secret: str | None = None


class GithubSettings(Strict):
    secrets: list[str] = Field(default_factory=list)
    secrets_file: Path | None = None
    forward_to: str | None = None
    forward_secret: str | None = None


class WebhookSettings(Strict):
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    github: GithubSettings = Field(default_factory=GithubSettings)
    retention_days: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=25 * MiB, gt=0, le=100 * MiB)


class AlertSettings(Strict):
    url: str | None = None
    email_to: list[str] = Field(default_factory=list)


class EmailSettings(Strict):
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    sender: str = "ingestbox@localhost"
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    starttls: bool = True
    timeout_seconds: float = Field(default=30.0, gt=0)


class QueueSettings(Strict):
    concurrency: int | str | None = None  # None: the queue's default from SPEC.md
    max_attempts: int = Field(default=3, ge=1, le=25)
    backoff_base_seconds: float = Field(default=1.0, ge=0, le=3600)
    backoff_factor: float = Field(default=4.0, ge=1, le=100)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: object) -> object:
        if value is None or value == "auto":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 256:
            return value
        raise ValueError('must be an integer from 1 to 256, or "auto"')


class QueuesSettings(Strict):
    file_processing: QueueSettings = Field(default_factory=QueueSettings, alias="file-processing")
    media_transcoding: QueueSettings = Field(default_factory=QueueSettings, alias="media-transcoding")
    webhook_handling: QueueSettings = Field(default_factory=QueueSettings, alias="webhook-handling")
    email_sending: QueueSettings = Field(default_factory=QueueSettings, alias="email-sending")

    def get(self, name: str) -> QueueSettings:
        value: QueueSettings = getattr(self, name.replace("-", "_"))
        return value


class DlqSettings(Strict):
    retention_days: float = Field(default=7.0, gt=0, le=3650)


class JobsSettings(Strict):
    completed_retention_days: float = Field(default=7.0, gt=0, le=3650)


class HwaccelSettings(Strict):
    mode: Literal["auto", "off", "nvenc", "qsv", "vaapi"] = "auto"
    prefer: list[Literal["nvenc", "qsv", "vaapi"]] = Field(
        default_factory=lambda: ["nvenc", "qsv", "vaapi"]  # type: ignore[arg-type]
    )
    # Decode on a GPU that can decode but not encode (NVDEC without NVENC: H100, H200), encode with libx264.
    hybrid_decode: bool = False


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class TranscodeSettings(Strict):
    # libx264's speed preset; the quality target `crf` maps onto every encoder's own scale (hwaccel/backends.py).
    preset: Literal[X264_PRESETS] = "veryfast"  # type: ignore[valid-type]
    crf: int = Field(default=23, ge=0, le=51)
    # New transcodes wait while less memory than this is available.
    min_free_memory_mb: int = Field(default=512, ge=0)


class Settings(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    queues: QueuesSettings = Field(default_factory=QueuesSettings)
    dlq: DlqSettings = Field(default_factory=DlqSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    hwaccel: HwaccelSettings = Field(default_factory=HwaccelSettings)
    transcode: TranscodeSettings = Field(default_factory=TranscodeSettings)

    # Where the settings came from; not a config key.
    _source: str = "built-in defaults"

    @property
    def source(self) -> str:
        return self._source


def find_config_path(explicit: str | None) -> Path | None:
    """The lookup order of SPEC.md: --config, $INGESTBOX_CONFIG, /etc/ingestbox/ingestbox.toml, defaults."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("INGESTBOX_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH
    return None


def load_settings(explicit: str | None = None) -> Settings:
    """Load, validate and resolve secrets; raise ConfigError with one line per problem."""
    path = find_config_path(explicit)
    settings = Settings() if path is None else parse_settings(_read_toml(path), str(path))
    from appliance.secrets import resolve_secrets  # late: secrets imports this module's types

    resolve_secrets(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    """Validate a parsed TOML document against the schema."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(source, error) for error in exc.errors()]
        raise ConfigError(list(dict.fromkeys(lines))) from None
    settings._source = source
    return settings


def _describe(source: str, error: Any) -> str:
    """One line: file, key, bad value, what is allowed."""
    loc = [str(part) for part in error["loc"]]
    # Literal | int unions report the branch in the location (e.g. 'int', 'literal['auto']').
    loc = [part for part in loc if not part.startswith(("literal[", "int", "constrained-"))]
    key = ".".join(loc) or "(top level)"
    value = error.get("input")
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{source}: {key} = {_show(value)}: unknown key; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"{source}: {key}: required key is missing"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{source}: {key} = {_show(value)}: {message}"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: list[str]) -> list[str]:
    model: Any = Settings
    for part in loc:
        field = _field_by_key(model, part)
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return sorted((f.alias or name) for name, f in model.model_fields.items())


def _field_by_key(model: Any, key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
