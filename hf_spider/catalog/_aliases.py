"""Hub ids that changed: the canonical models the Hub moved under organisations in 2024.

`bert-base-uncased` is `google-bert/bert-base-uncased` today, `roberta-base` is
`FacebookAI/roberta-base`, `gpt2` is `openai-community/gpt2`: the Hub redirects the old ids, and a
crawl lists the new ones. Records written before the move (the shared fine-tuning records among
them) name the old ones, so a model's history is looked up under both.
"""

from __future__ import annotations

# Organisations made for the moved models: every repo of theirs had its bare name as its id.
MOVED_ORGS = frozenset(
    {"google-bert", "FacebookAI", "distilbert", "albert", "openai-community", "google-t5", "xlnet"}
)
# Moved into organisations that also hold repos of their own.
MOVED_ONE_BY_ONE = {"almanach/camembert-base": "camembert-base", "Salesforce/ctrl": "ctrl"}


def former_id(model_id: str) -> str | None:
    """The id a moved canonical model had before 2024 (`google-bert/bert-base-uncased` ->
    `bert-base-uncased`), None for any other id."""
    org, _, name = model_id.partition("/")
    if name and org in MOVED_ORGS:
        return name
    return MOVED_ONE_BY_ONE.get(model_id)
