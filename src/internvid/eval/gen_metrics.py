"""Generation metrics from features: running mean/covariance, Fréchet distance, Inception Score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads inside the functions: `internvid --help` stays fast
    import numpy as np

IS_SPLITS = 10  # Inception Score splits (Salimans et al. 2016)


class FeatureStats:
    """Running mean and covariance of feature rows, merged batch by batch (Chan et al.), so
    that the rows need not be kept; float64 throughout."""

    def __init__(self) -> None:
        self.count = 0  # rows seen
        self.mean: np.ndarray | None = None  # (D,) mean of the rows seen
        self.m2: np.ndarray | None = None  # (D, D) sum of outer products of centred rows

    def add(self, rows: Any) -> None:
        """Add a (N, D) batch of feature rows."""
        import numpy as np

        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got {x.shape}")
        if len(x) == 0:
            return
        mean_b = x.mean(0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = len(x), mean_b, m2_b
            return
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features of width {x.shape[1]} added to {self.mean.shape[0]}")
        n_a, n_b = self.count, len(x)
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the unbiased (N - 1) covariance, as `np.cov`; needs two rows or more."""
        if self.count < 2 or self.mean is None or self.m2 is None:
            raise ValueError(f"a covariance needs at least 2 feature rows, got {self.count}")
        return self.mean, self.m2 / (self.count - 1)


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, D) features (N >= 2)."""
    stats = FeatureStats()
    stats.add(features)
    return stats.mean_cov()


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh; negative
    eigenvalues, rounding noise, are taken as 0)."""
    import numpy as np

    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """Fréchet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    The trace of (S1 S2)^(1/2) is computed without a general matrix square root: for positive
    semi-definite S1, S2 the product S1 S2 is similar to S1^(1/2) S2 S1^(1/2) = A A^T with
    A = S1^(1/2) S2^(1/2), so the eigenvalues of (S1 S2)^(1/2) are the singular values of A
    and the trace is their sum (symmetric roots by `eigh`, then one SVD; float64). This holds
    for singular covariances too (fewer samples than dimensions), where `scipy.linalg.sqrtm`
    may need the usual eps * I offset, and stays on the scale of the covariances (the
    eigenvalues of A A^T would be on their square, losing half the digits near zero).
    """
    import numpy as np

    mu1, mu2 = np.asarray(mu1, np.float64).reshape(-1), np.asarray(mu2, np.float64).reshape(-1)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or s1.shape != (dim, dim) or s2.shape != (dim, dim):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {s1.shape}, {s2.shape}"
        )
    trace_covmean = float(np.linalg.svd(_sqrt_psd(s1) @ _sqrt_psd(s2), compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_covmean)


# --------------------------------------------------------------------------- Inception Score


def inception_score(
    scores: Any, splits: int = IS_SPLITS, from_logits: bool = False
) -> tuple[float, float]:
    """Inception Score (mean, std over `splits`) of class probabilities (N, C), or logits.

    Split i is rows [i N // splits, (i + 1) N // splits), as in the original code and
    stylegan2-ada-pytorch; per split exp(mean over rows of KL(p(y|x) || p(y))), where p(y) is
    the split's mean; the std is NumPy's (population). Zero probabilities add 0 to the KL.
    """
    import numpy as np

    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"scores must be (N, C), got {x.shape}")
    if splits < 1 or len(x) < splits:
        raise ValueError(f"the Inception Score needs at least {splits} rows, got {len(x)}")
    if from_logits:
        shifted = x - x.max(1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        probs = np.exp(logp)
    else:
        probs = x
        logp = np.log(probs, out=np.zeros_like(probs), where=probs > 0)
    n = len(x)
    values = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        marginal = probs[lo:hi].mean(0)
        log_marginal = np.log(marginal, out=np.zeros_like(marginal), where=marginal > 0)
        kl = np.where(probs[lo:hi] > 0, probs[lo:hi] * (logp[lo:hi] - log_marginal), 0.0)
        values.append(float(np.exp(kl.sum(1).mean())))
    return float(np.mean(values)), float(np.std(values))
