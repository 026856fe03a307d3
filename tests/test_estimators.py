"""Transferability estimators: independent brute-force references, invariances, orderings on
synthetic data of controlled separability, degenerate input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import linalg, optimize
from scipy.special import softmax

from hf_spider import estimators
from hf_spider.errors import DatasetError, UserInputError

ALL = [
    "gbc",
    "hscore",
    "knn",
    "leep",
    "linear_probe",
    "logme",
    "nce",
    "nleep",
    "reg_hscore",
    "sfda",
    "transrate",
]


def synthetic(sep: float, seed: int = 0, n_per: int = 60, k: int = 4, d: int = 16, z: int = 12):
    """Classes around unit-norm centres at distance ~2*sep, in anisotropic noise; `probs` from a
    fixed random source head (softmax of a linear map), so its predictions follow the features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    mix = np.linalg.qr(rng.normal(size=(d, d)))[0] * np.linspace(1.5, 0.3, d)[:, None]
    y = np.repeat(np.arange(k), n_per)
    X = rng.normal(size=(len(y), d)) @ mix + 2 * sep * centres[y]
    probs = softmax(X @ np.random.default_rng(99).normal(size=(d, z)), axis=1)
    return X, y, probs


# ---------------------------------------------------------------- registry


def test_available_lists_every_estimator():
    assert estimators.available() == ALL


def test_unknown_estimator_and_option_are_user_errors():
    X, y, _ = synthetic(1.0)
    with pytest.raises(UserInputError) as exc:
        estimators.score("logmee", X, y)
    assert "logme" in exc.value.hint
    with pytest.raises(UserInputError):
        estimators.score("logme", X, y, bogus=3)
    with pytest.raises(UserInputError):
        estimators.score("gbc", X, y, gaussian_type="full")


def test_names_are_case_and_dash_insensitive():
    X, y, _ = synthetic(1.0)
    assert estimators.score("LogME", X, y) == estimators.score("logme", X, y)
    assert estimators.score("Reg-HScore", X, y) == estimators.score("reg_hscore", X, y)


# ---------------------------------------------------------------- LogME vs brute force


def brute_force_logme(F: np.ndarray, y: np.ndarray) -> float:
    """Log evidence of the Bayesian linear model, written out with dense matrices and maximised
    numerically over (log alpha, log beta), per one-vs-rest target, averaged, divided by N.

    With D <= N the closed form in weights space (You et al., eq. 2); with D > N the same
    evidence as the Gaussian marginal y ~ N(0, F F^T / alpha + I / beta), which is cheaper there."""
    n, d = F.shape
    FtF, FFt = F.T @ F, F @ F.T
    per_class = []
    for c in np.unique(y):
        t = (y == c).astype(float)

        def neg_evidence(p, t=t):
            a, b = np.exp(np.clip(p, -30, 30))
            if d > n:
                cov = FFt / a + np.eye(n) / b
                return 0.5 * (n * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + t @ np.linalg.solve(cov, t))
            A = a * np.eye(d) + b * FtF
            m = b * np.linalg.solve(A, F.T @ t)
            ev = (
                n / 2 * np.log(b)
                + d / 2 * np.log(a)
                - n / 2 * np.log(2 * np.pi)
                - b / 2 * np.sum((F @ m - t) ** 2)
                - a / 2 * m @ m
                - 0.5 * np.linalg.slogdet(A)[1]
            )
            return -ev

        runs = [
            optimize.minimize(
                neg_evidence,
                x0,
                method="Nelder-Mead",
                options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 2000},
            )
            for x0 in (np.zeros(2), np.array([3.0, 0.0]), np.array([-3.0, 2.0]))
        ]
        per_class.append(-min(r.fun for r in runs) / n)
    return float(np.mean(per_class))


@pytest.mark.parametrize(
    ("n", "d", "signal"),
    [(200, 20, 0.0), (200, 20, 0.7), (60, 90, 0.7), (30, 200, 1.0), (300, 5, 0.3)],
    ids=["random-labels", "n>d", "d>n", "d>>n-interpolating", "few-dims"],
)
def test_logme_equals_brute_force_on_random_features(n, d, signal):
    rng = np.random.default_rng(n + d)
    y = rng.integers(0, 3, n)
    F = rng.normal(size=(n, d)) + signal * np.eye(3)[y] @ rng.normal(size=(3, d))
    assert estimators.score("logme", F, y) == pytest.approx(brute_force_logme(F, y), abs=1e-4)


