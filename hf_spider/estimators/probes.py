"""Cheap supervised probes on frozen features: kNN accuracy and linear-probe accuracy.

Both are cross-validated accuracies on the target sample itself, the most direct (and most
expensive) proxies for fine-tuning accuracy among the estimators here.
"""

from __future__ import annotations

import numpy as np

from hf_spider.errors import UserInputError
from hf_spider.estimators._base import Estimator, class_folds, register


@register
class KNN(Estimator):
    """Leave-one-out k-nearest-neighbour accuracy (Euclidean, or cosine with `metric="cosine"`).

    Input: features (N, D), at least 2 examples per class. Each example is classified by the
    majority label of its `k` nearest other examples; ties go to the class whose member is nearest.
    Cost: all pairwise distances, O(N^2 D), in blocks of 1024 rows. About 2 CPU s at N=5000, D=1280.
    Scale: an accuracy in [0, 1]; higher = better. Invariant to label permutation, sample order
    (up to exact distance ties) and isotropic scaling and rotations of the features.
    """

    name = "knn"
    min_per_class = 2

    def __init__(self, *, k: int = 5, metric: str = "euclidean"):
        if metric not in ("euclidean", "cosine"):
            raise UserInputError(f"knn: unknown metric {metric!r}", hint="use 'euclidean' or 'cosine'")
        if int(k) < 1:
            raise UserInputError(f"knn: k must be >= 1, got {k}", hint="use k=5 (the default)")
        self.k = int(k)
        self.metric = metric

    def _score(self, X, y, probs):
        n = len(y)
        k = min(self.k, n - 1)
        if self.metric == "cosine":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.where(norms > 0, norms, 1.0)
        X = X - X.mean(axis=0)
        sq = (X**2).sum(axis=1)
        n_cls = int(y.max()) + 1
        correct = 0
        for start in range(0, n, 1024):
            rows = slice(start, min(start + 1024, n))
            d2 = sq[rows, None] + sq[None, :] - 2.0 * (X[rows] @ X.T)
            d2[np.arange(d2.shape[0]), np.arange(start, start + d2.shape[0])] = np.inf
            nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
            nn_d = np.take_along_axis(d2, nn, axis=1)
            nn = np.take_along_axis(nn, np.argsort(nn_d, axis=1, kind="stable"), axis=1)
            votes = np.zeros((nn.shape[0], n_cls))
            # one vote per neighbour plus 2^-(rank+2): the extras sum to less than one vote and
            # rank the tied classes by their nearest member
            weights = 1.0 + 2.0 ** -(np.arange(k) + 2.0)
            np.add.at(votes, (np.arange(nn.shape[0])[:, None], y[nn]), weights[None, :])
            correct += int(np.sum(votes.argmax(axis=1) == y[rows]))
        return correct / n


@register
class LinearProbe(Estimator):
    """Cross-validated accuracy of a multinomial logistic regression on standardised features.

    Input: features (N, D), at least 2 examples per class. `n_folds` (5, fewer if the rarest
    class is smaller) stratified folds, assigned from the examples' content so the score does
    not depend on sample order or label coding; L2 strength `C` (1.0), lbfgs `max_iter` (500).
    Cost: n_folds logistic-regression fits, about O(n_folds x iterations x N D K); the slowest
    estimator here (about 2 CPU s at N=5000, D=1280; more when lbfgs needs many steps).
    Scale: an accuracy in [0, 1]; higher = better. Invariant to label permutation, sample order
    and per-feature scaling (features are standardised inside each fold).
    """

    name = "linear_probe"
    min_per_class = 2

    def __init__(self, *, n_folds: int = 5, C: float = 1.0, max_iter: int = 500):
        self.n_folds = n_folds
        self.C = C
        self.max_iter = max_iter

    def _score(self, X, y, probs):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        folds = class_folds(X, y, min(self.n_folds, int(np.bincount(y).min())))
        correct = 0
        for f in range(int(folds.max()) + 1):
            train, test = folds != f, folds == f
            mean = X[train].mean(axis=0)
            std = X[train].std(axis=0)
            std[std == 0] = 1.0
            clf = LogisticRegression(C=self.C, max_iter=self.max_iter)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit((X[train] - mean) / std, y[train])
            correct += int(np.sum(clf.predict((X[test] - mean) / std) == y[test]))
        return correct / len(y)
