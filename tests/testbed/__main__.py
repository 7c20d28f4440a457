"""Run a test bed by hand: `python -m tests.testbed up|down|status [--dir .demo]`.

    up      build/load the images, start a detached bed (registry, local ML stub, N hosts) and leave it
            running; the folder receives the keys, known_hosts, certificates and bed.json. With
            --immich-url and --api-key-file it also writes an immich-remote inventory (inventory.yml).
    down    remove the bed of --dir (or --id ID, or --all beds of this machine).
    status  show the bed of --dir: containers, their state, SSH ports and ML URLs (--json: bed.json).

`up` is a sequence of small steps (`_start_bed`, `_write_inventory`) so that starting the Immich fake can be
added as one more step between them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from .bed import LABEL, TestBed, _free_port, cleanup_stale, remove_bed
from .engine import BedError, docker
from .prereqs import missing_prerequisites

FAKE_PIDFILE = "immich-fake.pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start a bed and leave it running")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    up.add_argument("--dir", type=Path, default=Path(".demo"), help="state folder (default .demo)")
    up.add_argument("--immich-url", help="Immich (or fake) URL for the inventory")
    up.add_argument("--api-key-file", type=Path, help="API key file for the inventory")
    up.add_argument("--fake-immich", metavar="VERSION",
                    help="also start the Immich fake (this version) in the background and write inventory.yml for it")
    down = commands.add_parser("down", help="remove a bed")
    down.add_argument("--dir", type=Path, default=Path(".demo"))
    down.add_argument("--id", help="remove the bed with this id instead")
    down.add_argument("--all", action="store_true", help="remove every test bed on this machine")
    status = commands.add_parser("status", help="show a bed")
    status.add_argument("--dir", type=Path, default=Path(".demo"))
    status.add_argument("--json", action="store_true", help="print bed.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return {"up": _up, "down": _down, "status": _status}[args.command](args)
    except BedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    if (args.dir / "bed.json").exists():
        print(f"error: {args.dir} already holds a bed; `down --dir {args.dir}` first", file=sys.stderr)
        return 1
    problems = missing_prerequisites()
    if problems:
        print(
            "error: the test bed cannot start on this machine:\n- " + "\n- ".join(problems), file=sys.stderr
        )
        return 2
    cleanup_stale()
    started = time.monotonic()
    bed = _start_bed(args.dir, args.hosts)
    if args.fake_immich:
        url, key_file = _start_fake_immich(bed, args.fake_immich)
        _write_inventory(bed, url, key_file)
    elif args.immich_url and args.api_key_file:
        _write_inventory(bed, args.immich_url, args.api_key_file)
    print(f"bed {bed.id} up in {time.monotonic() - started:.1f} s")
    _print_summary(bed)
    return 0


def _start_bed(folder: Path, hosts: int) -> TestBed:
    return TestBed(folder, detached=True).start(hosts=hosts)


def _start_fake_immich(bed: TestBed, version: str) -> tuple[str, Path]:
    """The Immich fake as a background process (its local ML = the bed's local ML stub); state in the folder."""
    folder = bed.workdir.resolve()
    key_file = folder / "api-key"
    key_file.write_text(secrets.token_hex(16) + "\n")
    key_file.chmod(0o600)
    port = _free_port()
    log = open(folder / "immich-fake.log", "ab")  # noqa: SIM115 - handed to the child process
    subprocess.Popen(
        [sys.executable, "-m", "tests.testbed.immich_fake", "--port", str(port), "--version", version,
         "--api-key-file", str(key_file), "--ml-url", bed.local_ml_url, "--state-file",
         str(folder / "immich-fake-state.json"), "--pidfile", str(folder / FAKE_PIDFILE)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, cwd=Path(__file__).resolve().parents[2])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/server/version", timeout=1) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    print(f"Immich fake {version}: {url} (API key in {key_file})")
                    return url, key_file
        except OSError:
            time.sleep(0.2)
    raise BedError(f"the Immich fake did not answer on {url} within 20 s; see {folder / 'immich-fake.log'}")


def _stop_fake_immich(folder: Path) -> None:
    pidfile = folder / FAKE_PIDFILE
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
        pidfile.unlink(missing_ok=True)


def _write_inventory(bed: TestBed, immich_url: str, api_key_file: Path) -> None:
    path = bed.write_inventory(bed.workdir / "inventory.yml", immich_url, api_key_file, health_interval="2s")
    data = yaml.safe_load(path.read_text())
    data["state_dir"] = str((bed.workdir / "state").resolve())  # the sandbox's records stay in the sandbox
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"inventory: {path}")


def _down(args: argparse.Namespace) -> int:
    if args.all:
        listing = docker(
            "network", "ls", "--filter", f"label={LABEL}", "--format", f'{{{{.Label "{LABEL}"}}}}'
        )
        for bed_id in sorted(set(listing.stdout.split())):
            remove_bed(bed_id)
        return 0
    if args.id:
        remove_bed(args.id)
        return 0
    _stop_fake_immich(args.dir)
    state = args.dir / "bed.json"
    if not state.exists():
        print(f"error: no bed.json in {args.dir}", file=sys.stderr)
        return 1
    TestBed.load(args.dir).teardown()
    state.unlink()
    return 0


def _status(args: argparse.Namespace) -> int:
    if not (args.dir / "bed.json").exists():
        print(f"no bed in {args.dir}")
        return 1
    bed = TestBed.load(args.dir)
    if args.json:
        print(json.dumps(bed.describe(), indent=2))
        return 0
    _print_summary(bed)
    return 0


def _print_summary(bed: TestBed) -> None:
    states = dict(
        line.split(" ", 1)
        for line in docker(
            "ps", "-a", "--filter", f"label={LABEL}={bed.id}", "--format", "{{.Names}} {{.Status}}"
        ).stdout.splitlines()
    )
    print(f"bed {bed.id}  network {bed.network} ({bed.subnet})  state {bed.workdir / 'bed.json'}")
    if bed.registry:
        print(f"  registry   {bed.registry_host} (alias ghcr.io), pushes via 127.0.0.1:{bed.registry_port}")
    if bed.local_ml:
        print(f"  local ML   {bed.local_ml_url}  [{states.get(bed.local_ml.container, 'missing')}]")
    for host in bed.hosts:
        login = f"ssh -i {bed.client_key} -o UserKnownHostsFile={bed.known_hosts} -p {host.ssh_port} deploy@127.0.0.1"
        print(f"  {host.name:<6} {host.ip:<14} ML {host.ml_url}  [{states.get(host.container, 'missing')}]")
        print(f"         {login}")


if __name__ == "__main__":
    sys.exit(main())
