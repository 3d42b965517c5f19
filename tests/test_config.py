"""Config: defaults, lookup order, unknown keys and bad values named, secrets from files and credentials."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import config
from appliance.config import QUEUE_NAMES, Settings, load_settings, parse_settings
from appliance.errors import ConfigError
from appliance.secrets import ensure_api_token

REPO = Path(__file__).resolve().parent.parent


def check(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *extra, "config", "check", "--config", str(config)]
        if not extra
        else [sys.executable, "-m", "appliance", *extra, "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INGESTBOX_CONFIG", raising=False)
    monkeypatch.setenv("INGESTBOX_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.chdir(tmp_path)
    # An installed .deb puts a config at the system path; this test is about the built-in defaults.
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    settings = load_settings(None)
    assert settings.server.listen == "127.0.0.1:8480"
    assert settings.server.data_dir == tmp_path / "d"
    assert settings.storage.backend == "local"
    assert settings.uploads.max_bytes == 524_288_000


def test_env_var_names_the_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\nlisten = "127.0.0.1:9999"\n')
    monkeypatch.setenv("INGESTBOX_CONFIG", str(config))
    assert load_settings(None).server.port == 9999
    other = tmp_path / "o.toml"
    other.write_text('[server]\nlisten = "127.0.0.1:7777"\n')
    assert load_settings(str(other)).server.port == 7777  # --config wins over the variable


def test_config_check_names_file_key_value_and_allowed(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[server]\nlisten = "nowhere"\ncolour = "blue"\n'
        '[storage]\nbackend = "ftp"\n'
        '[queues.webhook-handling]\nconcurrency = 0\n'
        '[queues.mail]\nconcurrency = 2\n'
        '[uploads.clamd]\naddress = "localhost:3310"\n'
    )
    result = check(config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 6, result.stderr
    assert all(line.startswith(f"{config}: ") for line in lines)
    text = result.stderr
    assert "server.listen = 'nowhere': must be HOST:PORT" in text
    assert re.search(r"server.colour = 'blue': unknown key; allowed here: .*api_tokens.*listen", text)
    assert "storage.backend = 'ftp'" in text and "'local', 's3' or 'minio'" in text
    assert "queues.webhook-handling.concurrency = 0: must be an integer from 1 to 256, or \"auto\"" in text
    assert "queues.mail = {...}: unknown key; allowed here: email-sending, file-processing" in text
    assert "uploads.clamd.address = 'localhost:3310'" in text and "tcp://host:port" in text


def test_serve_refuses_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nlisten = 8480\n")
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert f"{config}: server.listen = 8480" in result.stderr


def test_toml_syntax_error_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[server\n")
    result = check(config)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}: not valid TOML")


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = check(tmp_path / "absent.toml")
    assert result.returncode == 2
    assert "absent.toml: file not found" in result.stderr


def test_backend_needs_its_section() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"storage": {"backend": "s3"}}, "x.toml")
    assert "needs a [storage.s3] section" in caught.value.problems[0]


def test_annotated_default_has_every_key_and_is_valid() -> None:
    """config/ingestbox.toml documents every key of the schema (commented keys count)."""
    path = REPO / "config" / "ingestbox.toml"
    settings = load_settings(str(path))
    assert settings.queues.get("media-transcoding").concurrency == "auto"
    text = path.read_text()
    missing = []

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            key = field.alias or name
            annotation = field.annotation
            sub = next(
                (a for a in (annotation, *getattr(annotation, "__args__", ())) if hasattr(a, "model_fields")),
                None,
            )
            if sub is not None:
                section = f"{prefix}.{key}" if prefix else key
                if not re.search(rf"^#? ?\[{re.escape(section)}[].]", text, re.M):
                    missing.append(section)
                walk(sub, section)
            elif not re.search(rf"^#? ?{re.escape(key)} = ", text, re.M):
                missing.append(f"{prefix}.{key}")

    walk(Settings, "")
    assert not missing, f"keys not documented in config/ingestbox.toml: {missing}"


def test_secret_files_and_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "stripe"
    secret.write_text("whsec_one\nwhsec_two\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "github-secrets").write_text("gh-secret\n")
    (creds / "api-token").write_text("cred-token\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[webhooks.stripe]\nsecrets = ["whsec_inline"]\nsecrets_file = "{secret}"\n'
        f'[email]\npassword_file = "{tmp_path / "missing"}"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(str(config))
    assert f"{config}: email.password_file = '{tmp_path / 'missing'}': cannot read" in caught.value.problems[0]
    text = config.read_text().replace("[email]\n", "")
    config.write_text(text.replace(f'password_file = "{tmp_path / "missing"}"\n', ""))
    settings = load_settings(str(config))
    assert settings.webhooks.stripe.secrets == ["whsec_inline", "whsec_one", "whsec_two"]
    assert settings.webhooks.github.secrets == ["gh-secret"]
    assert settings.server.api_tokens == ["cred-token"]
    assert ensure_api_token(settings) is None  # configured tokens: nothing generated
    assert not (tmp_path / "d" / "api-token").exists()


def test_generated_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = parse_settings({"server": {"data_dir": str(tmp_path / "d")}}, "t.toml")
    path = ensure_api_token(settings)
    assert path == tmp_path / "d" / "api-token"
    assert path.stat().st_mode & 0o777 == 0o600
    token = settings.server.api_tokens[0]
    assert len(token) >= 40
    again = parse_settings({"server": {"data_dir": str(tmp_path / "d")}}, "t.toml")
    ensure_api_token(again)
    assert again.server.api_tokens == [token]


def test_queue_names_are_the_spec_names() -> None:
    assert QUEUE_NAMES == ("file-processing", "media-transcoding", "webhook-handling", "email-sending")
