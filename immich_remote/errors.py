"""The exception hierarchy. Every error a user can cause or fix is one of these.

Each carries an exit code and a message written for the person at the terminal: what went
wrong, where (file, field or host), and what to do about it. The CLI prints the message and
exits with the code; nothing below the CLI prints or exits on its own.
"""

from __future__ import annotations

# Exit codes scripts can rely on (documented in README.md).
EXIT_FAILED = 1  # a check failed, a host failed, a version is behind
EXIT_BAD_INPUT = 2  # the inventory, an option or an argument is wrong
EXIT_CONFIG_LOCKED = 3  # Immich's config is managed by IMMICH_CONFIG_FILE; edit the file instead
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM


class ImmichRemoteError(Exception):
    """Base class: a failure with a message meant for a person."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class InputError(ImmichRemoteError):
    """Bad input: an option, an argument, or the inventory. Exit code 2."""

    exit_code = EXIT_BAD_INPUT


class InventoryError(InputError):
    """The inventory file is invalid; the message names the file, line and key path."""


class VersionError(InputError):
    """A version that cannot be pinned (prerelease, `release`, `latest`, malformed)."""


class UnsupportedBackend(InputError):
    """An accelerator backend that does not exist for a host's CPU architecture."""


class SSHError(ImmichRemoteError):
    """Connecting to a host or running a command on it failed."""


class HostKeyError(SSHError):
    """The host's SSH key is unknown or does not match known_hosts."""


class RemoteCommandError(SSHError):
    """A remote command exited non-zero or timed out."""

    def __init__(self, message: str, *, command: str = "", stdout: str = "", stderr: str = "",
                 exit_status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.exit_status = exit_status


class LockHeld(ImmichRemoteError):
    """Another immich-remote run holds the deploy lock on a host."""


class ImmichAPIError(ImmichRemoteError):
    """The Immich server refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ImmichPermissionError(ImmichAPIError):
    """The API key lacks a permission; the message names it."""


class ConfigLocked(ImmichAPIError):
    """Immich runs with IMMICH_CONFIG_FILE: settings cannot be changed through the API."""

    exit_code = EXIT_CONFIG_LOCKED
