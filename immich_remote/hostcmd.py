"""What to run on a host: pure builders of command lines and small POSIX sh scripts.

Nothing here executes anything (Kamal's `commands/` idea): each function returns the text that
`ssh.Remote.run` will send, so the exact commands are unit-tested without a host. The layout of a
host's project directory (HostPaths) and the file and project names are in names.py.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from .names import PROJECT_NAME, STATE_DIRNAME, HostPaths, cache_volume_name

KEEP_RELEASES = 5


def sh(script: str) -> str:
    """Run a script with /bin/sh whatever the deploy user's login shell is (bash, zsh, fish...)."""
    return "sh -c " + shlex.quote(script)


def q(value: str) -> str:
    return shlex.quote(value)


# --- Compose and Docker ------------------------------------------------------------------------------

def compose(paths: HostPaths, *args: str) -> list[str]:
    return ["docker", "compose", "--project-directory", paths.root, "-f", paths.compose_file, *args]


def compose_up(paths: HostPaths, *, recreate: bool = False) -> list[str]:
    """Create or update the container. The image was pulled (or shipped) just before.

    `recreate` replaces a stopped or broken container with a new one, so the health gate judges a
    container with a fresh restart count.
    """
    return compose(paths, "up", "--detach", "--remove-orphans", "--pull", "never",
                   *(["--force-recreate"] if recreate else []))


def compose_down(paths: HostPaths) -> list[str]:
    """Stop and remove the container and network. Named volumes (the model cache) are kept."""
    return compose(paths, "down", "--remove-orphans")


def compose_logs(paths: HostPaths, tail: int = 30) -> list[str]:
    return compose(paths, "logs", "--no-color", "--tail", str(tail))


def pull(image: str) -> list[str]:
    return ["docker", "pull", "--quiet", image]


