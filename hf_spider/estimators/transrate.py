"""TransRate: the coding-rate gap between all features and the features of each class.

Huang, Huang, Shen, et al. "Frustratingly Easy Transferability Estimation", ICML 2022.
"""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._base import Estimator, register


def coding_rate(Z: np.ndarray, eps: float) -> float:
    """R(Z, eps) = 1/2 log det(I + Z^T Z / (n eps)), from the spectrum of the smaller Gram."""
    n, d = Z.shape
    gram = Z @ Z.T if n <= d else Z.T @ Z
    evals = np.maximum(np.linalg.eigvalsh(gram), 0.0)
    return 0.5 * float(np.sum(np.log1p(evals / (n * eps))))


@register
class TransRate(Estimator):
    """TransRate (Huang et al., ICML 2022): R(Z) - sum_c (n_c / n) R(Z_c), the rate-distortion
    gain of knowing the labels, with Z the centred features and R the coding rate at `eps`.

    Input: features (N, D), any D. The class weights n_c/n equal the reference code's 1/K on
    balanced classes. `eps` is absolute (1e-4 as the reference code), so the score depends on
    the features' scale: compare models on features as they come out of the backbone.
    Cost: one eigendecomposition of a Gram matrix per class and overall, O(N D min(N, D)).
    Scale: nats, >= 0 in practice, grows with D and K; higher = better. Invariant to label
    permutation, sample order and rotations of the features.
    """

    name = "transrate"

    def __init__(self, *, eps: float = 1e-4):
        self.eps = eps

    def _score(self, X, y, probs):
        Z = X - X.mean(axis=0)
        n = len(y)
        total = coding_rate(Z, self.eps)
        within = sum(
            (np.count_nonzero(y == c) / n) * coding_rate(Z[y == c], self.eps) for c in range(int(y.max()) + 1)
        )
        return total - within
