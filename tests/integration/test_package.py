"""A real package: `python -m build` makes the sdist and the wheel, with complete metadata and one version;
the wheel installs into a fresh virtualenv outside the source tree, and `immich-remote --version`, `render`
and `plan` run from there. No Docker needed; marked integration (it takes 10-20 s) by its folder.

No network either: the fresh virtualenv gets the wheel (--no-deps, --no-index) and reaches its
dependencies through a .pth line to this test run's own site-packages (they are the ones the project
pins, installed already). Paths on that line never process their own .pth files, so the project's
editable install cannot shadow the wheel; the test checks that the code runs from the wheel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import immich_remote

pytestmark = pytest.mark.integration  # builds and installs a wheel: 10-20 s, no Docker

REPO = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, REPO, cwd=tmp_path)
    version = immich_remote.__version__
    (wheel,) = dist.glob("immich_remote-*.whl")
    (sdist,) = dist.glob("immich_remote-*.tar.gz")
    assert wheel.name == f"immich_remote-{version}-py3-none-any.whl" and sdist.name == f"immich_remote-{version}.tar.gz"

    # The metadata PyPI shows: version from the one source, license with its file, classifiers, URLs.
    with zipfile.ZipFile(wheel) as zf:
        meta = Parser().parsestr(zf.read(f"immich_remote-{version}.dist-info/METADATA").decode())
        names = zf.namelist()
    assert meta["Version"] == version and meta["License-Expression"] == "AGPL-3.0-or-later"
    assert meta["License-File"] == "LICENSE" and f"immich_remote-{version}.dist-info/licenses/LICENSE" in names
    assert {"Programming Language :: Python :: 3.10", "Environment :: Console"} <= set(meta.get_all("Classifier"))
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Documentation", "Changelog"}
    assert "immich_remote/templates/docker-compose.yml.j2" in names
    with tarfile.open(sdist) as tf:
        members = {m.split("/", 1)[1] for m in tf.getnames() if "/" in m}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "docs/getting-started.md", "templates/hwaccel.ml.yml.j2"} <= members
    assert re.search(rf"^## \[{re.escape(version)}\]", (REPO / "CHANGELOG.md").read_text(), re.M)

    # A fresh virtualenv, outside the source tree, without network.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    purelib = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                       cwd=tmp_path).strip())
    (purelib / "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps",
        "--no-index", wheel, cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "NO_COLOR": "1"}  # no PYTHONPATH, no source tree
    where = run(venv / "bin" / "python", "-c", "import immich_remote; print(immich_remote.__file__)", cwd=work, env=env)
    assert where.startswith(str(purelib)), where
    tool = venv / "bin" / "immich-remote"
    assert run(tool, "--version", cwd=work, env=env).strip() == f"immich-remote, version {version}"
    inventory = work / "hosts.yml"
    inventory.write_text((REPO / "inventory" / "example-workstation.yml").read_text())
    run(tool, "-i", inventory, "render", "--server-version", "2.7.5", "--out", work / "out", cwd=work, env=env)
    assert "v2.7.5-cuda" in (work / "out" / "workstation" / "docker-compose.yml").read_text()
    plan = run(tool, "-i", inventory, "plan", "--server-version", "2.7.5", cwd=work, env=env)
    assert "ghcr.io/immich-app/immich-machine-learning:v2.7.5-cuda" in plan
    assert "http://192.168.1.50:3003, http://immich-machine-learning:3003" in plan