def test_logme_equals_brute_force_on_real_features():
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    X, y = load_digits(return_X_y=True)  # real 8x8 pixel features, 10 classes, rank-deficient
    assert estimators.score("logme", X, y) == pytest.approx(brute_force_logme(X, y), abs=1e-4)
    Z = PCA(n_components=24, random_state=0).fit_transform(X)
    assert estimators.score("logme", Z, y) == pytest.approx(brute_force_logme(Z, y), abs=1e-4)
    sub = np.random.default_rng(0).choice(len(y), 40, replace=False)  # D > N on real data
    assert estimators.score("logme", X[sub], y[sub]) == pytest.approx(
        brute_force_logme(X[sub], y[sub]), abs=1e-4
    )


def test_logme_fixed_point_converges():
    X, y, _ = synthetic(1.0)
    est = estimators.get_estimator("logme").fit(X, y)
    assert est.n_iter_ < est.max_iter
    assert est.alpha_.shape == est.beta_.shape == (4,)


# ---------------------------------------------------------------- other brute-force references


def _class_mean_rows(X, y):
    g = np.zeros_like(X)
    for c in np.unique(y):
        g[y == c] = X[y == c].mean(axis=0)
    return g


def _cov_loop(X):
    mu = X.mean(axis=0)
    C = np.zeros((X.shape[1], X.shape[1]))
    for x in X:
        C += np.outer(x - mu, x - mu)
    return C / len(X)


def test_hscore_equals_brute_force():
    X, y, _ = synthetic(0.8, d=10)
    expected = np.trace(np.linalg.pinv(_cov_loop(X)) @ _cov_loop(_class_mean_rows(X, y)))
    assert estimators.score("hscore", X, y) == pytest.approx(expected, rel=1e-8)


def test_reg_hscore_equals_brute_force_ledoit_wolf():
    X, y, _ = synthetic(0.8, d=10, n_per=15)
    n, p = X.shape
    S = _cov_loop(X)
    Xc = X - X.mean(axis=0)
    mu = np.trace(S) / p
    d2 = np.sum((S - mu * np.eye(p)) ** 2) / p
    b2 = sum(np.sum((np.outer(x, x) - S) ** 2) for x in Xc) / n**2 / p
    a = min(b2, d2) / d2  # Ledoit & Wolf (2004), the shrinkage towards mu * I
    assert 0 < a < 1
    shrunk = (1 - a) * S + a * mu * np.eye(p)
    expected = np.trace(np.linalg.inv(shrunk) @ ((1 - a) * _cov_loop(_class_mean_rows(X, y))))
    assert estimators.score("reg_hscore", X, y) == pytest.approx(expected, rel=1e-8)


def test_leep_equals_brute_force():
    X, y, P = synthetic(0.8, n_per=20, z=7)
    n, k, z = len(y), 4, P.shape[1]
    joint = np.zeros((k, z))
    for i in range(n):
        for zz in range(z):
            joint[y[i], zz] += P[i, zz] / n
    total = 0.0
    for i in range(n):
        eep = sum(joint[y[i], zz] / joint[:, zz].sum() * P[i, zz] for zz in range(z))
        total += np.log(eep)
    assert estimators.score("leep", X, y, probs=P) == pytest.approx(total / n, rel=1e-10)


def test_nce_equals_brute_force():
    X, y, P = synthetic(0.8, n_per=20, z=7)
    zs = P.argmax(axis=1)
    n = len(y)
    h = 0.0  # conditional entropy H(Y | Z)
    for zz in set(zs.tolist()):
        in_z = zs == zz
        for c in set(y[in_z].tolist()):
            p_yz = np.sum(in_z & (y == c)) / n
            h -= p_yz * np.log(p_yz / (in_z.sum() / n))
    assert estimators.score("nce", X, y, probs=P) == pytest.approx(-h, rel=1e-10)


def test_gbc_equals_brute_force():
    X, y, _ = synthetic(0.8, d=6, n_per=20)
    stats = [(X[y == c].mean(axis=0), X[y == c].var(axis=0)) for c in range(4)]
    total = 0.0
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            (m1, v1), (m2, v2) = stats[i], stats[j]
            S1, S2 = np.diag(v1), np.diag(v2)
            S = (S1 + S2) / 2
            dist = (m1 - m2) @ np.linalg.inv(S) @ (m1 - m2) / 8 + 0.5 * np.log(
                np.linalg.det(S) / np.sqrt(np.linalg.det(S1) * np.linalg.det(S2))
            )
            total += np.exp(-dist)
    got = estimators.score("gbc", X, y, gaussian_type="diagonal", pca_dim=None)
    assert got == pytest.approx(-total, rel=1e-8)


