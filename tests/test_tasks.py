"""Task tokens: metadata part, data part, card-only repos, Hub ids through the loopback server."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import zoo_has
from PIL import Image

from hf_spider.cli import main
from hf_spider.errors import DatasetError
from hf_spider.tasks import DATA_TOKEN_LENGTH, METADATA_VECTOR_LENGTH, Task, load_task
from hf_spider.tasks._tiny import make_tiny_text_model, make_tiny_vision_model
from hf_spider.tasks.task import TASK_CATEGORIES, hashed_bag, summarise_features
from hf_spider.testing.hub_server import HubServer, write_repo

CARD_ONLY = """---
pretty_name: Flowers Five
task_categories:
- image-classification
tags:
- flowers
license: cc-by-4.0
dataset_info:
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
          '0': daisy
          '1': dandelion
          '2': rose
          '3': sunflower
          '4': tulip
  splits:
  - name: train
    num_examples: 3670
---
# Flowers

Photos of five kinds of flowers, in the card only: the images live elsewhere.
"""


def _reviews_csv(path, n=90, seed=0):
    rng = np.random.default_rng(seed)
    words = {"pos": ["good", "great", "fun", "love"], "neg": ["bad", "awful", "boring", "hate"]}
    labels = rng.choice(["pos", "neg"], size=n)
    texts = [" ".join(rng.choice(words[lab], size=4)) + " movie" for lab in labels]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def _png(rng, size=16, fill=None):
    buf = io.BytesIO()
    arr = (
        rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        if fill is None
        else np.full((size, size, 3), fill, np.uint8)
    )
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# -- metadata part -------------------------------------------------------------------------------


def test_card_only_folder_gives_metadata_only_task(tmp_path):
    repo = tmp_path / "flowers"
    repo.mkdir()
    (repo / "README.md").write_text(CARD_ONLY)
    task = load_task(repo)
    assert not task.has_data and task.inputs is None and task.labels is None and task.data_token is None
    assert task.modality == "image" and task.name == "Flowers Five"
    md = task.metadata
    assert md["num_classes"] == 5 and md["label_names"][2] == "rose"
    assert md["num_examples"] == 3670 and md["class_balance"] is None
    assert md["task_categories"] == ["image-classification"] and md["tags"] == ["flowers"]
    vec = task.metadata_vector()
    assert vec.shape == (METADATA_VECTOR_LENGTH,) and vec.dtype == np.float32
    assert vec[0] == 1.0 and vec[1] == 0.0
    assert vec[2] == pytest.approx(np.log10(5) / 3)
    assert vec[3] == pytest.approx(np.log10(3671) / 7) and vec[4] == 1.0
    assert vec[5] == 0.0 and vec[6] == 0.0 and vec[7] == 0.0
    assert vec[8 + TASK_CATEGORIES.index("image-classification")] == 1.0
    assert np.allclose(vec[20:44], hashed_bag("daisy dandelion rose sunflower tulip", 24))
    token = task.token()
    assert (
        token.shape == (METADATA_VECTOR_LENGTH + DATA_TOKEN_LENGTH,)
        and not token[METADATA_VECTOR_LENGTH:].any()
    )
    # the README alone works as well
    assert load_task(repo / "README.md").metadata["num_classes"] == 5


def test_card_only_errors(tmp_path, capsys):
    repo = tmp_path / "one"
    repo.mkdir()
    (repo / "README.md").write_text(
        CARD_ONLY.replace(
            "          '1': dandelion\n          '2': rose\n          '3': sunflower\n          '4': tulip\n",
            "",
        )
    )
    with pytest.raises(DatasetError, match="single class"):
        load_task(repo)
    (repo / "README.md").write_text("---\ntask_categories: [text-classification]\n---\nNo features at all.\n")
    assert main(["task", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "no label column" in err and err.count("\n") == 1


def test_metadata_vector_differs_between_tasks_and_is_stable(tmp_path):
    path = _reviews_csv(tmp_path / "r.csv")
    a = load_task(path, sample=30, probe=False)
    b = load_task(path, sample=30, probe=False)
    assert np.array_equal(a.metadata_vector(), b.metadata_vector())
    assert a.metadata_vector()[1] == 1.0 and a.metadata_vector()[6] == 1.0
    repo = tmp_path / "flowers"
    repo.mkdir()
    (repo / "README.md").write_text(CARD_ONLY)
    assert not np.allclose(a.metadata_vector(), load_task(repo).metadata_vector())


def test_hashed_bag_is_normalised_and_deterministic():
    v = hashed_bag("Daisy rose, ROSE tulip", 24)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert np.array_equal(v, hashed_bag("daisy rose rose tulip", 24))
    assert not hashed_bag("", 24).any()


# -- data part -----------------------------------------------------------------------------------


def test_summarise_features_orders_separability():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    centers = rng.standard_normal((3, 20)) * 4
    separable = centers[labels] + 0.1 * rng.standard_normal((120, 20))
    mixed = rng.standard_normal((120, 20))
    tok_sep, protos = summarise_features(separable, labels)
    tok_mix, _ = summarise_features(mixed, labels)
    assert tok_sep.shape == (DATA_TOKEN_LENGTH,) and protos.shape == (3, 20)
    assert tok_sep[100] == 1.0 and tok_mix[100] < 0.7  # leave-one-out 1-NN accuracy
    assert tok_sep[99] > 0.9 > tok_mix[99]  # between / total variance
    assert tok_sep[98] < tok_mix[98]  # within-class spread
    assert tok_sep[103] == pytest.approx(np.log10(3) / 3)
    # invariant to the scale of the features (they are L2-normalised first)
    assert np.allclose(summarise_features(separable * 7.0, labels)[0], tok_sep, atol=1e-5)


def test_text_task_with_data_has_both_parts(tmp_path):
    probe = make_tiny_text_model(tmp_path / "probe", kind="sentence-transformers")
    repo = tmp_path / "reviews"
    repo.mkdir()
    (repo / "README.md").write_text(
        "---\ntask_categories: [text-classification]\n---\nMovie reviews, good or bad.\n"
    )
    _reviews_csv(repo / "train.csv")
    task = load_task(repo, sample=40, probe=str(probe))
    assert task.has_data and task.probe == str(probe)
    assert task.data_token.shape == (DATA_TOKEN_LENGTH,) and np.isfinite(task.data_token).all()
    assert task.prototypes.shape == (2, 32)
    assert task.metadata_vector()[8 + TASK_CATEGORIES.index("text-classification")] == 1.0
    d = task.to_dict()
    json.dumps(d)
    assert len(d["data_token"]) == DATA_TOKEN_LENGTH and d["sample_class_counts"].keys() == {"neg", "pos"}
    # the same sample gives the same token (features come from the cache the second time)
    again = load_task(repo, sample=40, probe=str(probe))
    assert np.allclose(again.data_token, task.data_token)


def test_image_task_data_part_and_missing_probe_gives_metadata_part_only(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for c, fill in (("dark", 20), ("light", 230)):
        (root / c).mkdir(parents=True)
        for i in range(6):
            (root / c / f"{i}.png").write_bytes(_png(rng, fill=fill + i))
    probe = make_tiny_vision_model(tmp_path / "vit")
    task = load_task(root, sample=12, probe=str(probe))
    assert task.data_token.shape == (DATA_TOKEN_LENGTH,)
    # default probe with no zoo installed: the task still loads, without the data part
    monkeypatch.setenv("HF_SPIDER_ZOO", str(tmp_path / "no-zoo"))
    plain = load_task(root, sample=12)
    assert plain.has_data and plain.data_token is None
    assert "probe encoder" in caplog.text


def test_task_to_dict_roundtrip_fields():
    task = Task(
        name="x",
        modality="text",
        metadata={"num_classes": 2, "label_names": ["a", "b"], "num_examples": 4, "class_balance": 1.0},
        inputs=["p", "q", "r", "s"],
        labels=np.array([0, 1, 0, 1]),
    )
    d = task.to_dict(include_inputs=True)
    assert d["inputs"] == ["p", "q", "r", "s"] and d["labels"] == [0, 1, 0, 1]
    assert d["sample_class_counts"] == {"a": 2, "b": 2}


# -- Hub ids through the loopback server ---------------------------------------------------------


def _image_parquet_repo(root):
    import datasets

    rng = np.random.default_rng(1)
    feats = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c", "d"])}
    )
    ds = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": _png(rng), "path": None} for _ in range(40)],
            "label": [i % 4 for i in range(40)],
        },
        features=feats,
    )
    folder = write_repo(
        root,
        "org/shapes",
        {
            "README.md": "---\ntask_categories: [image-classification]\n---\n# Shapes\n\nRandom test images in 4 classes.\n"
        },
        repo_type="dataset",
    )
    (folder / "data").mkdir()
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    ds.select(range(8)).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))


def test_hub_dataset_ids_stream_through_loopback(tmp_path):
    root = tmp_path / "hub"
    _image_parquet_repo(root)
    rng = np.random.default_rng(2)
    files = {"README.md": CARD_ONLY.replace("Flowers Five", "Hub Flowers")}
    write_repo(root, "org/flowers-card", files, repo_type="dataset")
    folder_files = {f"train/{c}/{i}.png": _png(rng) for c in ("x", "y") for i in range(5)}
    folder_files["train/x/broken.png"] = b"not an image"
    write_repo(root, "org/folder-images", folder_files, repo_type="dataset")
    lines = [
        json.dumps({"sentence": f"text {i} " + ("good" if i % 2 else "bad"), "intent": f"k{i % 3}"})
        for i in range(30)
    ]
    write_repo(root, "solo-text", {"data.jsonl": "\n".join(lines)}, repo_type="dataset")

    with HubServer(root) as hub:
        task = load_task("org/shapes", endpoint=hub.url, sample=20, probe=False)
        assert task.metadata["source"]["kind"] == "hub" and task.metadata["num_examples"] == 40
        assert np.bincount(task.labels).tolist() == [5, 5, 5, 5]
        assert task.metadata["task_categories"] == ["image-classification"]
        test = load_task("org/shapes", split="test", endpoint=hub.url, sample=4, probe=False)
        assert test.metadata["num_examples"] == 8
        # streamed with ranged reads, never a whole-repo download
        assert hub.count(r"/resolve/.*train-00000") >= 1
        assert hub.count(r"snapshot|/api/datasets/org/shapes/tree/[^/]+$") == 0

        card = load_task("org/flowers-card", endpoint=hub.url)
        assert not card.has_data and card.metadata["num_classes"] == 5 and card.name == "Hub Flowers"

        imgs = load_task("org/folder-images", endpoint=hub.url, sample=50, probe=False)
        assert imgs.skipped == 1 and len(imgs.inputs) == 10 and imgs.metadata["label_names"] == ["x", "y"]

        text = load_task("solo-text", endpoint=hub.url, sample=12, probe=False)
        assert text.metadata["source"]["label_column"] == "intent" and text.metadata["num_classes"] == 3

        # a fingerprint names the repo's revision: the same data gives the same fingerprint
        assert (
            load_task("org/shapes", endpoint=hub.url, sample=20, probe=False).fingerprint == task.fingerprint
        )


def test_hub_not_found_is_exit_2(tmp_path, capsys):
    (tmp_path / "hub").mkdir()
    with HubServer(tmp_path / "hub") as hub:
        code = main(["task", "org/missing", "--endpoint", hub.url, "--no-probe"])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and err.count("\n") == 1 and "Traceback" not in err


# -- the real probe encoders of the zoo ----------------------------------------------------------


@pytest.mark.zoo
def test_zoo_text_probe_gives_real_data_token(tmp_path):
    from hf_spider.tasks import PROBE_MODELS

    if not zoo_has([PROBE_MODELS["text"]]):
        pytest.skip("offline zoo with MiniLM-L6 not installed")
    path = _reviews_csv(tmp_path / "r.csv", n=120)
    task = load_task(path, sample=60)
    assert task.probe == PROBE_MODELS["text"] and task.prototypes.shape == (2, 384)
    # MiniLM separates these word lists well: its 1-NN accuracy is high
    assert task.data_token[100] > 0.8


@pytest.mark.zoo
def test_zoo_image_probe_gives_real_data_token(tmp_path):
    from hf_spider.tasks import PROBE_MODELS

    if not zoo_has([PROBE_MODELS["image"]]):
        pytest.skip("offline zoo with EfficientNet-Lite0 not installed")
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for c, fill in (("dark", 10), ("light", 240)):
        (root / c).mkdir(parents=True)
        for i in range(8):
            (root / c / f"{i}.png").write_bytes(_png(rng, size=32, fill=fill + i))
    task = load_task(root, sample=16)
    assert task.probe == PROBE_MODELS["image"] and task.prototypes.shape == (2, 1280)
    assert task.data_token[100] == 1.0


def test_hub_parquet_large_split_reads_a_pool_of_row_groups(tmp_path, monkeypatch):
    import datasets

    from hf_spider.tasks import _load

    names = ["w", "x", "y", "z"]
    labels = np.repeat(np.arange(4), 250)  # sorted by class
    ds = datasets.Dataset.from_dict(
        {"text": [f"row {i} of class {names[c]}" for i, c in enumerate(labels)], "label": labels.tolist()},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
        ),
    )
    folder = write_repo(
        tmp_path / "hub", "org/big", {"README.md": "---\nlicense: mit\n---\n"}, repo_type="dataset"
    )
    (folder / "data").mkdir()
    ds.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"), batch_size=25)  # 40 row groups
    monkeypatch.setattr(_load, "LABEL_COLUMN_BUDGET", 0)  # as if the label column were too big to read
    with HubServer(tmp_path / "hub") as hub:
        task = load_task("org/big", endpoint=hub.url, sample=20, max_scan=100, probe=False)
        resolves = hub.count(r"/resolve/.*\.parquet")
        # one filesystem for every ranged read: the revision and the listing are fetched once
        # (a filesystem per read fetched both again for each: 10 times here for 3 files)
        assert hub.count(r"/revision/") <= 1 and hub.count(r"/tree/") <= 1
    src = task.metadata["source"]
    assert src["scanned_whole_split"] is False and src["sample_pool"] < 1000
    assert task.metadata["num_examples"] == 1000  # from the parquet footer
    assert set(task.labels.tolist()) == {
        0,
        1,
        2,
        3,
    }  # classes the random groups missed come from the statistics
    for text, label in zip(task.inputs, task.labels, strict=True):
        assert text.endswith(names[label])
    assert resolves < 40  # far fewer ranged reads than row groups


def test_a_card_only_dataset_whose_yaml_is_broken_says_so(tmp_path):
    """A folder with only a README.md whose YAML header is broken: the error names the card and
    the YAML, not "no dataset card" (the card is there)."""
    folder = tmp_path / "pets"
    folder.mkdir()
    (folder / "README.md").write_text("---\npretty_name: Pets\ntags: [a\n  - : :\n---\n# Pets\n")
    with pytest.raises(DatasetError, match=r"README\.md card cannot be read: its YAML header is not valid"):
        load_task(folder, sample=0, probe=False)
    (folder / "README.md").write_text("")
    with pytest.raises(DatasetError, match="no data files nor dataset card"):
        load_task(folder, sample=0, probe=False)


def test_a_notes_file_among_class_folders_of_images_does_not_make_them_text(tmp_path):
    """An imagefolder with a stray notes.txt is still an image task (the images are the data)."""
    for label in ("cat", "dog"):
        folder = tmp_path / "pets" / label
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("taken at home\n")
    task = load_task(tmp_path / "pets", sample=0, probe=False)
    assert task.modality == "image" and task.num_classes == 2 and task.metadata["num_examples"] == 8


def test_a_semicolon_csv_and_multi_label_rows_are_named_as_such(tmp_path):
    """Two files users bring whose real problem "no label column found" hid: fields separated by
    semicolons (now read with that separator), and labels that are lists (multi-label)."""
    semi = tmp_path / "semi.csv"
    semi.write_text("text;label\ngreat;pos\nbad;neg\nok;pos\nmeh;neg\n")
    assert load_task(semi, sample=0, probe=False).metadata["label_names"] == ["neg", "pos"]
    multi = tmp_path / "multi.jsonl"
    rows = [{"text": f"t{i}", "label": ["pos"] if i % 2 else ["neg", "pos"]} for i in range(6)]
    multi.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DatasetError, match=r"holds lists \(multi-label\)"):
        load_task(multi, sample=0, probe=False)


def _paths_csv(folder, rng, *, image_dir="imgs", n=12):
    """A csv of `path,label` rows and the images it names (`image_dir` relative to the csv)."""
    rows = []
    for i in range(n):
        label = ("cat", "dog", "bird")[i % 3]
        name = f"{image_dir}/{label}_{i}.png"
        rows.append({"path": name, "label": label})
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(_png(rng, fill=(40 * (i % 3), 0, 0)))
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    return rows


def test_a_csv_of_image_paths_is_an_image_task(tmp_path):
    """A csv whose input column names image files is an image task, its images read relative to
    the csv (it used to be ranked as a text task of file names, with text models)."""
    rng = np.random.default_rng(0)
    _paths_csv(tmp_path, rng)
    for where in (tmp_path, tmp_path / "train.csv"):
        task = load_task(where, sample=9, probe=False)
        assert task.modality == "image" and task.metadata["source"]["input_column"] == "path"
        assert len(task.inputs) == 9 and all(isinstance(x, Image.Image) for x in task.inputs)
        assert task.skipped == 0 and sorted(task.label_names) == ["bird", "cat", "dog"]
    # an image the csv names changes: so does the fingerprint (probe features are cached by it)
    before = load_task(tmp_path / "train.csv", sample=12, probe=False).fingerprint
    (tmp_path / "imgs" / "cat_0.png").write_bytes(_png(rng, size=20))
    assert load_task(tmp_path / "train.csv", sample=12, probe=False).fingerprint != before
    # files that are not there: one line naming where they were looked for
    gone = tmp_path / "elsewhere"
    gone.mkdir()
    (gone / "train.csv").write_text((tmp_path / "train.csv").read_text())
    with pytest.raises(DatasetError, match=r"names image files, but none of the .* could be read") as err:
        load_task(gone / "train.csv", sample=6, probe=False)
    assert str(gone / "imgs") in str(err.value) and "--modality text" in err.value.hint
    with pytest.raises(DatasetError, match="names image files"):
        load_task(gone / "train.csv", sample=0, probe=False)  # metadata only: still checked
    # image URLs are never fetched: a column of them beside a text column leaves the task text
    urls = pd.DataFrame(
        {"image_url": [f"https://example.com/{i}.jpg" for i in range(6)], "text": ["good", "bad"] * 3}
    ).assign(label=["pos", "neg"] * 3)
    urls.to_csv(tmp_path / "urls.csv", index=False)
    assert load_task(tmp_path / "urls.csv", sample=0, probe=False).modality == "text"
    # the user's word wins: --modality text reads the names as text
    assert load_task(gone / "train.csv", sample=0, probe=False, modality="text").modality == "text"


def test_a_hub_csv_of_image_paths_reads_only_its_own_files(tmp_path):
    """On the Hub the images a csv names are fetched from the same repo; a path out of the repo or
    an absolute path is never opened (a remote file must not read this machine's files)."""
    rng = np.random.default_rng(1)
    local = tmp_path / "local"
    local.mkdir()
    _paths_csv(local, rng, image_dir="data/imgs", n=12)
    files = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    root = tmp_path / "hub"
    write_repo(root, "org/paths", files, repo_type="dataset")
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(rng))
    bad = pd.DataFrame(
        [
            {"path": str(secret) if i % 2 else "../../other/x.png", "label": ("a", "b")[i % 2]}
            for i in range(8)
        ]
    )
    write_repo(root, "org/escaping", {"train.csv": bad.to_csv(index=False)}, repo_type="dataset")
    with HubServer(root) as hub:
        task = load_task("org/paths", endpoint=hub.url, sample=6, probe=False)
        assert task.modality == "image" and len(task.inputs) == 6 and task.skipped == 0
        assert hub.count(r"/resolve/.*data/imgs/") >= 1
        with pytest.raises(DatasetError, match="points outside the dataset"):
            load_task("org/escaping", endpoint=hub.url, sample=4, probe=False)


