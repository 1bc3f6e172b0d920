"""Attributional-robustness metrics (REFERENCE 7.1 - 7.3): original map vs attacked map.

All functions are batched over rows: a map batch is (B, H, W) or (B, N) (any trailing dims are
flattened), a torch tensor or a numpy array; one value per row comes back as a float64 tensor
(B,) on the input's device. Comparisons and sums run in float64 (float32 input converts exactly,
so ties are preserved).

- :func:`topk_intersection`: |topk(a) ∩ topk(b)| / k.
- :func:`kendall_tau_b`: scipy's ``kendalltau`` (variant 'b'), ties included, exact integer
  pair counts in O(N log² N) per row, vectorised over the batch (no Python loop over rows).
- :func:`spearman_rho`: scipy's ``spearmanr`` (average ranks for ties).
- :func:`mass_center`, :func:`center_shift`: Ghorbani et al.'s saliency centre and its shift.
- :func:`cosine_similarity`.
- :func:`topk_mask`, :func:`mask_by_topk`: the ``art2020`` masking by the original top-k.
- :class:`AttributionRobustnessEvaluator`: accumulate / compute over a test set.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "AttributionRobustnessEvaluator",
    "center_shift",
    "cosine_similarity",
    "kendall_tau_b",
    "mask_by_topk",
    "mass_center",
    "spearman_rho",
    "topk_intersection",
    "topk_mask",
]

FAILURE_POLICIES = ("skip", "score_one")


# ----------------------------------------------------------------------------- input handling

def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _rows(x, name: str = "maps") -> torch.Tensor:
    """(N,) -> (1, N); (B, N) -> (B, N); (B, H, W, ...) -> (B, H*W*...). float64."""
    t = _as_tensor(x)
    if t.ndim == 0:
        raise ValueError(f"{name} must be a map batch (B, H, W) or (B, N), got a scalar")
    return t.reshape(1, -1) if t.ndim == 1 else t.reshape(t.shape[0], -1)


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten two map batches to (B, N) rows and check that their shapes agree."""
    ta, tb = _as_tensor(a), _as_tensor(b)
    if ta.shape != tb.shape:
        raise ValueError(f"maps differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    ra, rb = _rows(ta, "a"), _rows(tb, "b")
    return ra, rb.to(ra.device)


def _check_k(k: int, n: int) -> int:
    if int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N = {n}] (N = pixels per map), got {k}")
    return int(k)


# ----------------------------------------------------------------------------- top-k

def topk_mask(s, k: int) -> torch.Tensor:
    """Bool (B, N) indicator of each row's top-k entries of a (B, H, W) / (B, N) batch.

    Ties at the k-th value are broken by ``torch.topk``'s choice (implementation-defined and
    possibly different on CPU and CUDA); exactly k entries per row are marked.
    """
    rows = _rows(s)
    k = _check_k(k, rows.shape[1])
    idx = torch.topk(rows, k, dim=1).indices
    return torch.zeros_like(rows, dtype=torch.bool).scatter_(1, idx, True)


def topk_intersection(a, b, k: int) -> torch.Tensor:
    """|topk(a) ∩ topk(b)| / k per row of the flattened maps -> (B,) in [0, 1].

    Args:
        a, b: (B, H, W) or (B, N) maps of the same shape (original, attacked).
        k: 1 <= k <= N. Ties at the k-th value: ``torch.topk`` picks (see :func:`topk_mask`).
    """
    ra, rb = _pair(a, b)
    return (topk_mask(ra, k) & topk_mask(rb, k)).sum(1).to(torch.float64) / k


