"""Stage 1: Hub model cards -> model tokens in a local catalog.

- `ModelToken`, `TOKEN_DIM`, `VECTOR_FIELDS`: one model as structured fields + a fixed-length vector.
- `tokenize(...)`: card + config + safetensors metadata -> `ModelToken`.
- `Catalog`: `Catalog.load(path=None)` (user catalog, else the embedded `model_cards/`),
  `.get`, `.filter`, `.to_pandas`, `.vectors`.
- `crawl(...)`: the Hub (or a folder of Hub-layout repos) -> catalog, incremental and crash-safe.
- `candidates_for(catalog, modality=...)`: the candidates `recommend` ranks (catalog None: the
  default, the embedded catalog plus the installed offline zoo's models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_candidates": ["candidates_for"],
        "_crawl": ["CrawlReport", "crawl"],
        "_store": ["Catalog", "CatalogStore"],
        "_token": ["SCHEMA_VERSION", "TOKEN_DIM", "VECTOR_FIELDS", "ModelToken"],
        "_tokenizer": ["parse_card", "tokenize"],
    },
)

if TYPE_CHECKING:
    from hf_spider.catalog._candidates import candidates_for
    from hf_spider.catalog._crawl import CrawlReport, crawl
    from hf_spider.catalog._store import Catalog, CatalogStore
    from hf_spider.catalog._token import SCHEMA_VERSION, TOKEN_DIM, VECTOR_FIELDS, ModelToken
    from hf_spider.catalog._tokenizer import parse_card, tokenize
