"""Detect a dataset's modality and its input and label columns, and turn label values into ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hf_spider.errors import DatasetError, UserInputError

MODALITIES = ("image", "text")

# Column names, most telling first.
_LABEL_NAMES = (
    "label",
    "labels",
    "class",
    "class_label",
    "fine_label",
    "target",
    "category",
    "sentiment",
    "intent",
    "y",
    "coarse_label",
    "topic",
    "emotion",
    "genre",
    "source",
    "stars",  # 1-5 review ratings, as classes
    "rating",
)
_TEXT_NAMES = (
    "text",
    "sentence",
    "content",
    "review",
    "tweet",
    "document",
    "body",
    "utterance",
    "question",
    "title",
)
_IMAGE_NAMES = ("image", "img", "picture", "photo", "pixel_values")


@dataclass
class Columns:
    modality: str
    input_column: str
    label_column: str
    label_names: list[str] | None  # from a ClassLabel feature; None when labels are raw values
    label_kind: str  # "classlabel" | "int" | "str" | "bool"
    columns: list[str] = field(default_factory=list)


def detect_columns(
    features,
    rows: list[dict[str, Any]],
    *,
    input_column: str | None = None,
    label_column: str | None = None,
    modality: str | None = None,
    name: str = "dataset",
) -> Columns:
    """Pick modality, input and label columns from declared `features` and a few example `rows`."""
    from datasets import ClassLabel, Image, List, Sequence, Value

    if modality is not None and modality not in MODALITIES:
        raise UserInputError(f"unknown modality {modality!r}", hint=f"use one of: {', '.join(MODALITIES)}")
    columns = list(features) if features else list(dict.fromkeys(k for r in rows for k in r))
    if not columns:
        raise DatasetError(f"{name} has no columns", hint="check that the split holds examples")
    for given, what in ((input_column, "input"), (label_column, "label")):
        if given is not None and given not in columns:
            raise DatasetError(
                f"{what} column {given!r} not in {name} (columns: {', '.join(columns)})",
                hint=f"pass an existing column with --{what}-column",
            )

    def feature(col):
        return features.get(col) if features else None

    def values(col):
        return [r.get(col) for r in rows if r.get(col) is not None]

    def is_image(col) -> bool:
        f = feature(col)
        if isinstance(f, Image):
            return True
        vals = values(col)[:8]
        # file names, some of them maybe URLs (those rows are skipped: URLs are never fetched)
        return (
            bool(vals)
            and all(_looks_like_image(v) or _image_url(v) for v in vals)
            and any(map(_looks_like_image, vals))
        )

    def is_image_urls(col) -> bool:
        vals = values(col)[:8]
        return bool(vals) and all(_image_url(v) for v in vals)

    def urls_refused(col) -> DatasetError:
        return DatasetError(
            f"column {col!r} of {name} holds image URLs; hf-spider reads images from local files or "
            "the dataset's own Hub repo and never fetches URLs",
            hint="download the images and list their paths relative to the data file, or sort them "
            "into class folders",
        )

    def is_text(col) -> bool:
        f = feature(col)
        if isinstance(f, ClassLabel | Image) or is_image_urls(col):
            return False
        if isinstance(f, Value):
            return f.dtype in ("string", "large_string")
        vals = values(col)
        return bool(vals) and all(isinstance(v, str) for v in vals[:8])

    def is_multilabel(col) -> bool:
        f = feature(col)
        return isinstance(f, Sequence | List | list)

    # label column: the override, else a ClassLabel feature, else a well-known name
    if label_column is None:
        class_labels = [c for c in columns if isinstance(feature(c), ClassLabel) and c != input_column]
        if class_labels:
            named = [c for c in class_labels if c.lower() in _LABEL_NAMES]
            label_column = (named or class_labels)[0]
        else:
            lowered = {c.lower(): c for c in columns if c != input_column}
            for cand in _LABEL_NAMES:
                col = lowered.get(cand)
                if col is not None and not is_image(col) and not is_multilabel(col) and values(col):
                    label_column = col
                    break
    if label_column is None:
        lowered = {c.lower(): c for c in columns if c != input_column}
        lists = [lowered[c] for c in _LABEL_NAMES if c in lowered and is_multilabel(lowered[c])]
        if lists:  # a well-known label name that holds lists: say that, not "no label column"
            raise DatasetError(
                f"label column {lists[0]!r} of {name} holds lists (multi-label)",
                hint="hf-spider ranks single-label classification tasks; pick another --label-column",
            )
        if len(columns) == 1 and any(sep in columns[0] for sep in ";|"):
            raise DatasetError(
                f"{name} reads as one column ({columns[0]!r}): its fields seem to be separated by "
                f"{next(sep for sep in ';|' if sep in columns[0])!r}, not commas",
                hint="save it as a comma-separated (or tab-separated .tsv) file",
            )
        raise DatasetError(
            f"no label column found in {name} (columns: {', '.join(columns)})",
            hint="name the column holding the classes with --label-column",
        )
    if is_multilabel(label_column):
        raise DatasetError(
            f"label column {label_column!r} of {name} holds lists (multi-label)",
            hint="hf-spider ranks single-label classification tasks; pick another --label-column",
        )

    candidates = [c for c in columns if c != label_column]
    urls = [c for c in candidates if is_image_urls(c)]
    if input_column is not None and input_column in urls and modality != "text":
        raise urls_refused(input_column)
    if modality is None:
        if input_column is not None:
            modality = "image" if is_image(input_column) else "text"
        elif any(is_image(c) for c in candidates):
            modality = "image"
        elif any(is_text(c) for c in candidates):
            modality = "text"
        elif urls:
            raise urls_refused(urls[0])
        else:
            raise DatasetError(
                f"no image or text column in {name} besides the label column {label_column!r} "
                f"(columns: {', '.join(columns)})",
                hint="check --label-column (it names the classes, not the inputs), or name the input "
                "column with --input-column, or pass --modality",
            )
    if input_column is None:
        if modality == "image":
            found = [c for c in candidates if is_image(c)]
            preferred = [c for c in found if c.lower() in _IMAGE_NAMES]
            if not found and urls:
                raise urls_refused(urls[0])
        else:
            found = [c for c in candidates if is_text(c)]
            # by the list's order, not the file's: a `title` before a `body` is not the input
            preferred = sorted(
                (c for c in found if c.lower() in _TEXT_NAMES), key=lambda c: _TEXT_NAMES.index(c.lower())
            )
            # several free-text columns: the longest on average is the input, not an id or a title
            found.sort(key=lambda c: -_mean_len(values(c)))
        if not found:
            raise DatasetError(
                f"no {modality} column in {name} (columns: {', '.join(columns)})",
                hint="name the input column with --input-column",
            )
        input_column = (preferred or found)[0]
    if input_column == label_column:
        raise DatasetError(
            f"input and label column are both {input_column!r}", hint="pass two different columns"
        )

    lf = feature(label_column)
    if isinstance(lf, ClassLabel):
        return Columns(modality, input_column, label_column, list(lf.names), "classlabel", columns)
    vals = values(label_column)
    kind = "str"
    if vals and all(isinstance(v, bool) for v in vals):
        kind = "bool"
    elif vals and all(isinstance(v, int) for v in vals):
        kind = "int"
    elif vals and all(isinstance(v, float) for v in vals):
        if not all(float(v).is_integer() for v in vals):
            raise DatasetError(
                f"label column {label_column!r} of {name} holds continuous values (a regression target)",
                hint="hf-spider ranks classification tasks; pick another --label-column",
            )
        kind = "int"
    elif isinstance(lf, Value) and lf.dtype.startswith(("int", "uint")):
        kind = "int"
    return Columns(modality, input_column, label_column, None, kind, columns)


def label_key(value: Any, kind: str, names: list[str] | None = None) -> Any:
    """A label value as stored -> a hashable class key, or None when unlabelled."""
    if value is None:
        return None
    if kind == "classlabel":
        if isinstance(value, str):  # a text file whose card declares the class names
            if names and value in names:
                return names.index(value)
            return int(value) if value.strip().lstrip("-").isdigit() and int(value) >= 0 else None
        return None if int(value) < 0 else int(value)
    if kind == "int":
        if isinstance(value, float):
            if value != value:  # NaN
                return None
            return int(value)
        return int(value) if not isinstance(value, str) else value
    if kind == "bool":
        return bool(value)
    text = str(value).strip()
    return text or None


def _looks_like_image(value: Any) -> bool:
    if isinstance(value, str):  # a csv column of image file names (not URLs: never fetched)
        return "://" not in value and _image_path(value.strip())
    if isinstance(value, dict):
        return ("bytes" in value or "path" in value) and (
            value.get("bytes") is not None or _image_path(value.get("path"))
        )
    try:
        from PIL.Image import Image as PILImage
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, PILImage)


def _image_url(value: Any) -> bool:
    """An image given by URL (http, https, file, ...): recognised, never fetched."""
    return isinstance(value, str) and "://" in value and _image_path(value.strip().split("?", 1)[0])


def _image_path(path: Any) -> bool:
    return isinstance(path, str) and path.lower().rsplit(".", 1)[-1] in {
        "png",
        "jpg",
        "jpeg",
        "bmp",
        "gif",
        "webp",
        "tif",
        "tiff",
    }


def _mean_len(vals: list) -> float:
    strs = [v for v in vals if isinstance(v, str)]
    return sum(map(len, strs)) / len(strs) if strs else 0.0
