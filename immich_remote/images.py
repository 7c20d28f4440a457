"""Getting the image onto a host while the old container keeps serving: `docker pull` there, or
`--ship-image` from this machine's Docker engine over the same SSH connection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing

from .context import HostContext
from .errors import InputError, RemoteCommandError
from .hostcmd import (
    image_present,
    pull,
)
from .pullprogress import HttpStream, PullState, pull_command
from .ssh import Remote

Report = Callable[[int, "int | None", str, bool], None]  # (bytes done, total, what, total is a lower bound)


def ship_image(remote: Remote, image: str, report: Report | None = None) -> None:
    """Stream `image` from this machine's Docker engine into the host's `docker load` over SSH;
    `report` hears the bytes sent (of about the image's size: `docker save` writes its layers whole)."""
    import docker  # imported here: only --ship-image needs a local engine
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env(timeout=60)
        size = client.images.get(image).attrs.get("Size") or None
        chunks = client.api.get_image(image, chunk_size=1 << 20)
    except ImageNotFound:
        raise InputError(f"--ship-image: {image} is not in this machine's Docker engine.",
                         hint=f"`docker pull {image}` here first (or build it), then retry.") from None
    except DockerException as exc:
        raise InputError(f"--ship-image needs a Docker engine on this machine: {exc}.") from None
    remote.stream_in("docker load", counted(chunks, size, report), what=f"docker load of {image}")


def counted(chunks: Iterable[bytes], size: int | None, report: Report | None) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        yield chunk
        sent += len(chunk)
        if report is not None:
            report(sent, max(size or 0, sent) or None, "sending", False)


def pull_image(remote: Remote, image: str, report: Report | None = None) -> None:
    """`docker pull` on the host, reading the engine's own progress (pullprogress.py) for `report`.

    Where the engine API cannot be reached that way (no `docker system dial-stdio`) or the registry
    wants credentials (which only the host's docker CLI holds), `docker pull` itself runs, without
    byte counts."""
    what = f"docker pull {image}"
    stream, state = HttpStream(), PullState()

    def feed(data: bytes) -> None:
        for message in stream.feed(data):
            state.update(message)
        if report is not None and stream.status == 200 and not state.error:
            done, total = state.counts()
            report(done, total or None, state.phase, not state.sized)

    try:
        with closing(remote.stream_out(pull_command(image), what=what)) as answer:  # closed: the channel too
            for data in answer:
                feed(data)
                if stream.done:
                    break
    except RemoteCommandError as exc:
        # It exited without an answer: no dial-stdio here. Not a lost or abandoned connection (exit
        # status -1, e.g. Ctrl-C closed it): pulling again would reconnect and undo the abandon.
        if stream.status is None and (exc.exit_status or 0) > 0:
            remote.run(pull(image), what=what)
            return
        raise exc from None
    for message in stream.finish():
        state.update(message)
    if state.auth_error() or stream.status is None:
        remote.run(pull(image), what=what)
        return
    if state.error or stream.status != 200:
        raise RemoteCommandError(f"Host '{remote.target.label}': {what} failed: Error response from daemon: "
                                 f"{state.error or f'HTTP {stream.status}'}", command=pull_command(image))
    if not state.finished:
        raise RemoteCommandError(f"Host '{remote.target.label}': {what} failed: the engine's answer ended before "
                                 "the pull was complete", command=pull_command(image))

def ensure_image(ctx: HostContext, remote: Remote, image: str, step: Callable[[str], None]) -> None:
    """Pull (or ship) the image while the old container keeps serving."""
    if remote.run(image_present(image), check=False, what="docker image inspect").ok:
        return
    def report(done: int, total: int | None, what: str, at_least: bool) -> None:
        ctx.progress.transfer(remote.target.label, done, total, what, at_least=at_least)

    if ctx.options.ship_image:
        step(f"shipping {image}")
        ship_image(remote, image, report)
    else:
        step(f"pulling {image}")
        pull_image(remote, image, report)