def test_transrate_equals_brute_force():
    X, y, _ = synthetic(0.8, d=6, n_per=20)
    eps = 1e-4

    def rate(Z):
        return 0.5 * np.linalg.slogdet(np.eye(Z.shape[1]) + Z.T @ Z / (len(Z) * eps))[1]

    Z = X - X.mean(axis=0)
    expected = rate(Z) - sum(np.mean(y == c) * rate(Z[y == c]) for c in range(4))
    assert estimators.score("transrate", X, y) == pytest.approx(expected, rel=1e-8)


def test_sfda_matches_the_papers_fisher_space_formulation():
    """The estimator classifies with LDA on the shrunk within-class scatter; the paper projects
    on the generalised eigenvectors of (S_b, S_w) first. Both must give the same score."""
    X, y, _ = synthetic(0.6, d=8, n_per=25)
    k = 4

    def fit(X, y, s=None):
        means = np.stack([X[y == c].mean(axis=0) for c in range(k)])
        priors = np.bincount(y) / len(y)
        Sw = sum(priors[c] * np.cov(X[y == c].T, bias=True) for c in range(k))
        if s is None:
            s = np.exp(-5 * np.linalg.eigvalsh(Sw).max())
        shrunk = (1 - s) * Sw + s * np.trace(Sw) / X.shape[1] * np.eye(X.shape[1])
        Sb = np.cov(X.T, bias=True) - shrunk
        _, vecs = linalg.eigh(Sb, shrunk)
        coef = means @ vecs @ vecs.T
        intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
        return softmax(X @ coef.T + intercept, axis=1), means, s

    p, means, s = fit(X, y)
    p = softmax(p, axis=1)
    others = np.stack([(means.sum(axis=0) - means[c]) / (k - 1) for c in range(k)])
    Xm = X.copy()
    for i in range(len(y)):
        w = p[i, y[i]]
        Xm[i] = w * X[i] + (1 - w) * others[y[i]]
    p2, _, _ = fit(Xm, y, s)
    expected = np.mean([p2[i, y[i]] for i in range(len(y))])
    assert estimators.score("sfda", X, y) == pytest.approx(expected, rel=1e-7)


def test_knn_equals_brute_force_leave_one_out():
    X, y, _ = synthetic(0.5, n_per=25)
    correct = 0
    for i in range(len(y)):
        dist = np.linalg.norm(X - X[i], axis=1)
        dist[i] = np.inf
        nn = np.argsort(dist)[:5]
        counts = np.bincount(y[nn], minlength=4)
        best = np.flatnonzero(counts == counts.max())
        pred = next(y[j] for j in nn if y[j] in best)  # tie: the class of the nearest
        correct += pred == y[i]
    assert estimators.score("knn", X, y) == pytest.approx(correct / len(y))


def test_nleep_is_leep_on_mixture_posteriors():
    X, y, _ = synthetic(1.0)
    est = estimators.get_estimator("nleep")
    value = est.score(X, y)
    assert est.n_components_ == 5 * 4
    assert 1 <= est.pca_dim_ <= X.shape[1]
    # a log-likelihood: <= 0, and above -log K (what uninformative posteriors give) here
    assert -np.log(4) < value <= 0.0


# ---------------------------------------------------------------- invariances


