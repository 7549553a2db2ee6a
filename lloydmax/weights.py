"""Weight codebooks of the low-precision trainers: binary, ternary and uniform weights.

Every function takes a weight array and returns a :class:`WeightCodebook`: integer
``codes`` of the same shape as the weights and float64 ``scales`` shaped to broadcast
against them, so that ``scales * codes`` is the quantized tensor.

Groups
------
A *group* is the set of weights that share one scale.  ``axis`` names the axis that
indexes the groups (the output-channel axis: 0 for PyTorch ``(out, in, kh, kw)``
kernels and ``(out, in)`` linear weights); every other axis is reduced.  ``axis=None``
makes the whole tensor one group.  :func:`syq_scales` uses SYQ's own subgroups instead.

Conventions shared by all functions
-----------------------------------
* A weight equal to a threshold gets the code of the smaller magnitude (``|w| > t``
  selects the support), matching the rule of :class:`lloydmax.QuantizerTable` (a value
  on a threshold goes to the lower level).
* A group whose weights are all zero (a pruned filter) gets scale 0 and code 0
  everywhere, for every method; it dequantizes to exactly 0.  This is the one case in
  which a binary or uniform codebook holds a code outside its alphabet.  It is not an
  error, because pruned channels are common in trained networks.
* ``sigma`` of a group, used by the Gaussian-model methods, is the root mean square
  ``sqrt(mean(w^2))``: the maximum-likelihood standard deviation of the zero-mean
  Gaussian that a quantizer symmetric about 0 assumes.  It equals ``np.std`` when the
  group mean is 0, and unlike ``np.std`` it does not shrink when a group is off-centre.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._conventions import resolve_levels
from ._inputs import as_float_array
from ._solver import solve
from .constants import SYQ_ETA, TWN_FACTOR
from .errors import InvalidDataError, InvalidInputError

__all__ = ["WeightCodebook", "binary", "ternary", "syq_scales", "uniform", "TERNARY_METHODS",
           "SYQ_GROUPS"]

TERNARY_METHODS = ("twn", "syq", "optimal", "gaussian")
SYQ_GROUPS = ("pixel", "row", "layer")


def _readonly(arr):
    if arr is not None:
        arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class WeightCodebook:
    """Quantized weights ``scales * codes`` and how they were obtained.

    Attributes
    ----------
    codes : ndarray of int
        Same shape as the weights.  Binary and ternary: int8 in {-1, 0, +1}.  Uniform
        with ``L = 2**bits`` levels: the odd integers ``2k - (L - 1)``, k = 0..L-1, i.e.
        -(L-1), ..., -1, +1, ..., L-1 (int8 up to 7 bits, int16 up to 15, else int32).
    scales : ndarray of float64
        One value per group, shaped to broadcast against the weights (size 1 on every
        reduced axis).  Uniform: half the step, so that ``scales * codes`` are the
        levels at odd multiples of step/2.
    threshold : ndarray of float64 or None
        Ternary: the magnitude above which a weight is non-zero, shaped like ``scales``
        (one value for the whole layer for SYQ).  ``None`` for binary and uniform.
    mse : float
        ``mean((w - scales * codes)**2)`` over all elements.
    method : str
        ``binary``, ``ternary-twn``, ``ternary-syq``, ``ternary-optimal``,
        ``ternary-gaussian``, ``syq-<group>-<binary|ternary>`` or ``uniform-<bits>bit``.
    axis : int, tuple of int or None
        Axes that index the groups (``scales`` has full length there).
    step : ndarray of float64 or None
        Uniform only: the step of each group, shaped like ``scales``.
    """

    codes: np.ndarray
    scales: np.ndarray
    threshold: np.ndarray | None
    mse: float
    method: str
    axis: int | tuple | None = 0
    step: np.ndarray | None = None

    def __post_init__(self):
        for name in ("codes", "scales", "threshold", "step"):
            _readonly(getattr(self, name))

    def dequantize(self) -> np.ndarray:
        """The quantized weights ``scales * codes`` (float64, same shape as the input)."""
        return self.scales * self.codes

    @property
    def n_groups(self) -> int:
        return int(self.scales.size)

    def __repr__(self) -> str:
        return (f"WeightCodebook({self.method}, shape={self.codes.shape}, "
                f"groups={self.n_groups}, mse={self.mse:.6g})")


# --------------------------------------------------------------------------- helpers


def _as_weights(w) -> np.ndarray:
    arr = as_float_array(w, "weights")  # the input rules of lloydmax._inputs
    if arr.size == 0:
        raise InvalidDataError(f"weights are empty (shape {arr.shape})")
    finite = np.isfinite(arr)
    if not finite.all():
        raise InvalidDataError(
            f"weights hold {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} Inf "
            "values; remove them first")
    return arr


def _normalize_axis(axis, ndim: int):
    if axis is None:
        return ()
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise InvalidInputError(f"axis must be an integer or None, got {axis!r}")
    ax = int(axis)
    if not -ndim <= ax < ndim:
        raise InvalidInputError(f"axis {ax} is out of range for a {ndim}-dimensional array"
                                + ("; use axis=None" if ndim == 0 else ""))
    return (ax % ndim,)


def _rows(arr: np.ndarray, keep: tuple):
    """(G, n) view with one row per group, and the keepdims shape of per-group values.

    Rows come in C order over the kept axes, so ``values.reshape(shape)`` puts each
    group's value back in place.
    """
    keep = tuple(sorted(keep))
    moved = np.moveaxis(arr, keep, tuple(range(len(keep))))
    n_groups = int(np.prod([arr.shape[a] for a in keep], dtype=np.int64))
    rows = moved.reshape(n_groups, -1)
    shape = tuple(arr.shape[a] if a in keep else 1 for a in range(arr.ndim))
    return rows, shape


def _mse(arr, scales, codes) -> float:
    return float(np.mean((arr - scales * codes) ** 2))


def _rms(rows) -> np.ndarray:
    # scaled by the largest magnitude first, so tiny weights (1e-200) do not underflow
    peak = np.max(np.abs(rows), axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    return peak * np.sqrt(np.mean((rows / safe[:, None]) ** 2, axis=1))


def _ternary_codes(arr, threshold) -> np.ndarray:
    return (np.sign(arr) * (np.abs(arr) > threshold)).astype(np.int8)


def _binary_codes(arr) -> np.ndarray:
    # HWGQ / XNOR: sign with w >= 0 -> +1 (np.sign would give 0 for w = 0)
    return np.where(arr >= 0, 1, -1).astype(np.int8)


def _check_eta(eta) -> float:
    try:
        e = float(eta)
    except (TypeError, ValueError):
        raise InvalidInputError(f"eta must be a number in [0, 1), got {eta!r}") from None
    if not 0.0 <= e < 1.0:
        raise InvalidInputError(f"eta must be in [0, 1), got {eta!r}")
    return e


@functools.cache
def _unit_gaussian_ternary():
    """(threshold, level) of the 3-level Lloyd-Max quantizer of N(0, 1)."""
    t = solve(n_levels=3, dist="gaussian")
    return float(t.thresholds[1]), float(t.levels[2])


@functools.cache
def _unit_gaussian_uniform(bits: int):
    return solve(bits=bits, dist="gaussian", uniform=True)


# --------------------------------------------------------------------------- binary


def binary(w, axis=0) -> WeightCodebook:
    """Binary weights of XNOR-Net and HWGQ: ``W ~ alpha * B``.

    $B = \\operatorname{sign}(W)$ (with $w \\ge 0 \\to +1$) and
    $\\alpha = \\lVert W \\rVert_1 / n$, the mean magnitude of each output filter
    (Rastegari et al. 2016, eq. 2 of the HWGQ paper).  This $\\alpha$ is the
    least-squares scale for the codes $B$.

    Parameters
    ----------
    w : array_like
        Weights, e.g. ``(out, in, kh, kw)``.
    axis : int or None
        Axis indexing the groups (output filters); ``None``: one scale for the tensor.

    Returns
    -------
    WeightCodebook
        ``codes`` in {-1, +1} (0 in an all-zero group), ``threshold`` None.

    Raises
    ------
    InvalidDataError
        Empty weights, NaN or Inf.
    InvalidInputError
        An axis that is not an integer in range.
    """
    arr = _as_weights(w)
    keep = _normalize_axis(axis, arr.ndim)
    rows, shape = _rows(arr, keep)
    alpha = np.mean(np.abs(rows), axis=1).reshape(shape)
    codes = _binary_codes(arr)
    codes[np.broadcast_to(alpha == 0.0, arr.shape)] = 0
    return WeightCodebook(codes, alpha, None, _mse(arr, alpha, codes), "binary",
                          keep[0] if keep else None)


# --------------------------------------------------------------------------- ternary


def _optimal_support(rows):
    """Exact MSE-optimal ternary threshold and scale of each row.

    With the support S = the k largest magnitudes, the least-squares scale is
    alpha_k = mean of those magnitudes and the error is (sum w^2 - k alpha_k^2) / n, so
    the best k maximises k alpha_k^2 = S_k^2 / k.  As a function of k inside a run of
    tied magnitudes this is convex, so its maximum lies at the end of a run: only those
    k are candidates, and then the support is exactly {|w| > next magnitude}.
    """
    mags = -np.sort(-np.abs(rows), axis=1)  # descending
    g, n = mags.shape
    csum = np.cumsum(mags, axis=1)
    k = np.arange(1, n + 1, dtype=np.float64)
    gain = csum * csum / k
    nxt = np.concatenate([mags[:, 1:], np.zeros((g, 1))], axis=1)
    ok = (mags > nxt)  # end of a run of ties, and a non-zero magnitude
    gain = np.where(ok, gain, -np.inf)
    best = np.argmax(gain, axis=1)
    idx = np.arange(g)
    has = ok[idx, best]
    threshold = np.where(has, nxt[idx, best], 0.0)
    alpha = np.where(has, csum[idx, best] / (best + 1.0), 0.0)
    return threshold, alpha


def ternary(w, axis=0, method: str = "optimal", eta: float = SYQ_ETA) -> WeightCodebook:
    """Ternary weights ``alpha * T`` with ``T = sign(w) * [|w| > threshold]``.

    Methods (per group):

    * ``twn`` (Ternary Weight Networks, Li & Liu 2016): threshold
      $\\Delta = 0.7\\,E|W|$, scale $\\alpha = $ mean $|w|$ over the support
      $|w| > \\Delta$.
    * ``syq`` (SYQ's initialisation, julianfaraone/SYQ ``quantize.py``): threshold
      $\\eta \\max|W|$ with $\\eta = 0.05$, scale = mean $|W|$ over the whole group.
      (:func:`syq_scales` applies SYQ's own subgroups.)
    * ``optimal``: the MSE-optimal ternary quantizer of the group's empirical weights,
      found exactly by sorting.  For a support of the $k$ largest magnitudes the
      least-squares scale is their mean $\\alpha_k$ and
      $\\mathrm{MSE} = (\\sum w^2 - k\\alpha_k^2)/n$; the $k$ maximising
      $k\\alpha_k^2$ wins.  Its scale is also TSQ's "least squares for the fixed
      support".
    * ``gaussian``: the 3-level Lloyd-Max quantizer of $N(0, \\sigma^2)$ with
      $\\sigma$ the group's RMS: threshold $0.6120\\sigma$, level $1.2240\\sigma$
      (computed by :func:`lloydmax.solve` with ``n_levels=3``).

    Parameters
    ----------
    w : array_like
        Weights.
    axis : int or None
        Axis indexing the groups; ``None``: one group for the tensor.
    method : {"optimal", "twn", "syq", "gaussian"}
    eta : float
        SYQ's threshold fraction in [0, 1) (``method="syq"`` only).

    Returns
    -------
    WeightCodebook
        int8 ``codes`` in {-1, 0, +1}; ``threshold`` and ``scales`` per group.
    """
    arr = _as_weights(w)
    keep = _normalize_axis(axis, arr.ndim)
    meth = str(method).lower()
    if meth not in TERNARY_METHODS:
        raise InvalidInputError(f"unknown ternary method {method!r}; valid: "
                                f"{', '.join(TERNARY_METHODS)}")
    rows, shape = _rows(arr, keep)
    mags = np.abs(rows)
    if meth == "twn":
        threshold = TWN_FACTOR * np.mean(mags, axis=1)
        support = mags > threshold[:, None]
        count = support.sum(axis=1)
        alpha = np.where(count > 0, np.sum(mags * support, axis=1) / np.maximum(count, 1), 0.0)
    elif meth == "syq":
        e = _check_eta(eta)
        threshold = e * np.max(mags, axis=1)
        alpha = np.mean(mags, axis=1)
    elif meth == "optimal":
        threshold, alpha = _optimal_support(rows)
    else:
        t_unit, level_unit = _unit_gaussian_ternary()
        sigma = _rms(rows)
        threshold, alpha = t_unit * sigma, level_unit * sigma
    threshold = threshold.reshape(shape)
    alpha = alpha.reshape(shape)
    codes = _ternary_codes(arr, threshold)
    codes[np.broadcast_to(alpha == 0.0, arr.shape)] = 0
    return WeightCodebook(codes, alpha, threshold, _mse(arr, alpha, codes), f"ternary-{meth}",
                          keep[0] if keep else None)


# --------------------------------------------------------------------------- SYQ


def _syq_keep(ndim: int, group: str, layout: str) -> tuple:
    if ndim == 4:
        spatial = (2, 3) if layout == "oihw" else (0, 1)
        if group == "pixel":
            return spatial
        if group == "row":
            return (spatial[0],)
        return ()
    if ndim == 2:
        if group == "row":
            return (0,) if layout == "oihw" else (1,)
        return ()  # SYQ's code keeps one scale per fully connected layer
    raise InvalidInputError(
        f"SYQ subgroups are defined for 4-D conv kernels and 2-D fully connected weights, "
        f"got a {ndim}-D array")


def syq_scales(w, group: str = "pixel", ternary: bool = True, eta: float = SYQ_ETA,
               layout: str = "oihw") -> WeightCodebook:
    """SYQ's symmetric binary or ternary codebook with one scale per subgroup.

    SYQ (Faraone et al., CVPR 2018; julianfaraone/SYQ ``quantize.py``) quantizes a layer
    to $\\{-\\alpha_g, +\\alpha_g\\}$ or $\\{-\\alpha_g, 0, +\\alpha_g\\}$ with a learned
    $\\alpha_g$ per subgroup $g$, initialised at the subgroup's mean $|W|$.  The ternary
    threshold is $\\eta \\max|W|$ over the **whole layer** ($\\eta = 0.05$), as in
    SYQ's code (``reduce_max`` over the layer), not per subgroup.

    Subgroups (``layout="oihw"``: PyTorch ``(out, in, kh, kw)`` / ``(out, in)``;
    ``layout="hwio"``: TensorFlow ``(kh, kw, in, out)`` / ``(in, out)`` as in SYQ's code):

    ============  ===================================  ====================================
    ``group``     4-D conv kernel                      2-D fully connected weight
    ============  ===================================  ====================================
    ``pixel``     one scale per spatial position       one scale for the layer (as SYQ's
                  (kh, kw), shared by all (out, in):    code does for FC layers)
                  ``kh * kw`` scales
    ``row``       one scale per kernel row kh, shared  one scale per output row (``out``
                  by all (out, in, kw): ``kh`` scales   scales; SYQ's code uses one per
                                                        layer here too)
    ``layer``     one scale                            one scale
    ============  ===================================  ====================================

    Binary codes follow sign with $w \\ge 0 \\to +1$ (SYQ's ``tf.sign`` gives 0 at exactly
    0; the difference is confined to weights that are exactly zero).

    Returns
    -------
    WeightCodebook
        ``threshold`` is the layer threshold (shaped like a one-group scale) for ternary
        codes, ``None`` for binary; ``axis`` is the tuple of axes indexing subgroups.
    """
    arr = _as_weights(w)
    grp = str(group).lower()
    if grp not in SYQ_GROUPS:
        raise InvalidInputError(f"unknown SYQ group {group!r}; valid: {', '.join(SYQ_GROUPS)}")
    lay = str(layout).lower()
    if lay not in ("oihw", "hwio"):
        raise InvalidInputError(f"layout must be 'oihw' (PyTorch) or 'hwio' (TensorFlow), "
                                f"got {layout!r}")
    e = _check_eta(eta)
    keep = _syq_keep(arr.ndim, grp, lay)
    rows, shape = _rows(arr, keep)
    alpha = np.mean(np.abs(rows), axis=1).reshape(shape)
    if ternary:
        threshold = np.full((1,) * arr.ndim, e * float(np.max(np.abs(arr))))
        codes = _ternary_codes(arr, threshold)
    else:
        threshold = None
        codes = _binary_codes(arr)
    codes[np.broadcast_to(alpha == 0.0, arr.shape)] = 0
    kind = "ternary" if ternary else "binary"
    return WeightCodebook(codes, alpha, threshold, _mse(arr, alpha, codes),
                          f"syq-{grp}-{kind}", keep if keep else None)


# --------------------------------------------------------------------------- uniform


def uniform(w, bits, axis=0) -> WeightCodebook:
    """Symmetric uniform quantizer with the MSE-optimal step for Gaussian weights.

    With $L = 2^b$ levels the levels are $(k - (L-1)/2)\\,\\Delta$, $k = 0..L-1$ (odd
    multiples of $\\Delta/2$), thresholds at the midpoints, outer cells open (clipping).
    $\\Delta = \\sigma_g \\Delta^*_b$ where $\\sigma_g$ is the group's RMS and
    $\\Delta^*_b$ is the optimal uniform step of $N(0, 1)$ from
    :func:`lloydmax.solve` (Max 1960: 1.596, 0.9957, 0.5860, 0.3352 for 1..4 bits;
    EdMIPS ``gaussian_steps``).

    Parameters
    ----------
    w : array_like
        Weights.
    bits : int
        1..16.
    axis : int or None
        Axis indexing the groups; ``None``: one group.

    Returns
    -------
    WeightCodebook
        ``codes`` are the signed odd integers $2k - (L-1)$ and ``scales`` $= \\Delta/2$,
        so ``scales * codes`` are the levels; ``step`` holds $\\Delta$ per group;
        ``threshold`` is None.  A weight on a threshold goes to the lower level.
    """
    b, n = resolve_levels(bits)
    arr = _as_weights(w)
    keep = _normalize_axis(axis, arr.ndim)
    rows, shape = _rows(arr, keep)
    sigma = _rms(rows).reshape(shape)
    unit = _unit_gaussian_uniform(b)
    safe = np.where(sigma > 0, sigma, 1.0)
    index = unit.quantize(arr / safe, return_index=True)
    dtype = np.int8 if b <= 7 else (np.int16 if b <= 15 else np.int32)
    codes = (2 * index - (n - 1)).astype(dtype)
    codes[np.broadcast_to(sigma == 0.0, arr.shape)] = 0
    step = sigma * unit.step
    scales = 0.5 * step
    return WeightCodebook(codes, scales, None, _mse(arr, scales, codes), f"uniform-{b}bit",
                          keep[0] if keep else None, step=step)