def image_present(image: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", image]


def inspect_containers(project: str = PROJECT_NAME) -> str:
    """Every container of a Compose project (default: the ML service's), as `docker inspect` JSON (found by
    label, not by file)."""
    label = f"com.docker.compose.project={project}"
    return (f'ids=$(docker ps -aq --filter label={label} 2>/dev/null); '
            f'if [ -n "$ids" ]; then docker inspect $ids; else echo "[]"; fi')


def volume_remove(volume: str) -> list[str]:
    return ["docker", "volume", "rm", volume]


def cache_usage(volume_or_path: str) -> str:
    """Size of the model cache: bytes from `du -sb` for a host path, Docker's human size ("583MB") for a
    volume (from the volumes table of `docker system df -v`, whose first column is the volume name)."""
    if volume_or_path.startswith("/"):
        return f"du -sb {q(volume_or_path)} 2>/dev/null | cut -f1"
    return f"docker system df -v 2>/dev/null | awk '$1 == \"{cache_volume_name(volume_or_path)}\" {{print $3}}'"


# --- Files, releases, lock -------------------------------------------------------------------------------

def files_state(paths: HostPaths) -> str:
    """Hashes of the active managed files, the state file, the lock owner and the release list."""
    files = " ".join(q(name) for name in paths.managed)
    return (f"cd {q(paths.root)} 2>/dev/null || exit 0; "
            f"for f in {files}; do [ -f \"$f\" ] && sha256sum \"$f\"; done; "
            f"echo '--state--'; cat {STATE_DIRNAME}/state.json 2>/dev/null; echo; "
            f"echo '--lock--'; cat {STATE_DIRNAME}/lock/owner 2>/dev/null; echo; "
            f"echo '--releases--'; ls -1 {STATE_DIRNAME}/releases 2>/dev/null")


def take_lock(paths: HostPaths, owner_json: str, *, force: bool = False) -> str:
    """Atomic lock: `mkdir` succeeds for exactly one run. Prints LOCKED, or HELD plus the owner."""
    steal = f"rm -rf {q(paths.lock)}; " if force else ""
    return sh(
        f"mkdir -p {q(paths.state_dir)} && {steal}"
        f"if mkdir {q(paths.lock)} 2>/dev/null; then printf '%s\\n' {q(owner_json)} > {q(paths.lock)}/owner; "
        f"echo LOCKED; else echo HELD; cat {q(paths.lock)}/owner 2>/dev/null; fi")


def release_lock(paths: HostPaths) -> str:
    return sh(f"rm -rf {q(paths.lock)}")


def prepare_release(paths: HostPaths, release_id: str) -> str:
    """An empty staging directory for a release's files (renamed into place when complete). Staging
    directories a run left behind (the host died or was cut off during its upload) are removed: the
    caller holds the host's lock, so no other run is uploading."""
    staging = paths.release(f".{release_id}.tmp")
    return sh(f"mkdir -p {q(paths.releases)} && rm -rf {q(paths.releases)}/.*.tmp && mkdir {q(staging)}")


def staging_dir(paths: HostPaths, release_id: str) -> str:
    return paths.release(f".{release_id}.tmp")


def commit_release(paths: HostPaths, release_id: str) -> str:
    """Move a complete staging directory to its final name (one rename: it exists whole or not at all)."""
    return sh(f"rm -rf {q(paths.release(release_id))} && mv {q(staging_dir(paths, release_id))} "
              f"{q(paths.release(release_id))}")


def adopt_current(paths: HostPaths, release_id: str) -> str:
    """Keep files found on the host without our state (a manual setup) as a release, so rollback can return."""
    files = " ".join(q(name) for name in paths.managed)
    release = q(f"{STATE_DIRNAME}/releases/{release_id}")
    return sh(f"cd {q(paths.root)} && mkdir -p {release} && "
              f"for f in {files}; do if [ -f \"$f\" ]; then cp -p \"$f\" {release}/; fi; done")


def activate(paths: HostPaths, release_id: str, state_json: str) -> str:
    """Put a release's files in place (each by temp file + rename), drop managed files it lacks,
    and write state.json the same way. The previous release stays under releases/ for rollback."""
    release = f"{STATE_DIRNAME}/releases/{release_id}"
    parts = [f"set -e; cd {q(paths.root)}", f"[ -d {q(release)} ]"]
    for name in paths.managed:
        parts.append(f"if [ -f {q(release + '/' + name)} ]; then cp {q(release + '/' + name)} {q('.' + name + '.tmp')} "
                     f"&& mv -f {q('.' + name + '.tmp')} {q(name)}; else rm -f {q(name)}; fi")
    parts.append(f"printf '%s\\n' {q(state_json)} > {STATE_DIRNAME}/.state.json.tmp && "
                 f"mv -f {STATE_DIRNAME}/.state.json.tmp {STATE_DIRNAME}/state.json")
    return sh("; ".join(parts))


def write_state(paths: HostPaths, state_json: str) -> str:
    """Replace state.json (temp file + rename)."""
    return sh(f"mkdir -p {q(paths.state_dir)} && printf '%s\\n' {q(state_json)} > {q(paths.state_file)}.tmp && "
              f"mv -f {q(paths.state_file)}.tmp {q(paths.state_file)}")


def append_history(paths: HostPaths, line_json: str) -> str:
    return sh(f"mkdir -p {q(paths.state_dir)} && printf '%s\\n' {q(line_json)} >> {q(paths.history)}")


def prune_releases(paths: HostPaths, keep: Sequence[str], newest: int = KEEP_RELEASES) -> str:
    """Delete old releases, always keeping `keep` (current, previous) and the `newest` by name (time)."""
    keep_pattern = " ".join(q(k) for k in keep if k) or "''"
    return sh(f"cd {q(paths.releases)} 2>/dev/null || exit 0; "
              f"ls -1 | grep -v '^\\.' | sort -r | tail -n +{newest + 1} | while read -r r; do "
              f"case \" {keep_pattern} \" in *\" $r \"*) ;; *) rm -rf \"$r\";; esac; done")


def remove_files(paths: HostPaths) -> str:
    """After `compose down`: remove our compose files from the directory (releases and history stay)."""
    files = " ".join(q(name) for name in paths.managed)
    return sh(f"cd {q(paths.root)} 2>/dev/null || exit 0; rm -rf {files}")
