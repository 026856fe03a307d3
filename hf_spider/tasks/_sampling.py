"""Stratified, seeded sampling of example indices."""

from __future__ import annotations

import numpy as np


def stratified_indices(labels: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Pick `n` positions of `labels`, each class in proportion to its frequency.

    Every class present gets at least one example when `n` allows it (rare classes are not
    dropped), the rest is shared by largest remainder. Within a class the positions are a
    seeded permutation, so the same labels, `n` and `seed` always give the same sorted positions.
    """
    labels = np.asarray(labels)
    total = len(labels)
    if n >= total:
        return np.arange(total)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quotas = _allocate(counts, n)
    rng = np.random.default_rng(seed)
    picked = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        picked.append(rng.permutation(members)[: quotas[k]])
    return np.sort(np.concatenate(picked))


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Per-class quotas summing to `n`, at most each count, at least 1 when n >= classes."""
    k = len(counts)
    quotas = np.zeros(k, dtype=np.int64)
    if n >= k:
        quotas[:] = 1
    remaining = n - quotas.sum()
    spare = counts - quotas
    # proportional share of the rest, by largest remainder, never above what a class has
    while remaining > 0 and spare.sum() > 0:
        share = remaining * spare / spare.sum()
        base = np.minimum(np.floor(share).astype(np.int64), spare)
        if base.sum() == 0:
            order = np.lexsort((np.arange(k), -(share - np.floor(share))))
            order = [i for i in order if spare[i] > 0][:remaining]
            base = np.zeros(k, dtype=np.int64)
            base[order] = 1
        quotas += base
        spare -= base
        remaining -= int(base.sum())
    if n < k:
        # fewer slots than classes: the most frequent classes, ties broken by class order
        order = np.lexsort((np.arange(k), -counts))[:n]
        quotas = np.zeros(k, dtype=np.int64)
        quotas[order] = 1
    return quotas


def class_balance(counts: np.ndarray) -> float:
    """Normalised entropy of the class distribution: 1 = perfectly balanced, 0 = one class."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    if len(counts) < 2:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(p)))
