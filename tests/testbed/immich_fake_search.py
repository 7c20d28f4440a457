"""``POST /api/search/smart`` of the fake Immich server: the server's smart search, minus the database.

Mirrors ``immich-app/immich:server/src/services/search.service.ts`` (``searchSmart``) and
``repositories/machine-learning.repository.ts`` (``encodeText``):

- ``SmartSearchDto``: ``query`` (trimmed), ``queryAssetId`` (UUID), ``language``, ``page`` >= 1,
  ``size`` 1..1000; the filters are accepted and ignored (the fake holds no assets).
- Smart search needs ``machineLearning.enabled`` and ``machineLearning.clip.enabled``; otherwise
  400 ``Smart search is not enabled`` (``isSmartSearchEnabled``), checked before the query.
- A ``query`` is embedded with ``{"clip": {"textual": {"modelName", "options": {"language"}}}}`` through
  the ML URL list (:meth:`MLRouter.predict`: healthy URLs first, then the rest). Every URL failing is
  a plain ``Error`` in the server, so the answer is 500 ``Internal server error``.
- Embeddings are cached per server process (``LRUMap(100)``) under ``modelName + query + language``
  (JavaScript string concatenation: an absent language is the text ``undefined``). A query the server
  saw before is answered from the cache WITHOUT calling ML: a probe must use a fresh query.
- ``queryAssetId``: the fake has no assets, so it answers like a missing one (``requireAccess``:
  400 ``Not found or no asset.read access``). Neither query nor asset: 400
  ``Either `query` or `queryAssetId` must be set``.
- The answer is ``SearchResponseDto`` with no assets (``mapResponse`` of an empty page).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

from .immich_fake_ml import MLRouter, PredictionError
from .immich_fake_validation import MISSING, Context, Num, Obj, Optional, Path, Str

CACHE_SIZE = 100
NOT_ENABLED = "Smart search is not enabled"
NO_QUERY = "Either `query` or `queryAssetId` must be set"
NO_ACCESS = "Not found or no asset.read access"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


class SearchError(Exception):
    """What the service answers instead of results: HTTP ``status`` and the server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def _uuid(value: Any, path: Path, ctx: Context) -> None:
    if isinstance(value, str) and not _UUID.match(value):
        ctx.fail(path, "custom", value, message=f"{path[-1]} must be a UUID")


def _js_string(value: Any) -> str:
    """``String(value)`` as JavaScript's ``+`` makes it (``undefined``, ``null``)."""
    if value is MISSING:
        return "undefined"
    return "null" if value is None else str(value)


def smart_search_schema() -> Obj:
    """``SmartSearchDto`` (the fields the service reads; filters are stripped like unknown fields)."""
    return Obj(
        {
            "query": Optional(Str()),
            "queryAssetId": Optional(Str(checks=[_uuid])),
            "language": Optional(Str(not_empty=True)),
            "page": Optional(Num(integer=True, min=1, coerce=True)),
            "size": Optional(Num(integer=True, min=1, max=1000, coerce=True)),
        }
    )


def empty_response() -> dict:
    """``SearchResponseDto`` of a page without assets (``SearchService.mapResponse``)."""
    return {
        "albums": {"total": 0, "count": 0, "items": [], "facets": []},
        "assets": {"total": 0, "count": 0, "items": [], "facets": [], "nextPage": None},
    }


class SmartSearch:
    """The search service of one fake server: its embedding cache and what each search did."""

    def __init__(self, router: MLRouter) -> None:
        self.router = router
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._log: list[dict] = []

    def search(self, ml_config: dict, dto: dict) -> dict:
        """Answer one validated ``SmartSearchDto``; raises :class:`SearchError` as the server would."""
        if not (ml_config.get("enabled") and (ml_config.get("clip") or {}).get("enabled")):
            raise SearchError(400, NOT_ENABLED)
        query = dto.get("query", MISSING)
        query = query.strip() if isinstance(query, str) else query
        language = dto.get("language", MISSING)
        entry: dict = {"query": query if query is not MISSING else None, "cached": False, "url": None, "error": None}
        if isinstance(query, str) and query:
            model = ml_config["clip"]["modelName"]
            key = model + query + _js_string(language)
            with self._lock:
                cached = key in self._cache
                if cached:
                    self._cache.move_to_end(key)
            if cached:
                entry["cached"] = True
            else:
                try:
                    result = self.router.predict("clip-textual", query, language=language)
                except PredictionError as error:
                    entry["error"] = str(error)
                    self._record(entry)
                    raise SearchError(500, "Internal server error") from None
                entry["url"] = result.url
                self._remember(key, result.body)
        elif dto.get("queryAssetId", MISSING) is not MISSING:
            raise SearchError(400, NO_ACCESS)
        else:
            raise SearchError(400, NO_QUERY)
        self._record(entry)
        return empty_response()

    def _remember(self, key: str, embedding: Any) -> None:
        with self._lock:
            self._cache[key] = embedding
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _record(self, entry: dict) -> None:
        with self._lock:
            self._log.append(entry)

    def searches(self) -> list[dict]:
        """Every search that reached ML or the cache: ``{query, cached, url (that served), error}``."""
        with self._lock:
            return [dict(e) for e in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