@pytest.mark.parametrize("name", ALL)
def test_label_permutation_invariance(name):
    X, y, P = synthetic(0.6)
    base = estimators.score(name, X, y, probs=P)
    relabel = np.array(["dog", "cat", "zebra", "ant"])[y]  # a permutation, and strings
    assert estimators.score(name, X, relabel, probs=P) == pytest.approx(base, rel=1e-7, abs=1e-10)
    shuffled_codes = np.array([3, 0, 2, 1])[y]
    assert estimators.score(name, X, shuffled_codes, probs=P) == pytest.approx(base, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_sample_order_invariance(name):
    X, y, P = synthetic(0.6)
    perm = np.random.default_rng(1).permutation(len(y))
    assert estimators.score(name, X[perm], y[perm], probs=P[perm]) == pytest.approx(
        estimators.score(name, X, y, probs=P), rel=1e-7, abs=1e-10
    )


@pytest.mark.parametrize(
    "name", ["logme", "hscore", "reg_hscore", "gbc", "nleep", "knn", "linear_probe", "leep", "nce"]
)
def test_isotropic_scaling_invariance(name):
    X, y, P = synthetic(0.6)
    assert estimators.score(name, 7.3 * X, y, probs=P) == pytest.approx(
        estimators.score(name, X, y, probs=P), rel=1e-6, abs=1e-9
    )


@pytest.mark.parametrize(
    ("name", "options"),
    [("hscore", {}), ("linear_probe", {}), ("gbc", {"gaussian_type": "diagonal", "pca_dim": None})],
)
def test_per_feature_scaling_invariance(name, options):
    X, y, _ = synthetic(0.6)
    scale = np.random.default_rng(2).uniform(0.1, 10.0, X.shape[1])
    assert estimators.score(name, X * scale, y, **options) == pytest.approx(
        estimators.score(name, X, y, **options), rel=1e-6
    )


@pytest.mark.parametrize("name", ["hscore", "reg_hscore", "transrate", "gbc", "knn"])
def test_rotation_invariance(name):
    X, y, _ = synthetic(0.6)
    Q = np.linalg.qr(np.random.default_rng(3).normal(size=(X.shape[1], X.shape[1])))[0]
    assert estimators.score(name, X @ Q, y) == pytest.approx(estimators.score(name, X, y), rel=1e-6)


# ---------------------------------------------------------------- orderings


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", [0, 1])
def test_more_separable_scores_higher(name, seed):
    values = []
    for sep in (0.0, 0.5, 1.0, 1.5):
        X, y, P = synthetic(sep, seed=seed)
        values.append(estimators.score(name, X, y, probs=P))
    assert all(b > a for a, b in itertools.pairwise(values)), values


def test_probe_scores_are_accuracies_and_estimators_deterministic():
    X, y, P = synthetic(0.6)
    for name in ("knn", "linear_probe"):
        assert 0.0 <= estimators.score(name, X, y) <= 1.0
    for name in ALL:
        assert estimators.score(name, X, y, probs=P) == estimators.score(name, X, y, probs=P)


# ---------------------------------------------------------------- degenerate input


@pytest.mark.parametrize("name", ALL)
def test_more_dimensions_than_samples_gives_a_finite_score(name):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    X = rng.normal(size=(30, 200)) + np.eye(3)[y] @ rng.normal(size=(3, 200))
    P = softmax(rng.normal(size=(30, 5)), axis=1)
    assert np.isfinite(estimators.score(name, X, y, probs=P))


def test_hscore_saturates_when_dimensions_exceed_samples():
    """The documented degenerate value: K - 1 for any features once D >= N - 1."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    for d in (29, 60):  # exactly, so saturated models tie rather than rank by rounding noise
        assert estimators.score("hscore", rng.normal(size=(30, d)), y) == 2.0


@pytest.mark.parametrize("name", ALL)
def test_degenerate_inputs_raise_clear_errors(name):
    X, y, P = synthetic(0.6)
    cases = [
        (DatasetError, X, np.zeros(len(y), int), P),  # one class
        (DatasetError, np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y, P),  # NaN
        (DatasetError, np.ones_like(X), y, P),  # constant features
        (UserInputError, X, y[:-1], P),  # mismatched lengths
        (UserInputError, X[:, 0], y, P),  # 1-D features
        (UserInputError, X, y, P[:-3]),  # probs of the wrong length
        (UserInputError, X, y, np.log(P)),  # logits instead of probabilities
    ]
    for error, features, labels, probs in cases:
        with pytest.raises(error) as exc:
            estimators.score(name, features, labels, probs=probs)
        assert exc.value.hint, (name, error)
        assert name in str(exc.value)


@pytest.mark.parametrize("name", ["leep", "nce"])
def test_leep_and_nce_need_source_probs(name):
    X, y, _ = synthetic(0.6)
    with pytest.raises(UserInputError) as exc:
        estimators.score(name, X, y)
    assert "nleep" in exc.value.hint


@pytest.mark.parametrize("name", ["knn", "linear_probe", "gbc", "nleep"])
def test_a_class_with_one_example_is_a_dataset_error(name):
    X, y, _ = synthetic(0.6)
    y = y.copy()
    y[0] = 9
    with pytest.raises(DatasetError, match="per class"):
        estimators.score(name, X, y)


def test_partly_constant_features_are_fine():
    X, y, P = synthetic(0.8)
    X = np.hstack([X, np.full((len(y), 3), 4.2)])
    for name in ALL:
        assert np.isfinite(estimators.score(name, X, y, probs=P))


def test_labels_of_mixed_types_are_a_user_error():
    X, y, _ = synthetic(0.6)
    mixed = np.where(y == 0, "a", y.astype(object)).astype(object)
    mixed[1] = None
    with pytest.raises(UserInputError, match="labels"):
        estimators.score("logme", X, mixed)
