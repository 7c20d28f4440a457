"""One verdict of a preflight check (a leaf module: preflight, compat and the commands share it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str  # PASS, WARN or FAIL
    detail: str
    fix: str = ""

    def to_data(self) -> dict:
        return asdict(self)
