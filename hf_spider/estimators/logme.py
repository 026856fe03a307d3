"""LogME: the maximised log marginal evidence of a Bayesian linear model on the features.

You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
ICML 2021. Each class is a 0/1 regression target `y = F w + noise`, `w ~ N(0, 1/alpha)`,
`noise ~ N(0, 1/beta)`; the evidence `log p(y | F, alpha, beta)` is maximised over alpha and beta
by MacKay's fixed-point iteration on the spectrum of `F`, divided by N, and averaged over classes.
"""

from __future__ import annotations

import numpy as np

from hf_spider.estimators._base import Estimator, register


def _spectrum(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero eigenvalues `sigma` of F^T F, squared projections `z2` (r, K) of the targets on
    the left singular vectors of F, and `res0` (K,): the part of each target outside F's span.

    Works on the smaller Gram matrix (N x N or D x D), so the cost is O(N D min(N, D))."""
    n, d = X.shape
    if n <= d:
        sigma, U = np.linalg.eigh(X @ X.T)
        keep = sigma > sigma.max() * 1e-12
        sigma, U = sigma[keep], U[:, keep]
        z2 = (U.T @ Y) ** 2
    else:
        sigma, V = np.linalg.eigh(X.T @ X)
        keep = sigma > sigma.max() * 1e-12
        sigma, V = sigma[keep], V[:, keep]
        # s_i z_i = v_i^T F^T y, so z_i^2 = (v_i^T F^T y)^2 / sigma_i
        z2 = (V.T @ (X.T @ Y)) ** 2 / sigma[:, None]
    res0 = np.maximum((Y**2).sum(axis=0) - z2.sum(axis=0), 0.0)
    return sigma, z2, res0


def log_evidence(sigma, z2, res0, n, d, alpha, beta):
    """Log evidence of each target column at (alpha, beta), from the spectrum."""
    denom = alpha + beta * sigma[:, None]  # (r, K)
    mm = (beta**2 * sigma[:, None] * z2 / denom**2).sum(axis=0)  # m^T m
    res = (alpha**2 * z2 / denom**2).sum(axis=0) + res0  # ||F m - y||^2
    logdet = np.log(denom).sum(axis=0) + (d - len(sigma)) * np.log(alpha)
    return (
        0.5 * n * np.log(beta)
        + 0.5 * d * np.log(alpha)
        - 0.5 * n * np.log(2 * np.pi)
        - 0.5 * beta * res
        - 0.5 * alpha * mm
        - 0.5 * logdet
    )


@register
class LogME(Estimator):
    """LogME (You et al., ICML 2021): per-sample log evidence of a Bayesian linear model, averaged
    over one-vs-rest class targets.

    Input: features (N, D), any N and D (D > N is fine); labels with >= 2 classes.
    Cost: one eigendecomposition of the smaller Gram matrix, O(N D min(N, D)); then a few
    vectorised fixed-point steps. About 0.5 CPU s at N=5000, D=1280.
    Scale: a log-likelihood per sample, usually within about [-2, 2]; higher = better.
    Invariant to label permutation, sample order and isotropic feature scaling.

    Options: `tol` (relative change of alpha/beta that stops the iteration), `max_iter`.
    Fitted: `alpha_`, `beta_` (one per class), `n_iter_`.
    """

    name = "logme"

    def __init__(self, *, tol: float = 1e-10, max_iter: int = 1000):
        self.tol = tol
        self.max_iter = max_iter

    def _score(self, X, y, probs):
        n, d = X.shape
        Y = np.eye(int(y.max()) + 1)[y]
        sigma, z2, res0 = _spectrum(X, Y)
        # Everything in the fixed point depends on alpha and beta only through lam = alpha/beta:
        # gamma, m^T m and the residual are functions of lam, and MacKay's updates
        # alpha = gamma / m^T m, beta = (N - gamma) / residual give the next lam.
        # lam is kept within 1e+-12 of the largest eigenvalue: past either bound the evidence
        # has reached its limit (all noise, or exact interpolation when D >= N).
        lam_min, lam_max = 1e-12 * sigma.max(), 1e12 * sigma.max()
        lam = np.ones(Y.shape[1])
        self.n_iter_ = self.max_iter
        for it in range(1, self.max_iter + 1):
            gamma, mm, res = _terms(lam, sigma, z2, res0)
            with np.errstate(divide="ignore", invalid="ignore"):
                new_lam = (gamma * res) / (mm * (n - gamma))
            new_lam = np.clip(np.nan_to_num(new_lam, nan=lam_max, posinf=lam_max), lam_min, lam_max)
            done = (np.abs(new_lam - lam) <= self.tol * lam) | (new_lam <= lam_min) | (new_lam >= lam_max)
            lam = new_lam
            if done.all():
                self.n_iter_ = it
                break
        gamma, mm, res = _terms(lam, sigma, z2, res0)
        # the evidence's optimum over beta for this lam (equals (N - gamma)/res at the fixed point)
        beta = n / (res + lam * mm)
        alpha = lam * beta
        self.alpha_, self.beta_ = alpha, beta
        return float(np.mean(log_evidence(sigma, z2, res0, n, d, alpha, beta) / n))


def _terms(lam, sigma, z2, res0):
    """gamma, m^T m and ||F m - y||^2 at alpha/beta = lam (each (K,))."""
    denom = lam[None, :] + sigma[:, None]
    gamma = (sigma[:, None] / denom).sum(axis=0)
    mm = (sigma[:, None] * z2 / denom**2).sum(axis=0)
    res = (lam[None, :] ** 2 * z2 / denom**2).sum(axis=0) + res0
    return gamma, mm, res
