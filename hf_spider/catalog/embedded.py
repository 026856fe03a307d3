"""Build the embedded catalog (`model_cards/catalog.jsonl`) from the TransferGraph model tables.

The source is the per-model facts published with "Model Selection with Model Zoo via Graph
Learning" (Ziyu Li et al., ICDE 2024): `image/model_config.csv` and `text/model_config.csv`
of its data release (`--data DIR`, or `HF_SPIDER_TRANSFERGRAPH`). Each row is a real Hub model; its facts (architecture,
model type, parameter count, input and output size, labels, source dataset, reported accuracy)
become a `ModelToken` with provenance. The build is deterministic: same input, same bytes.

Run: `python -m hf_spider.catalog.embedded [--data DIR] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import os
from pathlib import Path
from typing import Any

from hf_spider import _paths
from hf_spider.catalog._store import JSONL_NAME, write_jsonl
from hf_spider.catalog._token import ModelToken
from hf_spider.catalog._tokenizer import family_of, params_from_config

PAPER = "Ziyu Li et al., Model Selection with Model Zoo via Graph Learning, ICDE 2024"
REPOSITORIES = ("https://github.com/zLizy/transfergraph", "https://github.com/TransferGraph/transfergraph")
# Architecture defaults used only to estimate a parameter count a table row lacks.
_BASE_CONFIGS: dict[str, dict[str, Any]] = {
    "vit": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "patch_size": 16},
}


def default_data_dir() -> Path:
    env = os.environ.get("HF_SPIDER_TRANSFERGRAPH")
    return Path(env) if env else _paths.REPO_DIR.parent / "shared" / "data" / "transfergraph"


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return None if number is None or math.isnan(number) else number


def _int(value: str | None) -> int | None:
    number = _float(value)
    return round(number) if number is not None else None


def _architectures(value: str) -> list[str]:
    value = (value or "").strip()
    if value.startswith("["):
        try:
            return [str(v) for v in ast.literal_eval(value)]
        except (ValueError, SyntaxError):
            return []
    return [value] if value else []


def _pipeline_of(architecture: str | None, records_task: str) -> str:
    if architecture and "MaskedLM" in architecture:
        return "fill-mask"
    if architecture and architecture.endswith("Model"):
        return "feature-extraction"
    return records_task


def _token_from_row(row: dict[str, str], modality: str, relpath: str, line: int) -> ModelToken:
    records_task = f"{modality}-classification"
    archs = _architectures(row.get("architectures", ""))
    arch = archs[0] if archs else None
    warnings: list[str] = []
    model_type = (row.get("model_type") or "").strip() or None
    if model_type is None and arch:
        model_type = arch.split("For")[0].lower()
        warnings.append(f"model_type missing in {relpath}; derived '{model_type}' from architecture {arch}")
    num_labels = _int(row.get("#labels") or row.get("number_of_labels"))
    params = _int(row.get("number_of_parameters"))
    params_source = "records" if params else None
    input_size = _int(row.get("input_shape"))
    if params is None and model_type in _BASE_CONFIGS:
        config = {**_BASE_CONFIGS[model_type], "model_type": model_type, "architectures": archs}
        config["image_size"] = input_size or 224
        params, _ = params_from_config(config, num_labels)
        params_source = f"estimate:{model_type}-base config with {num_labels} labels"
        warnings.append(
            f"number_of_parameters missing in {relpath}; estimated from a {model_type}-base config"
        )
    dataset = (row.get("dataset") or "").strip()
    accuracy = _float(row.get("accuracy"))
    eval_results = []
    if accuracy is not None:
        eval_results.append({"dataset": dataset or None, "metric": "accuracy", "value": accuracy})
    token = ModelToken(
        model_id=row["model"].strip(),
        pipeline_tag=_pipeline_of(arch, records_task),
        library="transformers",
        architecture=arch,
        model_type=model_type,
        family=family_of(model_type, arch),
        modality=modality,
        num_parameters=params,
        num_parameters_source=params_source,
        input_size=input_size if modality == "image" else None,
        feature_dim=_int(row.get("output_shape")),
        num_labels=num_labels,
        datasets=[dataset] if dataset else [],
        eval_results=eval_results,
        warnings=warnings,
        provenance={
            "source": "transfergraph",
            "file": relpath,
            "line": line,
            "paper": PAPER,
            "repositories": list(REPOSITORIES),
            "records_task": records_task,
            "records_file": f"{modality}/records.csv",
        },
    )
    return token


def embedded_tokens(data_dir: str | os.PathLike | None = None) -> list[ModelToken]:
    """Tokens of every model listed in `<data>/{image,text}/model_config.csv`, sorted by id."""
    root = Path(data_dir) if data_dir else default_data_dir()
    tokens: dict[str, ModelToken] = {}
    for modality in ("image", "text"):
        relpath = f"{modality}/model_config.csv"
        with open(root / relpath, newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                if not (row.get("model") or "").strip():
                    continue
                token = _token_from_row(row, modality, relpath, line)
                if token.model_id in tokens:  # same model in both tables: keep both tasks
                    tokens[token.model_id].provenance.setdefault("also", []).append(token.provenance)
                    continue
                tokens[token.model_id] = token
    return [tokens[k] for k in sorted(tokens)]


def build_embedded_catalog(
    data_dir: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None
) -> Path:
    """Regenerate `model_cards/catalog.jsonl`; returns the file written."""
    out = Path(out_dir) if out_dir else _paths.EMBEDDED_CATALOG_DIR
    file = out / JSONL_NAME
    write_jsonl(file, embedded_tokens(data_dir))
    return file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=None,
        help="the transfergraph data folder (default: HF_SPIDER_TRANSFERGRAPH, else shared/data/transfergraph "
        "next to the repository)",
    )
    parser.add_argument("--out", default=None, help="output folder (default model_cards/)")
    args = parser.parse_args(argv)
    file = build_embedded_catalog(args.data, args.out)
    print(file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
