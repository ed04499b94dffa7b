"""The configuration examples in docs/examples are loaded, so they cannot rot."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from sealbox.config import S3Settings, Settings

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
KNOWN = {f"SEALBOX_{name.upper()}" for name in Settings.model_fields if name != "s3"} | {
    f"SEALBOX_S3__{name.upper()}" for name in S3Settings.model_fields
}


def read_env(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


@pytest.mark.parametrize("name", ["single-host.env", "scaled-out.env"])
def test_env_examples_hold_only_real_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = read_env(EXAMPLES / name)
    assert set(env) <= KNOWN, set(env) - KNOWN
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert str(settings.data_dir) == env["SEALBOX_DATA_DIR"]
    assert not settings.keyring.is_relative_to(settings.data_dir)
    if name == "scaled-out.env":
        assert settings.storage == "s3"
        assert settings.s3.bucket == "sealbox-blobs"
        assert settings.db_url.startswith("postgresql+psycopg://")
    else:
        assert settings.storage == "local"
        assert settings.max_upload_size == 20 << 30


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(EXAMPLES / "sealbox.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("sealbox serve")
    assert service["RestartPreventExitStatus"] == "78"
    assert service["UMask"] == "0077"
    assert service["EnvironmentFile"] == "/etc/sealbox/sealbox.env"


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx absent")
def test_nginx_example_is_valid(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl absent")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = (EXAMPLES / "nginx.conf").read_text()
    server = server.replace("/etc/ssl/sealbox/fullchain.pem", str(cert)).replace(
        "/etc/ssl/sealbox/privkey.pem", str(key)
    )
    server = server.replace("/var/log/nginx/", f"{tmp_path}/")
    assert "proxy_request_buffering off;" in server
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"client_body_temp_path {tmp_path}/body;\nproxy_temp_path {tmp_path}/proxy;\n"
        f"fastcgi_temp_path {tmp_path}/f;\nuwsgi_temp_path {tmp_path}/u;\nscgi_temp_path {tmp_path}/s;\n"
        + (EXAMPLES / "nginx-log-format.conf").read_text()
        + server
        + "\n}\n"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
