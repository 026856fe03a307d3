"""The crawler, only through real HTTP to the loopback Hub (and real folders for --from-dir)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_spider.catalog import Catalog, crawl
from hf_spider.cli import main
from hf_spider.testing import Faults, HubServer, write_repo

SECRET = "hf_sEcReTtOkEn1234567890"


def _safetensors(n: int) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n, 4], "data_offsets": [0, 16 * n]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * (16 * n)


def _bert_repo(root: Path, repo_id: str, i: int, *, safetensors: bool = True) -> None:
    files = {
        "README.md": (
            f"---\nlicense: apache-2.0\nlanguage: en\ndatasets: [imdb]\nbase_model: org/base-{i % 3}\n"
            "model-index:\n- name: m\n  results:\n  - task: {type: text-classification}\n"
            f"    dataset: {{name: imdb, type: imdb}}\n    metrics: [{{type: accuracy, value: 0.{80 + i % 10}}}]\n---\n# {repo_id}\n"
        ),
        "config.json": {
            "model_type": "bert",
            "architectures": ["BertForSequenceClassification"],
            "hidden_size": 32 + i,
            "max_position_embeddings": 128,
            "id2label": {"0": "neg", "1": "pos"},
        },
    }
    if safetensors:
        files["model.safetensors"] = _safetensors(10 + i)
    write_repo(root, repo_id, files, meta={"downloads": 100 * i, "likes": i})


def _timm_repo(root: Path, repo_id: str) -> None:
    write_repo(
        root,
        repo_id,
        {
            "README.md": "---\ntags: [image-classification, timm]\nlibrary_name: timm\nlicense: apache-2.0\n---\n"
            "- **Model Stats:**\n  - Params (M): 25.6\n  - Image size: 224 x 224\n- **Dataset:** ImageNet-1k\n",
            "config.json": {
                "architecture": "resnet50",
                "num_classes": 1000,
                "num_features": 2048,
                "pretrained_cfg": {"tag": "a1_in1k", "input_size": [3, 224, 224]},
            },
        },
    )


def _hub(root: Path, n: int) -> Path:
    for i in range(n):
        _bert_repo(root, f"org/bert-{i:03d}", i, safetensors=i % 2 == 0)
    _timm_repo(root, "timm/resnet50.a1_in1k")
    return root


def _per_model_requests(hub: HubServer) -> int:
    return sum(1 for _, path, _, _ in hub.requests if path != "/api/models")


def test_full_crawl_then_incremental(tmp_path):
    root = _hub(tmp_path / "hub", 12)
    cat = tmp_path / "cat"
    with HubServer(root, page_size=5) as hub:
        report = crawl(cat, endpoint=hub.url, workers=4)
        assert len(report.new) == 13 and not report.failed and report.listed == 13
        catalog = Catalog.load(cat)
        assert len(catalog) == 13
        bert = catalog.get("org/bert-003")
        assert bert.num_parameters is None and any("parameters unknown" in w for w in bert.warnings)
        assert (bert.library, bert.family, bert.pipeline_tag, bert.feature_dim) == (
            "transformers",
            "bert",
            "text-classification",
            35,
        )
        assert bert.num_labels == 2 and bert.max_seq_len == 128 and bert.license == "apache-2.0"
        assert bert.languages == ["en"] and bert.datasets == ["imdb"] and bert.base_models == ["org/base-0"]
        assert bert.eval_results == [{"dataset": "imdb", "metric": "accuracy", "value": 0.83}]
        assert (bert.downloads, bert.likes) == (300, 3) and len(bert.sha) == 40 and bert.last_modified
        even = catalog.get("org/bert-004")
        assert (even.num_parameters, even.num_parameters_source) == (14 * 4, "safetensors")
        timm = catalog.get("timm/resnet50.a1_in1k")
        assert (timm.library, timm.num_parameters, timm.feature_dim, timm.input_size) == (
            "timm",
            25_600_000,
            2048,
            224,
        )

        hub.reset_log()
        again = crawl(cat, endpoint=hub.url, workers=4)
        assert len(again.unchanged) == 13 and not again.new and not again.updated and not again.failed
        assert _per_model_requests(hub) == 0  # only the listing pages
        assert Catalog.load(cat).records() == catalog.records()

        _bert_repo(root, "org/bert-005", 50)  # a new commit on one model
        hub.reset_log()
        third = crawl(cat, endpoint=hub.url)
        assert third.updated == ["org/bert-005"] and len(third.unchanged) == 12
        assert all("bert-005" in path for _, path, _, _ in hub.requests if path != "/api/models")
        assert Catalog.load(cat).get("org/bert-005").feature_dim == 82


def test_task_library_limit_filters(tmp_path):
    root = _hub(tmp_path / "hub", 4)
    with HubServer(root) as hub:
        report = crawl(tmp_path / "a", endpoint=hub.url, tasks=["image-classification"])
        assert report.new == ["timm/resnet50.a1_in1k"]
        report = crawl(tmp_path / "b", endpoint=hub.url, library="transformers", limit=2, sort="downloads")
        assert sorted(report.new) == ["org/bert-002", "org/bert-003"]  # the two most downloaded
        assert report.listed == 2


def test_malformed_yaml_and_missing_config_keep_the_model(tmp_path):
    root = _hub(tmp_path / "hub", 3)
    faults = Faults(malformed_yaml=frozenset({"org/bert-000"}), missing_config=frozenset({"org/bert-001"}))
    with HubServer(root, faults=faults) as hub:
        report = crawl(tmp_path / "cat", endpoint=hub.url)
    assert not report.failed and len(report.new) == 4
    catalog = Catalog.load(tmp_path / "cat")
    broken = catalog.get("org/bert-000")
    assert (
        any("YAML" in w for w in broken.warnings) and broken.family == "bert" and broken.num_parameters == 40
    )
    no_config = catalog.get("org/bert-001")
    assert any("config" in w for w in no_config.warnings) and no_config.license == "apache-2.0"


def test_rate_limits_and_server_errors_lose_no_model(tmp_path):
    root = _hub(tmp_path / "hub", 24)
    with HubServer(root) as hub:
        crawl(tmp_path / "clean", endpoint=hub.url)
    faults = Faults(rate_429=0.1, rate_503=0.1, retry_after=0.01, seed=7)
    with HubServer(root, faults=faults, page_size=4) as hub:
        report = crawl(tmp_path / "faulty", endpoint=hub.url, workers=4)
        injected = sum(1 for _, _, _, status in hub.requests if status in (429, 503))
    assert injected >= 5, "the fault injection did not bite"
    assert not report.failed and len(report.new) == 25
    strip = [
        {**r, "provenance": {**r["provenance"], "endpoint": None}}
        for r in Catalog.load(tmp_path / "faulty").records()
    ]
    clean = [
        {**r, "provenance": {**r["provenance"], "endpoint": None}}
        for r in Catalog.load(tmp_path / "clean").records()
    ]
    assert strip == clean


def _count_rows(file: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{file}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM models").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_mid_crawl_then_resume_equals_uninterrupted(tmp_path):
    root = _hub(tmp_path / "hub", 40)
    killed, resumed, reference = tmp_path / "killed", tmp_path / "killed" / "catalog.sqlite", tmp_path / "ref"
    with HubServer(root, faults=Faults(delay=0.04, delay_pattern="/resolve/"), page_size=10) as hub:
        cmd = [sys.executable, "-m", "hf_spider", "crawl", "--endpoint", hub.url, "--catalog", str(killed)]
        proc = subprocess.Popen(
            [*cmd, "--workers", "2", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 60
        while _count_rows(resumed) < 5 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = _count_rows(resumed)
        assert 5 <= at_kill < 41, f"crawl was not interrupted mid-way ({at_kill} rows)"
        con = sqlite3.connect(resumed)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()

        report = crawl(killed, endpoint=hub.url)
        assert len(report.unchanged) == at_kill and len(report.new) == 41 - at_kill and not report.failed
        crawl(reference, endpoint=hub.url)
    assert Catalog.load(killed).records() == Catalog.load(reference).records()


def test_from_dir_reads_transformers_timm_and_sentence_transformers(tmp_path):
    root = tmp_path / "repos"
    _bert_repo(root, "org/bert", 1)
    _timm_repo(root, "timm/resnet50.a1_in1k")
    write_repo(
        root,
        "sentence-transformers/mini",
        {
            "config.json": {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 384},
            "modules.json": [
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
            ],
            "1_Pooling/config.json": {"word_embedding_dimension": 384},
            "sentence_bert_config.json": {"max_seq_length": 256},
            "model.safetensors": _safetensors(3),
        },
    )
    report = crawl(tmp_path / "cat", from_dir=root / "models")
    assert sorted(report.new) == ["org/bert", "sentence-transformers/mini", "timm/resnet50.a1_in1k"]
    catalog = Catalog.load(tmp_path / "cat")
    assert catalog.get("timm/resnet50.a1_in1k").num_parameters == 25_600_000
    assert catalog.get("org/bert").num_parameters == 44 and catalog.get("org/bert").family == "bert"
    mini = catalog.get("sentence-transformers/mini")
    assert (mini.library, mini.feature_dim, mini.max_seq_len) == ("sentence-transformers", 384, 256)
    assert len(crawl(tmp_path / "cat", from_dir=root / "models").unchanged) == 3
    assert (
        main(
            [
                "crawl",
                "--from-dir",
                str(root),
                "--catalog",
                str(tmp_path / "cli"),
                "--task",
                "image-classification",
            ]
        )
        == 0
    )
    assert Catalog.load(tmp_path / "cli").model_ids == ["timm/resnet50.a1_in1k"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digest(folder: Path) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(folder.glob("catalog.sqlite*")))
    ).hexdigest()


@pytest.mark.parametrize("case", ["unknown_task", "unreachable", "rejected_token", "unwritable"])
def test_user_errors_exit_2_with_one_line_and_leave_the_catalog(tmp_path, capsys, case):
    root = _hub(tmp_path / "hub", 2)
    cat = tmp_path / "cat"
    with HubServer(root, token="hf_right") as hub:
        assert (
            main(
                [
                    "crawl",
                    "--endpoint",
                    hub.url,
                    "--catalog",
                    str(cat),
                    "--token",
                    "hf_right",
                    "--no-progress",
                ]
            )
            == 0
        )
        before = _digest(cat)
        capsys.readouterr()
        args = {
            "unknown_task": ["--endpoint", hub.url, "--task", "image-clasification"],
            "unreachable": ["--endpoint", f"http://127.0.0.1:{_free_port()}"],
            "rejected_token": ["--endpoint", hub.url, "--token", "hf_wrong"],
            "unwritable": ["--endpoint", hub.url],
        }[case]
        target = cat
        if case == "unwritable":
            (tmp_path / "a-file").write_text("x")
            target = tmp_path / "a-file" / "cat"
        code = main(["crawl", "--catalog", str(target), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert {
        "unknown_task": "task",
        "unreachable": "reach",
        "rejected_token": "token",
        "unwritable": "catalog",
    }[case] in err
    assert "hf_wrong" not in err
    assert _digest(cat) == before


def test_token_never_stored_logged_or_printed(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    root = _hub(tmp_path / "hub", 3)
    cat = tmp_path / "cat"
    with HubServer(
        root, token=SECRET, require_auth=True, faults=Faults(rate_503=0.2, retry_after=0.01)
    ) as hub:
        code = main(
            [
                "-vv",
                "crawl",
                "--endpoint",
                hub.url,
                "--catalog",
                str(cat),
                "--token",
                SECRET,
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        assert code == 0
        assert main(["catalog", "show", "org/bert-001", "--catalog", str(cat), "--json", "-"]) == 0
        assert main(["catalog", "stats", "--catalog", str(cat)]) == 0
    out = capsys.readouterr()
    assert len(Catalog.load(cat)) == 4
    blobs = [out.out, out.err, caplog.text, (tmp_path / "r.json").read_text()]
    blobs += [p.read_bytes().decode("latin-1") for p in cat.rglob("*") if p.is_file()]
    assert all(SECRET not in blob for blob in blobs)
    assert '"model_id": "org/bert-001"' in out.out


def test_catalog_show_unknown_model_is_a_user_error(capsys):
    assert main(["catalog", "show", "org/not-there", "--catalog", "model_cards"]) == 2
    assert capsys.readouterr().err.startswith("error: org/not-there is not in the catalog")


@pytest.mark.zoo
def test_from_dir_reads_a_hugging_face_cache_of_real_models(tmp_path):
    """The offline zoo is a real Hub cache (models--org--name/snapshots/<sha>): catalog it."""
    from hf_spider import _paths

    hub_cache = _paths.zoo_dir() / "hub"
    if not any(hub_cache.glob("models--*")):
        pytest.skip("offline zoo not installed (hf-spider zoo install)")
    report = crawl(tmp_path / "cat", from_dir=hub_cache)
    assert report.new and not report.failed
    catalog = Catalog.load(tmp_path / "cat")
    for token in catalog:
        ref = hub_cache / f"models--{token.model_id.replace('/', '--')}" / "refs" / "main"
        assert token.sha == ref.read_text().strip()
        assert token.num_parameters and token.library and token.modality, token.model_id
    by_library = {t.library for t in catalog}
    if catalog.get("sentence-transformers/all-MiniLM-L6-v2"):
        mini = catalog.get("sentence-transformers/all-MiniLM-L6-v2")
        assert (mini.library, mini.feature_dim, mini.num_parameters_source) == (
            "sentence-transformers",
            384,
            "safetensors",
        )
    assert by_library & {"timm", "transformers", "sentence-transformers", "onnx"}
    assert len(crawl(tmp_path / "cat", from_dir=hub_cache).unchanged) == len(catalog)


def test_from_dir_reads_a_cache_entry_and_plain_repos_side_by_side(tmp_path):
    """A folder holding a Hugging Face cache entry (models--org--name) beside org/name repos: both
    are read (the cache entry alone was, and the repos were skipped without a word)."""
    from hf_spider.zoo._hubcache import write_cache_repo

    root = tmp_path / "models"
    card = "---\npipeline_tag: text-classification\nlibrary_name: transformers\n---\n"
    src = write_repo(
        tmp_path / "src",
        "nlptown/stars",
        {"README.md": card, "config.json": json.dumps({"model_type": "bert"})},
    )
    write_cache_repo(src, "nlptown/stars", root)
    for name in ("alice/one", "bob/two"):
        write_repo(root, name, {"README.md": card, "config.json": json.dumps({"model_type": "bert"})})
    report = crawl(tmp_path / "cat", from_dir=root)
    assert not report.failed
    assert sorted(Catalog.load(tmp_path / "cat").model_ids) == ["alice/one", "bob/two", "nlptown/stars"]


def test_endpoint_lost_mid_crawl_stops_with_one_error_then_resumes(tmp_path):
    import threading

    from hf_spider.errors import HubConnectionError

    root = _hub(tmp_path / "hub", 30)
    cat = tmp_path / "cat"
    outcome: dict[str, object] = {}

    def run(url: str) -> None:
        try:
            outcome["report"] = crawl(cat, endpoint=url, workers=2)
        except HubConnectionError as exc:
            outcome["error"] = exc

    hub = HubServer(root, faults=Faults(delay=0.05, delay_pattern="/resolve/"), page_size=100).start()
    worker = threading.Thread(target=run, args=(hub.url,))
    worker.start()
    deadline = time.time() + 30
    while _count_rows(cat / "catalog.sqlite") < 3 and time.time() < deadline:
        time.sleep(0.02)
    hub.stop()
    started = time.time()
    worker.join(timeout=60)
    assert not worker.is_alive() and time.time() - started < 30
    assert "lost the connection" in str(outcome.get("error")), outcome
    committed = _count_rows(cat / "catalog.sqlite")
    assert 3 <= committed < 31
    with HubServer(root) as again:
        report = crawl(cat, endpoint=again.url)
    assert len(report.unchanged) == committed and len(report.new) == 31 - committed and not report.failed


def test_cards_that_lie_or_mistype_are_read_with_a_warning(tmp_path, capsys):
    """Cards a probe of odd repos found: `library_name: [transformers]` stopped the whole crawl
    with an sqlite traceback; a BERT whose card says image-classification was ranked first for an
    image dataset; a config whose arithmetic gives a negative size was stored as the size; a
    config that is not JSON was also said to be missing."""
    root = tmp_path / "repos"
    _bert_repo(root, "org/listed-library", 1)
    readme = root / "models" / "org" / "listed-library" / "README.md"
    readme.write_text(
        readme.read_text().replace("license: apache-2.0", "library_name: [transformers]\nlicense: apache-2.0")
    )
    _bert_repo(root, "lie/bert-says-image", 2)
    readme = root / "models" / "lie" / "bert-says-image" / "README.md"
    readme.write_text(readme.read_text().replace("license:", "pipeline_tag: image-classification\nlicense:"))
    write_repo(
        root,
        "odd/negative",
        {
            "config.json": {
                "model_type": "bert",
                "hidden_size": -5,
                "intermediate_size": 3072,
                "num_hidden_layers": 12,
                "vocab_size": 30522,
                "max_position_embeddings": 512,
            }
        },
    )
    write_repo(
        root,
        "odd/bad-json",
        {"README.md": "---\npipeline_tag: text-classification\n---\n", "config.json": "{not json"},
    )
    report = crawl(tmp_path / "cat", from_dir=root / "models")
    assert len(report.new) == 4 and not report.failed
    catalog = Catalog.load(tmp_path / "cat")
    assert catalog.get("org/listed-library").library == "transformers"
    liar = catalog.get("lie/bert-says-image")
    assert liar.modality == "text" and any("contradicts its config" in w for w in liar.warnings)
    negative = catalog.get("odd/negative")
    assert negative.num_parameters is None and any(
        "implausible parameter count" in w for w in negative.warnings
    )
    bad = catalog.get("odd/bad-json").warnings
    assert any("config.json is not valid JSON" in w for w in bad) and "no config.json" not in bad


def test_a_crawl_that_finds_nothing_says_where_it_looked(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["crawl", "--from-dir", str(empty), "--catalog", str(tmp_path / "cat")]) == 0
    out = capsys.readouterr().out
    assert "0 listed" in out and f"no model repo found under {empty}" in out


def test_gated_repos_and_a_damaged_catalog_say_what_to_do(tmp_path, capsys):
    """A gated repo failed with a bare "HTTP 403"; a damaged catalog.sqlite was called unwritable."""
    root = _hub(tmp_path / "hub", 2)
    with HubServer(root, faults=Faults(forbid=r"GET /org/bert-001/resolve/")) as hub:
        report = crawl(tmp_path / "cat", endpoint=hub.url)
    assert "gated or private" in report.failed["org/bert-001"] and "--token" in report.failed["org/bert-001"]
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "catalog.sqlite").write_bytes(b"this is not a database at all" * 100)
    assert main(["crawl", "--from-dir", str(root / "models"), "--catalog", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and "move it aside" in err and err.count("\n") == 1


def test_a_card_whose_metadata_is_never_closed_is_said(tmp_path):
    from hf_spider.catalog import tokenize

    token = tokenize("org/m", card="---\nlicense: mit\npipeline_tag: text-classification\n# Model\n")
    assert token.license is None and any("not closed" in w for w in token.warnings)
    empty = tokenize("org/m", card="---\n---\n# Model\n")  # closed, only empty
    assert all("not closed" not in w for w in empty.warnings)


def test_from_dir_says_what_it_could_not_read(tmp_path, capsys):
    """A config.json over the size limit was 'no config.json' from a folder; a safetensors file
    whose header is not readable was passed over without a word; --endpoint with --from-dir was
    silently ignored."""
    from hf_spider.catalog._crawl import MAX_CONFIG_BYTES

    root = tmp_path / "repos"
    write_repo(root, "odd/huge-config", {"config.json": "{" + " " * MAX_CONFIG_BYTES + "}"})
    write_repo(
        root,
        "odd/bad-safetensors",
        {
            "config.json": {"model_type": "bert"},
            "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00[1, 2]",
        },
    )
    # no config at all and an unreadable header: both said (the header's warning hid the first)
    write_repo(
        root,
        "odd/bare",
        {"README.md": "# bare\n", "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00[1, 2]"},
    )
    crawl(tmp_path / "cat", from_dir=root / "models")
    catalog = Catalog.load(tmp_path / "cat")
    bare = catalog.get("odd/bare").warnings
    assert "no config.json" in bare and any("no readable safetensors header" in w for w in bare)
    huge = catalog.get("odd/huge-config").warnings
    assert any("config.json is over 5 MB" in w for w in huge) and "no config.json" not in huge
    assert any(
        "model.safetensors has no readable safetensors header" in w
        for w in catalog.get("odd/bad-safetensors").warnings
    )
    assert (
        main(
            [
                "crawl",
                "--from-dir",
                str(root),
                "--endpoint",
                "http://127.0.0.1:9",
                "--catalog",
                str(tmp_path / "c2"),
            ]
        )
        == 2
    )
    assert "pass one of them" in capsys.readouterr().err and not (tmp_path / "c2").exists()
