"""Getting the image onto a host while the old container keeps serving: `docker pull` there, or
`--ship-image` from this machine's Docker engine over the same SSH connection."""

from __future__ import annotations

from collections.abc import Callable

from .context import HostContext
from .errors import InputError
from .hostcmd import (
    image_present,
    pull,
)
from .ssh import Remote


def ship_image(remote: Remote, image: str) -> None:
    """Stream `image` from this machine's Docker engine into the host's `docker load` over SSH."""
    import docker  # imported here: only --ship-image needs a local engine
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env(timeout=60)
        client.images.get(image)
        chunks = client.api.get_image(image, chunk_size=1 << 20)
    except ImageNotFound:
        raise InputError(f"--ship-image: {image} is not in this machine's Docker engine.",
                         hint=f"`docker pull {image}` here first (or build it), then retry.") from None
    except DockerException as exc:
        raise InputError(f"--ship-image needs a Docker engine on this machine: {exc}.") from None
    remote.stream_in("docker load", chunks, what=f"docker load of {image}")

def ensure_image(ctx: HostContext, remote: Remote, image: str, step: Callable[[str], None]) -> None:
    """Pull (or ship) the image while the old container keeps serving."""
    if remote.run(image_present(image), check=False, what="docker image inspect").ok:
        return
    if ctx.options.ship_image:
        step(f"shipping {image}")
        ship_image(remote, image)
    else:
        step(f"pulling {image}")
        remote.run(pull(image), what=f"docker pull {image}")
