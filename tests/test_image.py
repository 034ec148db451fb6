"""The Docker image's file set, without a Docker engine: what the Dockerfile's COPY lines put under
its WORKDIR is assembled in a temporary folder, installed (pip, as the image does) into a fresh
virtual environment, and run from there: the command line it documents (`cds-service evaluate`,
`knowledge check`) and the app's /readyz under uvicorn, as the image's healthcheck calls it.

The fresh environment finds the dependencies in this one's site-packages (a path in a .pth file,
which does not bring this checkout's editable install along), so nothing is downloaded."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from tests.support.processes import HOST, free_port, stop, wait_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = "fixtures/seed-acute-34f-after-ms-workup-lp.json"


def copied_files(dockerfile: str) -> list[tuple[str, str]]:
    """(source, destination under WORKDIR) of every COPY line, in order."""
    pairs = []
    for line in dockerfile.splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        *sources, destination = [w for w in words[1:] if not w.startswith("--")]
        pairs += [(source, destination) for source in sources]
    return pairs


def assemble(target: Path) -> None:
    for source, destination in copied_files((ROOT / "Dockerfile").read_text()):
        origin = ROOT / source
        place = target / destination
        if destination.endswith("/"):
            place = place / origin.name
        place.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, place, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, place)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The installed file set: (WORKDIR, the environment's bin folder, the image's environment)."""
    base = tmp_path_factory.mktemp("image")
    app, venv = base / "app", base / "venv"
    assemble(app)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    bin_dir = venv / "bin"
    install = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    install += ["--no-build-isolation", "--no-index", "--disable-pip-version-check", str(app)]
    subprocess.run(install, check=True, cwd=base, env=_clean_env())
    env = _clean_env() | {
        "CDS_HOOKS_DIR": str(app / "hooks"),  # the Dockerfile's ENV, with this folder for /app
        "DATABASE_URL": f"sqlite:///{app}/var/cds-feedback.sqlite3",
    }
    return app, bin_dir, env


def _clean_env() -> dict[str, str]:
    """This process's environment less what would make Python find this checkout instead."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(image: tuple[Path, Path, dict[str, str]], *args: str) -> subprocess.CompletedProcess[str]:
    app, bin_dir, env = image
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_image_installs_its_own_copy_of_runtime_and_tooling(
    image: tuple[Path, Path, dict[str, str]],
) -> None:
    code = "import cds_service, cds_tools; print(cds_service.__file__, cds_tools.__file__)"
    where = run(image, "python", "-I", "-c", code)  # -I: not the WORKDIR's source folders
    assert where.returncode == 0, where.stderr
    installed = str(image[1].parent)
    assert all(path.startswith(installed) for path in where.stdout.split()), where.stdout


def test_evaluate_a_fixture_inside_the_image(image: tuple[Path, Path, dict[str, str]]) -> None:
    result = run(image, "cds-service", "evaluate", FIXTURE)
    assert result.returncode == 0, result.stderr
    expected = json.loads((image[0] / FIXTURE).read_text())["expected"]
    assert len(json.loads(result.stdout)["cards"]) == len(expected["cards"])


def test_knowledge_check_inside_the_image(image: tuple[Path, Path, dict[str, str]]) -> None:
    result = run(image, "cds-service", "knowledge", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok, knowledge ") >= 1


def test_the_app_is_ready_under_uvicorn(image: tuple[Path, Path, dict[str, str]]) -> None:
    app, bin_dir, env = image
    port = free_port()
    server = subprocess.Popen(
        [
            str(bin_dir / "python"),
            "-m",
            "uvicorn",
            "cds_service.asgi:app",
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        cwd=app,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_port(port)
        ready = httpx.get(f"http://{HOST}:{port}/readyz", timeout=10)
    finally:
        stop(server)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"knowledge": "ok", "store": "ok"}
