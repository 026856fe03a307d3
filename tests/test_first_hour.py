"""What a new user hits in the first hour, through the real CLI: every mistake a user can make
ends in one line on stderr, exit code 2, no traceback, and nothing written (no output folder, no
JSON file, nothing new on the loopback Hub)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from conftest import HUB_TOKEN

from hf_spider.cli import main
from hf_spider.testing import Faults, HubServer, write_repo
from hf_spider.testing.hub_writes import install

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py
TEXT_ROWS = [("a fine film", "pos"), ("dull and slow", "neg"), ("great fun", "pos"), ("awful", "neg")] * 3


@pytest.fixture
def files(tmp_path) -> Path:
    """The user's files, apart from the folder the commands run in."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "empty.csv").write_bytes(b"")
    (root / "blank.csv").write_text("\n\n")
    random.seed(0)
    (root / "binary.csv").write_bytes(b"text,label\n" + bytes(random.randrange(256) for _ in range(3000)))
    (root / "broken.jsonl").write_text('{"text": "a", "label": 1}\n{"text": oops\n')
    (root / "ids.csv").write_text("text,label\n" + "".join(f"review {i},user{i}\n" for i in range(20)))
    (root / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in TEXT_ROWS))
    (root / "a-file").write_text("not a folder")
    images = root / "corrupt-images"
    for label in ("cat", "dog"):
        (images / label).mkdir(parents=True)
        for i in range(3):
            (images / label / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg " + bytes([i]))
    return root


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty folder the commands run in: the default output folder would land here."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _fails_cleanly(capsys, argv: list[str], workdir: Path, *, hub: HubServer | None = None) -> str:
    """Run the CLI; assert exit 2, one line on stderr without a traceback, and nothing written."""
    rc = main(["recommend", *argv])
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (argv, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert list(workdir.iterdir()) == [], f"{argv} wrote {list(workdir.iterdir())}"
    if hub is not None:
        assert hub.repo_ids("datasets") == [] and hub.repo_ids("spaces") == []
    return err


CASES = {
    "empty csv": (["{files}/empty.csv", "--stages", "rank"], "empty.csv is empty"),
    "blank csv": (["{files}/blank.csv", "--stages", "rank"], "blank.csv is empty"),
    "csv in no text encoding": (["{files}/binary.csv", "--stages", "rank"], "not UTF-8"),
    "broken jsonl": (["{files}/broken.jsonl", "--stages", "rank"], "cannot read broken.jsonl"),
    "a file name that does not exist": (["nope.csv", "--stages", "rank"], "not found"),
    "one example per class": (["{files}/ids.csv", "--stages", "rank"], "single example"),
    "imagefolder where no image decodes": (
        ["{files}/corrupt-images", "--stages", "rank"],
        "no image of split 'train' of corrupt-images decodes",
    ),
    "image task on text, rank only": (
        ["{files}/reviews.csv", "--stages", "rank", "--task", "image-classification"],
        "--task image-classification serves image models",
    ),
    "image task on text, all stages": (
        ["{files}/reviews.csv", "--task", "image-classification", "--sample", "8"],
        "is a text dataset",
    ),
    "unknown target, rank only": (
        ["{files}/reviews.csv", "--stages", "rank", "--target", "mars-rover"],
        "mars-rover",
    ),
    "output folder that is a file": (
        ["{files}/reviews.csv", "--stages", "rank", "--output-dir", "{files}/a-file"],
        "is a file, not a folder",
    ),
    "output folder under a file": (
        ["{files}/reviews.csv", "--stages", "rank", "--output-dir", "{files}/a-file/results"],
        "is a file, not a folder",
    ),
    "output folder that cannot be written": (
        ["{files}/reviews.csv", "--stages", "rank", "--output-dir", "/proc/hf-spider-results"],
        "cannot write to --output-dir",
    ),
    "json path that is a folder": (
        ["{files}/reviews.csv", "--stages", "rank", "--json", "{files}"],
        "is a folder",
    ),
    "negative constraint": (["{files}/reviews.csv", "--max-size-mb", "-1"], "--max-size-mb"),
    "constraint that is not a number": (
        ["{files}/reviews.csv", "--max-latency-ms", "fast"],
        "must be a number",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_cleanly(case, files, workdir, capsys):
    argv, expected = CASES[case]
    err = _fails_cleanly(capsys, [a.format(files=files) for a in argv], workdir)
    assert expected in err


def test_push_into_an_unrelated_dataset_is_refused_before_any_work(hub, files, workdir, capsys):
    files_ = {"data.csv": "text,label\nx,1\n", "README.md": "# my data\n"}
    write_repo(hub.root, "me/reviews", files_, repo_type="datasets")
    before = (hub.root / "datasets" / "me" / "reviews" / "data.csv").read_bytes()
    argv = [f"{files}/reviews.csv", "--stages", "rank", "--push-to-hub", "me/reviews"]
    err = _fails_cleanly(capsys, [*argv, "--token", TOKEN, "--endpoint", hub.url], workdir)
    assert "already exists and is not an hf-spider recommendations dataset" in err
    assert (hub.root / "datasets" / "me" / "reviews" / "data.csv").read_bytes() == before
    assert hub.count("/commit/") == 0 and hub.count("/api/repos/create") == 0


@pytest.mark.parametrize("dropped", [r"^POST /api/datasets/.*/commit/", r"^POST /api/datasets/.*/preupload/"])
def test_connection_drop_during_a_push_leaves_nothing_on_the_hub(tmp_path, files, workdir, capsys, dropped):
    with install(HubServer(tmp_path / "hub", token=TOKEN, faults=Faults(drop=dropped))) as hub:
        argv = [f"{files}/reviews.csv", "--stages", "rank", "--push-to-hub", "me/recs"]
        rc = main(["recommend", *argv, "--token", TOKEN, "--endpoint", hub.url, "--output-dir", "out"])
        err = capsys.readouterr().err
        assert rc == 2
        assert err.startswith("error: push to me/recs failed (connection dropped)") and err.count("\n") == 1
        assert "the repo it created was deleted again" in err
        assert hub.count(dropped.lstrip("^").split(" ", 1)[1], method="POST") >= 1  # the drop happened
        assert hub.repo_ids("datasets") == []
        assert hub.count("/api/repos/delete") == 1
    assert (workdir / "out" / "recommendations.json").is_file()  # the results are kept locally


def test_a_push_the_hub_forbids_asks_for_a_write_token(tmp_path, files, workdir, capsys):
    """A token that passes the up-front check but may not write (a fine-grained read token): the
    commit answers 403; the one line asks for a write token instead of a retry, and the repo this
    run created is deleted again."""
    faults = Faults(forbid=r"^POST /api/datasets/.*/commit/")
    with install(HubServer(tmp_path / "hub", token=TOKEN, faults=faults)) as hub:
        argv = [f"{files}/reviews.csv", "--stages", "rank", "--push-to-hub", "me/recs"]
        rc = main(["recommend", *argv, "--token", TOKEN, "--endpoint", hub.url, "--output-dir", "out"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert err.startswith("error: push to me/recs failed (HTTP 403)")
        assert "write token" in err and "retry the push" not in err
        assert hub.repo_ids("datasets") == []
    assert (workdir / "out" / "recommendations.json").is_file()


def test_latin1_csv_is_read_in_its_encoding(files, tmp_path, caplog):
    from hf_spider.tasks import load_task

    path = tmp_path / "latin1.csv"
    rows = [("café très bon", "positif"), ("naïve et lente", "négatif")] * 4
    path.write_bytes(("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows)).encode("latin-1"))
    task = load_task(path, sample=8, probe=False)
    assert sorted(task.label_names) == ["négatif", "positif"]
    assert "café très bon" in task.inputs
    assert "not UTF-8: reading it as" in caplog.text
    # Excel's Windows-1252 with the euro sign: charset_normalizer ranks the DOS code page cp775
    # first for these reviews ("cafķ na’ve Ć"); the common code page wins the near-tie
    import random

    rng = random.Random(0)
    pos = ["a wonderful, moving film", "great acting and a clever plot", "I loved every minute"]
    pos += ["brilliant and funny", "a joy to watch", "superb direction", "heartwarming and smart"]
    pos += ["the best movie this year"]
    neg = ["a dull, lifeless mess", "boring and far too long", "I hated the ending", "terrible acting"]
    neg += ["a waste of time", "clumsy and predictable", "painfully unfunny", "the worst movie this year"]
    lines = []
    for i in range(300):
        base = rng.choice(pos if i % 2 else neg)
        text = (
            f"{base} #{i} " + rng.choice(["really", "honestly", "truly", ""]) + " caf\u00e9 na\u00efve \u20ac"
        )
        lines.append((f'"{text}"' if "," in text else text) + f",{i % 2}\n")
    path = tmp_path / "excel.csv"
    path.write_bytes(("text,label\n" + "".join(lines)).encode("cp1252"))
    task = load_task(path, sample=8, probe=False)
    assert all(x.endswith("café naïve €") for x in task.inputs), task.inputs[:2]
    assert "reading it as cp1252" in caplog.text


def test_corrupt_images_in_the_sample_are_counted(tmp_path):
    from PIL import Image

    from hf_spider.tasks import load_task

    folder = tmp_path / "pets"
    for label, color in (("cat", (200, 30, 30)), ("dog", (30, 30, 200))):
        (folder / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), color).save(folder / label / f"{i}.png")
        (folder / label / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    task = load_task(folder, sample=10, probe=False)
    assert task.skipped == 2 and len(task.inputs) == 8


def test_nothing_fits_still_writes_the_results(files, workdir, capsys):
    """Constraints nothing meets: exit 2 and a short message, but the measurements are kept."""
    from hf_spider import _paths

    model = _paths.zoo_dir() / "hub" / "models--hf-spider-zoo--splade-tiny"
    if not model.is_dir():
        pytest.skip("offline zoo not installed (hf-spider zoo install)")
    from hf_spider.zoo import model_path

    catalog = files / "models"
    (catalog / "hf-spider-zoo").mkdir(parents=True)
    (catalog / "hf-spider-zoo" / "splade-tiny").symlink_to(model_path("hf-spider-zoo/splade-tiny"))
    argv = [f"{files}/reviews.csv", "--catalog", str(catalog), "--stages", "rank,bench", "--top-k", "1"]
    rc = main(["recommend", *argv, "--max-latency-ms", "0.0001", "--output-dir", "out", "--json", "out.json"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: no candidate meets") and err.count("\n") == 1
    assert "nearest" not in err and "marked as not meeting them" in err
    data = json.loads((workdir / "out" / "recommendations.json").read_text())
    measured = [r for r in data["rows"] if r["latency_p50_ms"] is not None]
    assert measured and all(r["meets_constraints"] is False for r in measured)
    assert data["recommended"] is None and data["meta"]["pick"]["nothing_fits"]
    assert json.loads((workdir / "out.json").read_text())["rows"] == data["rows"]
    assert "Nothing meets the constraints" in (workdir / "out" / "report.md").read_text()
    # a second failed run into the same folder does not write over the first one's answer
    before = {f.name: f.read_bytes() for f in (workdir / "out").iterdir() if f.is_file()}
    rc = main(["recommend", *argv, "--max-latency-ms", "0.0002", "--output-dir", "out"])
    err = capsys.readouterr().err
    assert rc == 2 and "the earlier results in out are kept" in err
    assert {f.name: f.read_bytes() for f in (workdir / "out").iterdir() if f.is_file()} == before
    (beside,) = (workdir / "out").glob("unmet-*")
    assert json.loads((beside / "recommendations.json").read_text())["recommended"] is None


def test_default_pick_weighs_speed_and_size_of_faithful_variants():
    from hf_spider.hardware.constraints import pick

    rows = [
        {
            "model_id": "m",
            "variant": "fp32",
            "transfer_score": 0.8,
            "latency_p50_ms": 30.0,
            "file_size_mb": 88.0,
            "fidelity": 1.0,
        },
        {
            "model_id": "m",
            "variant": "int8-dynamic",
            "transfer_score": 0.8,
            "latency_p50_ms": 10.0,
            "file_size_mb": 22.0,
            "fidelity": 0.995,
        },
        {
            "model_id": "n",
            "variant": "fp32",
            "transfer_score": 0.5,
            "latency_p50_ms": 5.0,
            "file_size_mb": 40.0,
            "fidelity": 1.0,
        },
    ]
    choice, reason = pick(rows)
    assert choice["variant"] == "int8-dynamic"
    assert "int8-dynamic over fp32: fidelity 0.995" in reason and "0.33x the latency" in reason
    assert "0.25x the size" in reason
    # an int8 variant whose outputs drift from fp32 does not win on speed alone
    rows[1]["fidelity"] = 0.95
    assert pick(rows)[0]["variant"] == "fp32"


@pytest.fixture
def recs():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_recommend_results import make_recs

    return make_recs()


def test_push_is_one_commit_and_publishes_no_local_path(hub, recs, tmp_path, capfd):
    from huggingface_hub import HfApi

    from hf_spider._paths import REPO_DIR

    home = str(Path.home())
    recs.meta.update(
        dataset=f"{home}/work/data/rotten_tomatoes",
        catalog={"source": f"{REPO_DIR}/model_cards + model repos in {tmp_path}/models", "num_models": 3},
        notes=[f"stage 2 used the cache in {home}/.cache/hf-spider/features (see http://127.0.0.1:9/x)"],
    )
    recs.rows[0]["device_reason"] = f"export failed: cannot read {tmp_path}/onnx/model.onnx"
    recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
    assert hub.count("/commit/", method="POST") == 1
    assert "num_proc" not in "".join(capfd.readouterr())  # datasets' push_to_hub noise is gone
    files = set(HfApi(endpoint=hub.url).list_repo_files("me/recs", repo_type="dataset"))
    assert files - {".gitattributes"} == {
        "README.md",
        "data/train-00000-of-00001.parquet",
        "pareto.png",
        "recommendations.json",
        "report.md",
    }
    for path in (hub.root / "datasets" / "me" / "recs").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for local in (home, str(tmp_path), str(REPO_DIR)):
                assert local.encode() not in data, (path.name, local)
    pushed = json.loads((hub.root / "datasets" / "me" / "recs" / "recommendations.json").read_text())
    assert pushed["meta"]["dataset"] == "rotten_tomatoes"
    assert pushed["meta"]["catalog"]["source"] == "model_cards + model repos in models"
    assert "http://127.0.0.1:9/x" in pushed["meta"]["notes"][0]
    assert recs.meta["dataset"].startswith(home)  # the local results keep their paths


def test_failed_repush_leaves_the_previous_dataset_intact(tmp_path, recs):
    from hf_spider.errors import HubConnectionError
    from hf_spider.recommend import Recommendations

    with install(HubServer(tmp_path / "hub", token=TOKEN)) as hub:
        recs.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
        before = {
            p.name: p.read_bytes() for p in hub.repo_dir("datasets", "me/recs").rglob("*") if p.is_file()
        }
        hub.faults.drop = r"^POST /api/datasets/.*/commit/"
        smaller = Recommendations(recs.rows[:2], {**recs.meta, "dataset": "other"})
        with pytest.raises(HubConnectionError, match="nothing was changed on the Hub"):
            smaller.push_to_hub("me/recs", token=TOKEN, endpoint=hub.url)
        after = {
            p.name: p.read_bytes() for p in hub.repo_dir("datasets", "me/recs").rglob("*") if p.is_file()
        }
        assert after == before
        assert len(Recommendations.from_hub("me/recs", endpoint=hub.url)) == len(recs)


def test_ranker_weights_load_without_printing(capfd):
    from hf_spider.ranker.model import SpiderEnsemble
    from hf_spider.ranker.ranker import WEIGHTS_DIR

    model = SpiderEnsemble.from_pretrained(str(WEIGHTS_DIR))
    assert len(model.members) >= 1 and model.meta
    assert capfd.readouterr().out == ""


def test_json_to_stdout_is_only_json(files, workdir):
    """`recommend --json - | python -m json.tool`, as a user pipes it: a real process."""
    import subprocess
    import sys

    from hf_spider._paths import REPO_DIR

    argv = [sys.executable, "-m", "hf_spider", "recommend", f"{files}/reviews.csv", "--stages", "rank"]
    done = subprocess.run(
        [*argv, "--json", "-", "--output-dir", "out"],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO_DIR)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["rows"] and data["ranking"][0]["model_id"] == data["rows"][0]["model_id"]
    assert "hf-spider:" in done.stderr  # the table went to stderr


def test_plot_draws_the_front_of_the_pareto_column_with_the_star_on_top(recs, tmp_path):
    from PIL import Image

    from hf_spider.recommend import Recommendations

    # 5-criteria front: model-2 fp32 (30 ms, 0.7) uses the least memory, so it is on the front
    # although two points beat it on score and latency
    for r in recs.rows:
        r["pareto"] = (r["model_id"], r["variant"]) in {
            ("org/model-0", "int8-dynamic"),
            ("org/model-2", "fp32"),
        }
    fig = recs.plot()
    ax = fig.axes[0]
    front = next(c for c in ax.collections if c.get_label().startswith("Pareto front"))
    assert sorted(front.get_offsets()[:, 0]) == [4.0, 30.0]  # ringed
    # the dashed line joins the front on the plot's own axes only, not model-2's fp32
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("best score for its latency"))
    assert 30.0 not in list(line.get_xdata())
    star = next(c for c in ax.collections if c.get_label() == "recommended")
    assert star.get_zorder() > max(
        a.get_zorder() for a in [*ax.collections, *ax.get_lines()] if a is not star
    )
    one = Recommendations(
        [dict(r, pareto=r["variant"] == "int8-dynamic" and r["rank"] == 2) for r in recs.rows], recs.meta
    )
    ring = next(c for c in one.plot().axes[0].collections if c.get_label().startswith("Pareto front"))
    assert list(ring.get_offsets()[:, 0]) == [8.0]  # one point is ringed
    # nothing is cut at the edges: every point label and the axis label lie inside the figure
    long = Recommendations(
        [
            dict(r, model_id=r["model_id"].replace("org/", "org/a-very-long-model-name-for-the-edge-"))
            for r in recs.rows
        ],
        {**recs.meta, "target": {"name": "local: a CPU with a long description, 2 threads"}},
    )
    fig = long.plot()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for text in [*fig.axes[0].texts, fig.axes[0].xaxis.label]:
        box = text.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, text.get_text()
    long.plot(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").size[0] > 400


def test_crawl_of_an_unreachable_endpoint_leaves_no_catalog_folder(tmp_path, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    catalog = tmp_path / "new" / "catalog"
    rc = main(["crawl", "--catalog", str(catalog), "--endpoint", f"http://127.0.0.1:{port}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: cannot reach") and err.count("\n") == 1
    assert not (tmp_path / "new").exists()


def test_calibrated_variants_of_one_model_are_capped(tmp_path):
    """Every dataset sample calibrates its own int8-static variant: old ones are evicted."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_hardware_fixtures import tiny_bert

    from hf_spider.hardware import make_variants
    from hf_spider.hardware._export import export
    from hf_spider.hardware.sample import TaskSample, feeds_for
    from hf_spider.hardware.variants import MAX_CALIBRATED

    exported = export(tiny_bert(tmp_path / "tiny-bert"), "text-classification", tmp_path / "export")
    built = []
    for seed in range(MAX_CALIBRATED + 2):
        feeds = feeds_for(exported, TaskSample.synthetic("text", n=8, seed=seed))
        (variant,) = make_variants(
            exported, ["int8-static"], None, feeds, calibration_source=f"sample {seed}"
        )
        assert variant.path.is_file()
        built.append(variant.path.parent)
    kept = sorted(exported.dir.parent.glob("int8-static-*"))
    assert len(kept) == MAX_CALIBRATED and built[-1] in kept and built[0] not in kept


def test_many_classes_and_rare_classes_warn(tmp_path, caplog):
    from hf_spider.tasks import load_task

    path = tmp_path / "many.csv"
    rows = [f"text {i} {j},class{i}" for i in range(1001) for j in range(2)] + ["lonely,rare"]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    task = load_task(path, sample=0)
    assert task.num_classes == 1002
    assert "has 1002 classes" in caplog.text and "1 of 1002 classes have a single example" in caplog.text


def test_help_gives_the_units_of_the_constraints(capsys):
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, unit in (
        ("--max-latency-ms", "in ms"),
        ("--max-memory-mb", "in MiB"),
        ("--max-size-mb", "in MiB"),
    ):
        assert f"{flag} {flag.upper().lstrip('-').replace('-', '_')} " in text
        assert unit in text.split(flag)[2][:80], flag


def test_publish_with_a_dropped_commit_leaves_no_space(tmp_path, capsys):
    faults = Faults(drop=r"^POST /api/spaces/.*/commit/")
    with install(HubServer(tmp_path / "hub", token=TOKEN, faults=faults)) as hub:
        rc = main(["publish", "--space", "me/app", "--token", TOKEN, "--endpoint", hub.url])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1
        assert err.startswith("error: publishing the Space me/app failed (connection dropped)")
        assert hub.repo_ids("spaces") == [] and hub.count("/api/repos/delete") == 1


def test_published_space_asks_visitors_to_log_in():
    import yaml

    from hf_spider.recommend._hub import space_readme

    text = space_readme(title="app", datasets=[], sdk_version="6.0.0")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["hf_oauth"] is True and header["hf_oauth_scopes"] == ["read-repos"]
    assert "never used" in text and "own disk" in text