def mask_by_topk(a, b, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``art2020`` masking: both maps times the indicator of the ORIGINAL map's top-k.

    Entries outside topk(a) are set to 0 in both maps and kept (N stays the same), as the
    official ART code does (``kendalltau(s_adv * elements1, s_orig * elements1)`` over all
    1024 entries), so the N - k zeros form one joint tie group. Returns two (B, N) float64 rows.
    """
    ra, rb = _pair(a, b)
    m = topk_mask(ra, k).to(torch.float64)
    return ra * m, rb * m


# ----------------------------------------------------------------------------- rank helpers

def _tied_pairs(sorted_keys: torch.Tensor) -> torch.Tensor:
    """Σ t(t-1)/2 over groups of equal values in each sorted row (B, N) -> (B,) int64.

    Each entry contributes the number of equal entries before it: its index minus the index
    where its group starts (found with a running max of group starts).
    """
    n = sorted_keys.shape[1]
    pos = torch.arange(n, device=sorted_keys.device).expand_as(sorted_keys)
    start = torch.ones_like(sorted_keys, dtype=torch.bool)
    start[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    group_start = torch.where(start, pos, torch.zeros_like(pos)).cummax(dim=1).values
    return (pos - group_start).sum(1)


def _dense_ranks(rows: torch.Tensor) -> torch.Tensor:
    """Dense 0-based ranks per row (equal values share a rank): (B, N) float -> (B, N) int64."""
    vals, idx = torch.sort(rows, dim=1)
    new = torch.ones_like(vals, dtype=torch.int64)
    new[:, 1:] = (vals[:, 1:] != vals[:, :-1]).to(torch.int64)
    return torch.empty_like(idx).scatter_(1, idx, new.cumsum(1) - 1)


def _inversions(seq: torch.Tensor) -> torch.Tensor:
    """Pairs i < j with seq[i] > seq[j] (strictly) per row: (B, N) int64 -> (B,) int64.

    Bottom-up merge sort over blocks: at width w, every right block element counts the larger
    elements of its (already sorted) left block with one batched ``searchsorted``; then each
    pair of blocks is sorted into one block of width 2w. Rows are padded at the end with a value
    above all others, which adds no inversion.
    """
    b, n = seq.shape
    size = 1 << max(0, (n - 1).bit_length())
    if size > n:
        pad = seq.new_full((b, size - n), int(seq.max()) + 1 if seq.numel() else 0)
        seq = torch.cat([seq, pad], dim=1)
    total = torch.zeros(b, dtype=torch.int64, device=seq.device)
    w = 1
    while w < size:
        blocks = seq.view(b, size // (2 * w), 2, w)
        left = blocks[:, :, 0].reshape(-1, w).contiguous()
        right = blocks[:, :, 1].reshape(-1, w).contiguous()
        not_greater = torch.searchsorted(left, right, right=True)
        total += (w - not_greater).reshape(b, -1).sum(1)
        seq = blocks.reshape(b, -1, 2 * w).sort(dim=2).values.reshape(b, size)
        w *= 2
    return total


# ----------------------------------------------------------------------------- correlations

def kendall_tau_b(a, b, mask=None) -> torch.Tensor:
    """Kendall's tau-b per row, equal to ``scipy.stats.kendalltau(a_i, b_i).statistic``.

    Knight's algorithm with scipy's formula: dense ranks of a and b; sort by (a, b); the
    discordant pairs n_d are the strict inversions of b's ranks in that order; ties n1 (in a),
    n2 (in b), n3 (joint); n0 = N(N-1)/2 and

        tau_b = (n0 - n1 - n2 + n3 - 2 n_d) / sqrt(n0 - n1) / sqrt(n0 - n2), clipped to [-1, 1].

    All counts are exact int64, so the result matches scipy to rounding (in practice bit for
    bit). Rows where a or b is constant (n1 == n0 or n2 == n0), rows with N < 2 and rows
    holding a NaN give NaN, as scipy does.

    Args:
        a, b: (B, H, W) or (B, N) maps of the same shape.
        mask: optional bool (B, N) or the maps' shape; entries where it is False are set to 0
            in BOTH maps and kept (the ``art2020`` masked tau, see :func:`mask_by_topk`).

    Returns:
        (B,) float64.
    """
    ra, rb = _pair(a, b)
    if mask is not None:
        m = _as_tensor(mask).to(ra.device)
        if m.numel() != ra.numel():
            raise ValueError(f"mask has {tuple(m.shape)}, the maps flatten to {tuple(ra.shape)}")
        m = m.reshape(ra.shape) != 0
        ra, rb = ra * m, rb * m
    n = ra.shape[1]
    xr, yr = _dense_ranks(ra), _dense_ranks(rb)
    keys, order = torch.sort(xr * (n + 1) + yr, dim=1)
    dis = _inversions(yr.gather(1, order))
    n1 = _tied_pairs(torch.sort(xr, dim=1).values)
    n2 = _tied_pairs(torch.sort(yr, dim=1).values)
    n3 = _tied_pairs(keys)
    n0 = n * (n - 1) // 2
    num = (n0 - n1 - n2 + n3 - 2 * dis).to(torch.float64)
    tau = num / torch.sqrt((n0 - n1).to(torch.float64)) / torch.sqrt((n0 - n2).to(torch.float64))
    tau = tau.clamp(-1.0, 1.0)
    bad = (n1 == n0) | (n2 == n0) | torch.isnan(ra).any(1) | torch.isnan(rb).any(1)
    return torch.where(bad, torch.full_like(tau, math.nan), tau)


def _average_ranks(rows: torch.Tensor) -> torch.Tensor:
    """1-based ranks per row with ties given their average rank (scipy ``rankdata``): (B, N)."""
    vals, idx = torch.sort(rows, dim=1)
    n = rows.shape[1]
    pos = torch.arange(n, device=rows.device).expand_as(vals)
    start = torch.ones_like(vals, dtype=torch.bool)
    start[:, 1:] = vals[:, 1:] != vals[:, :-1]
    end = torch.ones_like(start)
    end[:, :-1] = start[:, 1:]
    first = torch.where(start, pos, torch.zeros_like(pos)).cummax(1).values
    last = torch.where(end, pos, torch.full_like(pos, n)).flip(1).cummin(1).values.flip(1)
    ranks = (first + last).to(torch.float64) / 2 + 1
    return torch.empty_like(ranks).scatter_(1, idx, ranks)


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per row of float64 (B, N) rows; a constant row gives NaN."""
    xc = x - x.mean(1, keepdim=True)
    yc = y - y.mean(1, keepdim=True)
    r = (xc * yc).sum(1) / torch.sqrt((xc * xc).sum(1) * (yc * yc).sum(1))
    return r.clamp(-1.0, 1.0)


def spearman_rho(a, b) -> torch.Tensor:
    """Spearman's rho per row (Pearson of average ranks), as ``scipy.stats.spearmanr``.

    Args:
        a, b: (B, H, W) or (B, N) maps of the same shape.

    Returns:
        (B,) float64; NaN for a constant row or a row holding a NaN.
    """
    ra, rb = _pair(a, b)
    rho = _pearson(_average_ranks(ra), _average_ranks(rb))
    bad = torch.isnan(ra).any(1) | torch.isnan(rb).any(1)
    return torch.where(bad, torch.full_like(rho, math.nan), rho)


def cosine_similarity(a, b) -> torch.Tensor:
    """<a, b> / (|a| |b|) per row of the flattened maps -> (B,) float64; a zero row gives NaN."""
    ra, rb = _pair(a, b)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


# ----------------------------------------------------------------------------- mass centre

def _maps(s, name: str = "maps") -> torch.Tensor:
    t = _as_tensor(s)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"{name} must be (B, H, W) or (H, W), got shape {tuple(t.shape)}")
    return t