def test_images_without_class_folders_and_mixed_formats_are_named(tmp_path, caplog):
    """Two folders users bring whose error used to point elsewhere: images not in class folders
    ('no label column found') and a folder of a.csv plus b.jsonl (a JSON parse error of the csv)."""
    for name, parts in (("flat", ()), ("one", ("cat",))):
        folder = tmp_path.joinpath(name, *parts)
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
        with pytest.raises(DatasetError, match="not sorted into class folders") as err:
            load_task(tmp_path / name, sample=0, probe=False)
        assert f"{name}/cat/1.png" in err.value.hint
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _reviews_csv(mixed / "a.csv", n=20)
    rows = [{"text": f"fine {i}", "label": ("pos", "neg")[i % 2]} for i in range(10)]
    (mixed / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with caplog.at_level("WARNING", logger="hf_spider.tasks"):
        task = load_task(mixed, sample=0, probe=False)
    assert task.metadata["num_examples"] == 10  # the jsonl's rows, the csv left out and said so
    assert "mixes data file formats" in caplog.text and "a.csv" in caplog.text


def test_image_paths_as_users_write_them(tmp_path, caplog):
    """What a probe of csv image columns found: Windows separators, Windows drive paths, URL-only
    columns (read as text of URLs, text models ranked), a split in two folders (every path read
    against the first), corrupt files blamed on the paths, 16-bit images turned white."""
    from hf_spider.tasks._load import _to_rgb

    rng = np.random.default_rng(3)
    rows = _paths_csv(tmp_path, rng, n=9)
    win = tmp_path / "win.csv"
    pd.DataFrame([{**r, "path": r["path"].replace("/", "\\")} for r in rows]).to_csv(win, index=False)
    assert load_task(win, sample=6, probe=False).skipped == 0  # imgs\cat_0.png read as imgs/cat_0.png
    drive = tmp_path / "drive.csv"
    pd.DataFrame([{**r, "path": "C:\\Users\\me\\" + r["path"]} for r in rows]).to_csv(drive, index=False)
    with pytest.raises(DatasetError, match="is a Windows drive path"):
        load_task(drive, sample=6, probe=False)
    for scheme in ("https://example.com/", "file:///data/"):
        urls = tmp_path / "urls.csv"
        pd.DataFrame([{**r, "path": scheme + r["path"]} for r in rows]).to_csv(urls, index=False)
        with pytest.raises(DatasetError, match=r"holds image URLs.*never fetches URLs"):
            load_task(urls, sample=0, probe=False)
        with pytest.raises(DatasetError, match="holds image URLs"):
            load_task(urls, sample=0, probe=False, modality="image")
    # a split in two folders, each csv naming the images beside it
    shards = tmp_path / "shards"
    for part in ("p1", "p2"):
        (shards / "train" / part).mkdir(parents=True)
        made = _paths_csv(shards / "train" / part, rng, image_dir=f"imgs_{part}", n=6)
        (shards / "train" / part / "train.csv").rename(shards / "train" / part / f"train-{part}.csv")
        assert made
    task = load_task(shards, sample=12, probe=False)
    assert len(task.inputs) == 12 and task.skipped == 0
    # the same names beside both csvs: which image a row means cannot be told, so refused
    (shards / "train" / "p2" / "imgs_p1").mkdir()
    for f in (shards / "train" / "p1" / "imgs_p1").iterdir():
        (shards / "train" / "p2" / "imgs_p1" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(DatasetError, match="lies beside more than one of its data files"):
        load_task(shards, sample=12, probe=False)
    # files there but not images: the files are blamed, not the paths
    broken = tmp_path / "broken"
    broken.mkdir()
    _paths_csv(broken, rng, n=6)
    for f in (broken / "imgs").iterdir():
        f.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"is there, as .* but is not an image") as err:
        load_task(broken / "train.csv", sample=6, probe=False)
    assert "corrupt, or not images" in err.value.hint
    # a 16-bit greyscale image keeps its contrast (PIL's convert clips it to white)
    deep = Image.fromarray((np.linspace(0, 1, 64).reshape(8, 8) * 65535).astype(np.uint16))
    rgb = np.asarray(_to_rgb(deep))
    assert rgb.shape == (8, 8, 3) and rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 32
    # a csv beside class folders of images it does not name: what was read, and how to read the images
    stray = tmp_path / "stray"
    for label in ("cat", "dog"):
        (stray / label).mkdir(parents=True)
        for i in range(3):
            (stray / label / f"{i}.png").write_bytes(_png(rng))
    (stray / "train.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DatasetError, match=r"read from train\.csv, not from the 6 images beside it") as err:
        load_task(stray, sample=0, probe=False)
    assert "move train.csv out of the folder" in err.value.hint
    # a csv with the images it names: no "ignoring" warning about those images
    named = tmp_path / "named"
    named.mkdir()
    _paths_csv(named, rng, n=6)
    caplog.clear()
    with caplog.at_level("WARNING", logger="hf_spider.tasks"):
        assert load_task(named, sample=0, probe=False).modality == "image"
    assert "ignoring" not in caplog.text


def test_a_metadata_csv_of_paths_a_corrupt_parquet_and_a_failing_hub_are_one_line(tmp_path):
    """What a probe of Hub datasets found ending in tracebacks: a metadata.csv naming its images in
    a `path` column (datasets' image folder wants `file_name`), a corrupt or truncated parquet
    file, and a Hub answering 500 while the parquet footers are read."""
    from hf_spider.errors import HubConnectionError
    from hf_spider.testing import Faults

    rng = np.random.default_rng(4)
    local = tmp_path / "meta"
    local.mkdir()
    _paths_csv(local, rng, image_dir="images", n=8)
    (local / "train.csv").rename(local / "metadata.csv")
    task = load_task(local, sample=6, probe=False)
    assert task.modality == "image" and len(task.inputs) == 6
    assert task.metadata["source"]["input_column"] == "path"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"junk" * 100)
    with pytest.raises(DatasetError, match="cannot read the data files of broken"):
        load_task(broken, sample=0, probe=False)
    root = tmp_path / "hub"
    files = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    write_repo(root, "org/meta-paths", files, repo_type="dataset")
    _image_parquet_repo(root)
    with HubServer(root) as hub:
        remote = load_task("org/meta-paths", endpoint=hub.url, sample=6, probe=False)
        assert remote.modality == "image" and len(remote.inputs) == 6
    failing = HubServer(root, faults=Faults(rate_500=1.0, only=r"/resolve/.*\.parquet"))
    with failing as hub, pytest.raises(HubConnectionError, match="500"):
        load_task("org/shapes", endpoint=hub.url, sample=0, probe=False)


def test_star_ratings_are_labels_and_a_config_that_is_not_there_says_drop_it(tmp_path):
    rows = [{"review": f"text {i}", "stars": 1 + i % 5} for i in range(20)]
    pd.DataFrame(rows).to_csv(tmp_path / "reviews.csv", index=False)
    task = load_task(tmp_path / "reviews.csv", sample=0, probe=False)
    assert task.metadata["source"]["label_column"] == "stars" and task.num_classes == 5
    with pytest.raises(DatasetError, match="not found") as err:
        load_task(tmp_path / "reviews.csv", sample=0, probe=False, config="large")
    assert "drop --config" in err.value.hint
