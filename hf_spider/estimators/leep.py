"""Estimators built on source-class probabilities: LEEP, NCE, and NLEEP (which makes its own).

- LEEP: Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability
  of Learned Representations", ICML 2020.
- NCE: Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification
  Tasks", ICCV 2019.
- NLEEP: Li, Jia, et al. "Ranking Neural Checkpoints", CVPR 2021: LEEP on the posteriors of a
  Gaussian mixture fitted to PCA-reduced features, for backbones without a classifier head.
"""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._base import Estimator, canonical_order, register


def leep_from_probs(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean log of the expected empirical prediction: E_i log sum_z P(y_i | z) theta_z(x_i)."""
    n = len(y)
    joint = np.zeros((int(y.max()) + 1, probs.shape[1]))
    np.add.at(joint, y, probs)
    joint /= n  # P(y, z)
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)  # P(y | z)
    eep = np.einsum("iz,iz->i", probs, cond[y])
    return float(np.mean(np.log(eep)))


@register
class LEEP(Estimator):
    """LEEP (Nguyen et al., ICML 2020): log expected empirical prediction of the source head.

    Input: `probs` (N, C_source), the source model's softmax on the target examples (required:
    without a classification head use `nleep`); features are validated but not used.
    Cost: O(N C_source K). Milliseconds.
    Scale: an average log-likelihood, <= 0; higher = better. Invariant to label permutation,
    sample order and to permuting the source classes.
    """

    name = "leep"
    needs_probs = True

    def _score(self, X, y, probs):
        return leep_from_probs(probs, y)


@register
class NCE(Estimator):
    """NCE (Tran et al., ICCV 2019): negative conditional entropy -H(Y | Z) of the target label
    given the source model's hard prediction Z = argmax probs.

    Input: `probs` (N, C_source) (required; see `leep`).
    Cost: O(N C_source). Milliseconds.
    Scale: <= 0, 0 when the source prediction determines the label; higher = better.
    """

    name = "nce"
    needs_probs = True

    def _score(self, X, y, probs):
        z = np.argmax(probs, axis=1)
        joint = np.zeros((int(y.max()) + 1, probs.shape[1]))
        np.add.at(joint, (y, z), 1.0)
        joint /= len(y)
        pz = joint.sum(axis=0, keepdims=True)
        nz = joint > 0
        return float(np.sum(joint[nz] * np.log((joint / np.where(pz > 0, pz, 1.0))[nz])))


@register
class NLEEP(Estimator):
    """NLEEP (Li et al., CVPR 2021): LEEP where the "source classes" are the components of a
    Gaussian mixture fitted to the features, reduced by PCA to `variance` of their variance.

    Input: features (N, D), at least 2 examples per class; `probs` is ignored. The mixture has
    `component_ratio` x K components (5 x K as in the paper), at most N/2.
    Cost: PCA, O(N D min(N, D)), plus EM of the mixture, O(iterations x N x components x dims);
    one of the two most expensive estimators (about 1 CPU s at N=5000, D=1280). Two guards:
    at most `max_dim` (128) principal axes, and a diagonal covariance by default
    (`covariance_type="full"` is the paper's choice; each EM step then costs up to `dims`
    times more, measured 0.3-3x the diagonal's total time here, as it often converges sooner).
    Scale: <= 0 like LEEP; higher = better. Deterministic (fixed seed, examples put in a
    content-defined order first), so invariant to sample order; invariant to label permutation
    and to isotropic feature scaling (features are rescaled to unit total variance first).

    Options: `component_ratio` (5), `variance` (0.8), `covariance_type` ("diag"), `max_dim`
    (128), `max_iter` (100), `seed` (0).
    """

    name = "nleep"
    min_per_class = 2

    def __init__(
        self,
        *,
        component_ratio: int = 5,
        variance: float = 0.8,
        covariance_type: str = "diag",
        max_dim: int | None = 128,
        max_iter: int = 100,
        seed: int = 0,
    ):
        self.component_ratio = component_ratio
        self.variance = variance
        self.covariance_type = covariance_type
        self.max_dim = max_dim
        self.max_iter = max_iter
        self.seed = seed

    def _score(self, X, y, probs):
        from sklearn.mixture import GaussianMixture

        order = canonical_order(X, y)
        X, y = X[order], y[order]
        Z = _pca(X, self.variance, self.max_dim)
        k = int(y.max()) + 1
        n_comp = int(min(self.component_ratio * k, max(2, len(y) // 2)))
        gmm = GaussianMixture(
            n_components=n_comp,
            covariance_type=self.covariance_type,
            max_iter=self.max_iter,
            random_state=self.seed,
        ).fit(Z)
        self.n_components_ = n_comp
        self.pca_dim_ = Z.shape[1]
        return leep_from_probs(gmm.predict_proba(Z), y)


def _pca(X: np.ndarray, variance: float, max_dim: int | None) -> np.ndarray:
    """Project centred features on the leading principal axes that keep `variance` of the total
    variance (at most `max_dim`), after scaling to unit total variance (so the mixture's
    regulariser is scale-free)."""
    from scipy import linalg

    Xc = X - X.mean(axis=0)
    Xc = Xc / np.sqrt((Xc**2).sum() / len(Xc))
    n, d = Xc.shape
    gram = Xc @ Xc.T if n <= d else Xc.T @ Xc
    m = gram.shape[0]
    evals = np.maximum(linalg.eigvalsh(gram)[::-1], 0.0)
    ratio = np.cumsum(evals) / evals.sum()
    r = int(min(np.searchsorted(ratio, variance) + 1, m, max_dim or m))
    vals, vecs = linalg.eigh(gram, subset_by_index=[m - r, m - 1])
    vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
    return vecs * np.sqrt(vals) if n <= d else Xc @ vecs