def mass_center(s) -> torch.Tensor:
    """Saliency centre C(S) = [Σ S·x, Σ S·y] / Σ S per map, in pixels.

    x is the column index, y the row index (0-based pixel indices). Ghorbani et al. divide by
    H·W instead of Σ S; their saliency is normalised to sum to H·W, so the two agree there.

    Args:
        s: (B, H, W) or (H, W) map(s), normally non-negative.

    Returns:
        (B, 2) float64 [x, y]; NaN for a map that sums to 0.
    """
    t = _maps(s)
    _, h, w = t.shape
    ys = torch.arange(h, dtype=torch.float64, device=t.device)
    xs = torch.arange(w, dtype=torch.float64, device=t.device)
    mass = t.sum((1, 2))
    cx = (t.sum(1) * xs).sum(1) / mass
    cy = (t.sum(2) * ys).sum(1) / mass
    return torch.stack([cx, cy], dim=1)


def center_shift(a, b, integer: bool = False) -> torch.Tensor:
    """‖C(a) − C(b)‖₂ per map pair, in pixels -> (B,) float64.

    Args:
        a, b: (B, H, W) or (H, W) original and attacked maps of the same shape.
        integer: Ghorbani et al.'s measure ‖C1 − int C2‖ (REFERENCE 7.1), where
            C1 = int(C(S(x0))) is also an integer: BOTH centres are truncated toward zero
            (numpy ``astype(int)``, i.e. floor for the non-negative coordinates of a
            non-negative map) before the distance is taken. Their code does exactly this
            (``mass_center1 = C(S1).astype(int)``, ``norm(mass_center1 - C(S2).astype(int))``).
            False: the distance between the exact float centres.
    """
    ta, tb = _as_tensor(a), _as_tensor(b)
    if ta.shape != tb.shape:
        raise ValueError(f"maps differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    ca, cb = mass_center(ta), mass_center(tb).to(ta.device)
    if integer:
        ca, cb = torch.trunc(ca), torch.trunc(cb)
    return (ca - cb).norm(dim=1)


# ----------------------------------------------------------------------------- evaluator

class AttributionRobustnessEvaluator:
    """Original vs attacked attribution maps over a test set (REFERENCE 7.2 / 7.3).

    Per counted image: top-k intersection, Kendall tau-b over the full map, Spearman rho,
    centre shift and cosine similarity (plus the masked tau when ``masked_tau``).

    Args:
        k: top-k size for the intersection (and the masked tau).
        masked_tau: also report ``kendall_masked``: tau on both maps masked by the original
            map's top-k (the ``art2020`` iterate-selection measure, :func:`mask_by_topk`).
            "K" stays the full-map tau, the reported metric of REFERENCE 7.3.
        failure_policy: what an image whose attack found no label-keeping iterate
            (``success`` False) counts as. "skip" (``art2020``): not counted. "score_one"
            (``chen2019``): counted as identical maps: IN = K = rho = cosine = 1 (and the
            masked tau 1), centre shift 0; its attacked map is not looked at.
        integer_centers: centre shift as Ghorbani et al.'s integer measure (see
            :func:`center_shift`).

    Means skip NaN values (e.g. Kendall on a constant map); ``num_nan`` counts them.
    Standard deviations are population ones (ddof = 0).
    """

    def __init__(self, k: int = 100, masked_tau: bool = False, failure_policy: str = "skip",
                 integer_centers: bool = True):
        if failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy must be one of {FAILURE_POLICIES}, got {failure_policy!r}")
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.k, self.masked_tau = int(k), masked_tau
        self.failure_policy, self.integer_centers = failure_policy, integer_centers
        self.reset()

    @property
    def metric_names(self) -> tuple[str, ...]:
        names = ("topk_intersection", "kendall", "spearman", "center_shift", "cosine")
        return names + ("kendall_masked",) if self.masked_tau else names

    def reset(self) -> None:
        self.values: dict[str, list[float]] = {m: [] for m in self.metric_names}
        self.num_images = 0
        self.num_skipped = 0
        self.num_failed = 0

    def _scores(self, orig: torch.Tensor, adv: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"topk_intersection": topk_intersection(orig, adv, self.k),
               "kendall": kendall_tau_b(orig, adv),
               "spearman": spearman_rho(orig, adv),
               "center_shift": center_shift(orig, adv, integer=self.integer_centers),
               "cosine": cosine_similarity(orig, adv)}
        if self.masked_tau:
            out["kendall_masked"] = kendall_tau_b(*mask_by_topk(orig, adv, self.k))
        return out

    def accumulate(self, orig_maps, attacked_maps, success=None) -> None:
        """Add a batch.

        Args:
            orig_maps: (B, H, W) (or (H, W)) maps of the original images.
            attacked_maps: (B, H, W) maps of the attacked images, same shape.
            success: (B,) bool, True where the attack produced a label-keeping iterate;
                None = all True.
        """
        orig, adv = _maps(orig_maps, "orig_maps"), _maps(attacked_maps, "attacked_maps")
        if orig.shape != adv.shape:
            raise ValueError(f"orig_maps {tuple(orig.shape)} and attacked_maps {tuple(adv.shape)} differ in shape")
        _check_k(self.k, orig.shape[1] * orig.shape[2])
        b = orig.shape[0]
        if success is None:
            ok = torch.ones(b, dtype=torch.bool)
        elif isinstance(success, torch.Tensor):
            ok = success.detach().bool()
        else:
            ok = torch.as_tensor(np.asarray(success)).bool()
        if ok.shape != (b,):
            raise ValueError(f"success must be a (B,) = ({b},) bool array, got shape {tuple(ok.shape)}")
        ok = ok.to(orig.device)
        n_ok = int(ok.sum())
        self.num_failed += b - n_ok
        if n_ok:
            for name, vals in self._scores(orig[ok], adv[ok].to(orig.device)).items():
                self.values[name].extend(vals.cpu().tolist())
        if self.failure_policy == "skip":
            self.num_skipped += b - n_ok
            self.num_images += n_ok
            return
        for name in self.metric_names:
            self.values[name].extend([0.0 if name == "center_shift" else 1.0] * (b - n_ok))
        self.num_images += b

    def compute(self) -> dict:
        """{"<metric>_mean", "<metric>_std" for each metric, "IN", "IN_std", "K", "K_std" (top-k
        intersection and full-map Kendall tau, ×100 as tables print them), "num_images"
        (counted), "num_skipped", "num_failed" (attack failures, skipped or scored 1),
        "num_nan": {metric: count}}."""
        if self.num_images == 0:
            raise RuntimeError("AttributionRobustnessEvaluator.compute() called with no counted image "
                               f"(accumulate() not called, or all {self.num_skipped} images skipped)")
        out: dict = {}
        for name, vals in self.values.items():
            v = np.asarray(vals, dtype=np.float64)
            finite = v[~np.isnan(v)]
            out[f"{name}_mean"] = float(finite.mean()) if finite.size else math.nan
            out[f"{name}_std"] = float(finite.std()) if finite.size else math.nan
        out["IN"], out["IN_std"] = 100 * out["topk_intersection_mean"], 100 * out["topk_intersection_std"]
        out["K"], out["K_std"] = 100 * out["kendall_mean"], 100 * out["kendall_std"]
        out.update(num_images=self.num_images, num_skipped=self.num_skipped, num_failed=self.num_failed,
                   num_nan={n: int(np.isnan(np.asarray(v, np.float64)).sum()) for n, v in self.values.items()})
        return out
