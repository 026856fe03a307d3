"""H-score and its shrinkage-regularised version.

- H-score: Bao, Li, Huang, et al. "An Information-Theoretic Approach to Transferability in Task
  Transfer Learning", ICIP 2019: tr(cov(f)^-1 cov(E[f | y])).
- Regularised H-score: Ibrahim, Ponomareva, Mazumder. "Newer is not always better: Rethinking
  transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022:
  the feature covariance replaced by its Ledoit-Wolf shrinkage estimate.
"""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._base import Estimator, register


def _class_means(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred class means (K, D) and class frequencies (K,)."""
    counts = np.bincount(y).astype(np.float64)
    means = np.zeros((len(counts), X.shape[1]))
    np.add.at(means, y, X)
    return means / counts[:, None], counts / counts.sum()


def _between_trace(evals: np.ndarray, evecs: np.ndarray, means: np.ndarray, prior: np.ndarray) -> float:
    """tr(C^-1 cov_between) with C = V diag(evals) V^T; cov_between = sum_c p_c m_c m_c^T."""
    t = means @ evecs  # (K, r)
    return float(np.sum(prior[:, None] * t**2 / evals[None, :]))


@register
class HScore(Estimator):
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^+ cov(E[f | y])), a Fisher-style ratio of
    between-class to total feature covariance.

    Input: features (N, D); the pseudo-inverse keeps eigenvalues above `rcond` x the largest.
    Cost: covariance and its eigendecomposition, O(N D^2 + D^3). About 0.6 CPU s at N=5000, D=1280.
    Scale: between 0 and K - 1 (K classes); higher = better. Invariant to label permutation,
    sample order and any invertible linear map of the features. Documented degenerate value:
    once the centred features span N - 1 dimensions (D >= N - 1) the score is exactly K - 1 for
    every model; use `reg_hscore` there. Scores are rounded to 1e-9 so that saturated models tie.
    """

    name = "hscore"

    def __init__(self, *, rcond: float = 1e-10):
        self.rcond = rcond

    def _score(self, X, y, probs):
        Xc = X - X.mean(axis=0)
        evals, evecs = np.linalg.eigh(Xc.T @ Xc / len(Xc))
        keep = evals > self.rcond * evals.max()
        k = int(y.max()) + 1
        if keep.sum() >= len(Xc) - 1:
            # the centred features span all N - 1 directions: every model scores exactly K - 1
            return float(k - 1)
        means, prior = _class_means(Xc, y)
        # rounded so that saturated scores (K - 1 up to rounding) tie exactly instead of ranking
        # models by floating-point noise
        return round(_between_trace(evals[keep], evecs[:, keep], means, prior), 9)


@register
class RegHScore(Estimator):
    """Regularised H-score (Ibrahim et al., 2022): the H-score with the feature covariance
    replaced by the Ledoit-Wolf shrinkage estimate `(1 - a) C + a (tr(C)/D) I`, and the
    between-class covariance scaled by `1 - a`, as in the authors' definition.

    Input: features (N, D), any D (well defined when D > N).
    Cost: O(N D^2) for the covariance plus a D x D Cholesky solve; cheaper than `hscore`.
    Scale: between 0 and K - 1; higher = better. Invariant to label permutation, sample order,
    isotropic scaling and rotations of the features (not to per-feature scaling).
    Fitted: `shrinkage_`.
    """

    name = "reg_hscore"

    def _score(self, X, y, probs):
        from scipy import linalg

        n, d = X.shape
        Xc = X - X.mean(axis=0)
        S = Xc.T @ Xc / n
        a = ledoit_wolf_shrinkage(Xc, S)
        self.shrinkage_ = a
        means, prior = _class_means(Xc, y)
        if a == 0.0:  # no shrinkage at all: the plain H-score's pseudo-inverse
            evals, evecs = np.linalg.eigh(S)
            keep = evals > 1e-10 * evals.max()
            return _between_trace(evals[keep], evecs[:, keep], means, prior)
        shrunk = (1.0 - a) * S
        shrunk.flat[:: d + 1] += a * np.trace(S) / d
        # positive definite (smallest eigenvalue >= a * tr(S)/d), so a Cholesky solve suffices
        cho = linalg.cho_factor(shrunk, lower=True, check_finite=False)
        solved = linalg.cho_solve(cho, means.T, check_finite=False)  # (D, K)
        return float((1.0 - a) * np.sum(prior * np.einsum("kd,dk->k", means, solved)))


def ledoit_wolf_shrinkage(Xc: np.ndarray, S: np.ndarray) -> float:
    """Ledoit & Wolf (2004) shrinkage intensity towards (tr(S)/D) I, from centred features and
    their covariance S = Xc^T Xc / n (the same estimate as sklearn's `ledoit_wolf_shrinkage`)."""
    n, d = Xc.shape
    mu = np.trace(S) / d
    s2 = float(np.sum(S * S))
    delta = (s2 - d * mu**2) / d  # ||S - mu I||_F^2 / d
    if delta <= 0.0:  # S is already a multiple of the identity
        return 1.0
    # (1/n^2) sum_k ||x_k x_k^T - S||_F^2 / d, with ||x_k x_k^T||_F = ||x_k||^2
    beta = (np.sum(np.einsum("ij,ij->i", Xc, Xc) ** 2) / n - s2) / (n * d)
    return float(min(max(beta, 0.0), delta) / delta)
