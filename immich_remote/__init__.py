"""immich-remote: run Immich's machine learning on stronger hosts over SSH, version-matched, with local fallback."""

__version__ = "0.1.0"
