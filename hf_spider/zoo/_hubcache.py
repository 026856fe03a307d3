"""Write a folder of files as a repo of a huggingface_hub cache, and read it back as a plain folder.

The cache layout is the one `huggingface_hub` reads with `HF_HUB_OFFLINE=1`:
`models--<org>--<name>/blobs/<etag>`, `snapshots/<commit>/<path>` (symlinks to the blobs) and
`refs/main` holding the commit. The commit id is derived from the content, so installing the
same files twice gives the same snapshot (and a second install is a no-op).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

# Files above this size are LFS files on the Hub: their etag is the sha256 of the content.
# Smaller ones are regular git files: their etag is the git blob sha1.
LFS_THRESHOLD = 10 * 1024 * 1024
LFS_SUFFIXES = (".safetensors", ".onnx", ".bin", ".parquet", ".pt", ".pth", ".h5", ".msgpack")


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    return f"{repo_type}s--" + repo_id.replace("/", "--")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_etag(path: Path) -> str:
    if path.suffix in LFS_SUFFIXES or path.stat().st_size >= LFS_THRESHOLD:
        return _sha256(path)
    return _git_blob_sha1(path)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts)


def write_cache_repo(source: Path, repo_id: str, cache_dir: Path, *, repo_type: str = "model") -> str:
    """Lay the files of `source` out as `repo_id` in the Hub cache `cache_dir`; return the commit.

    Idempotent: an existing snapshot with the same commit is left as it is.
    """
    source = Path(source)
    files = [(p.relative_to(source).as_posix(), p, file_etag(p)) for p in _files(source)]
    listing = "\n".join(f"{rel} {etag}" for rel, _, etag in files)
    commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
    repo_dir = Path(cache_dir) / repo_folder_name(repo_id, repo_type)
    snapshot = repo_dir / "snapshots" / commit
    ref = repo_dir / "refs" / "main"
    if (
        ref.is_file()
        and ref.read_text().strip() == commit
        and all((snapshot / rel).exists() for rel, _, _ in files)
    ):
        return commit
    blobs = repo_dir / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for rel, path, etag in files:
        blob = blobs / etag
        if not blob.exists():
            tmp = blob.with_name(etag + ".incomplete")
            shutil.copyfile(path, tmp)
            os.replace(tmp, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    # Older snapshots of the same repo are dropped so the cache holds one revision.
    for old in (repo_dir / "snapshots").iterdir():
        if old.name != commit:
            shutil.rmtree(old)
    used = {etag for _, _, etag in files}
    for blob in blobs.iterdir():
        if blob.name not in used:
            blob.unlink()
    refs = repo_dir / "refs"
    refs.mkdir(exist_ok=True)
    tmp = refs / "main.tmp"
    tmp.write_text(commit)
    os.replace(tmp, refs / "main")
    return commit


def snapshot_path(repo_id: str, cache_dir: Path, *, repo_type: str = "model") -> Path | None:
    """The current snapshot folder of a cached repo, or None when it is not in the cache."""
    repo_dir = Path(cache_dir) / repo_folder_name(repo_id, repo_type)
    ref = repo_dir / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo_dir / "snapshots" / ref.read_text().strip()
    return snapshot if snapshot.is_dir() else None


def export_plain(snapshot: Path, dest: Path) -> Path:
    """Copy a snapshot (symlinks resolved) to a plain folder, e.g. a `HubServer` root entry."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(snapshot, dest, symlinks=False)
    return dest
