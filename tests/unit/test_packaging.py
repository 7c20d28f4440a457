"""The wheel carries the templates: an installed copy renders without the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_installed_wheel_renders_without_the_source_tree(tmp_path):
    # The build backend pyproject.toml names, called as a PEP 517 front end calls it (pip's own start-up
    # would triple the time; tests/integration/test_package.py builds with `python -m build`, as a release does).
    assert 'build-backend = "hatchling.build"' in (REPO / "pyproject.toml").read_text()
    built = subprocess.run([sys.executable, "-c", "import sys, hatchling.build as b; b.build_wheel(sys.argv[1])",
                            str(tmp_path / "dist")], capture_output=True, text=True, timeout=120, check=False,
                           cwd=REPO)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("immich_remote-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "immich_remote/templates/docker-compose.yml.j2" in names
    assert "immich_remote/templates/hwaccel.ml.yml.j2" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    inventory = REPO / "inventory" / "example-workstation.yml"
    code = ("import immich_remote.render as r, sys; site = sys.argv.pop(1); "
            "assert str(r.template_dir()).startswith(site), r.template_dir(); "
            "from immich_remote.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, str(site), "-i", str(inventory), "render", "--server-version",
                           "2.7.5", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert b"v2.7.5-cuda" in (tmp_path / "out" / "workstation" / "docker-compose.yml").read_bytes()
