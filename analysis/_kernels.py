"""Numba kernels of the streaming histogram: scan, bin + exact power sums, regrid, limbs.

Data arrive as 3-D views ``(outer, channels, inner)`` of float32 or float64 values (any
strides), together with an integer view of the same memory (int32 for float32, int64 for
float64) from which the kernels read sign, exponent and mantissa bits.

Nothing here validates; :mod:`lloydmax.analysis.histogram` does.  Layout of the sums: see
:mod:`lloydmax.analysis._exactsum`.

Exact power sums.  A finite non-zero value is $x = \\pm M\\,2^{e-52}$ with an integer
$2^{52} \\le M < 2^{53}$ (subnormals normalised).  Per value the kernel adds, at fixed bit
positions that depend on $e$ only:

* $S_1$: $\\pm M$ at $2^{e-52}$;
* $S_2$: $M^2 = a^2 2^{54} + a b\\,2^{28} + b^2$ with $M = a\\,2^{27} + b$ -- the exact square
  as three integers below $2^{54}$ (float32 inputs have $b = 0$);
* $S_3$, $S_4$: $m = M 2^{-52} \\in [1, 2)$, $h = \\mathrm{fl}(m^2)$, then
  $\\mathrm{fl}(h m) 2^{52}$ and $\\mathrm{fl}(h^2) 2^{52}$, integers below $2^{56}$ (the same
  rounding as float64's ``x*x*x`` and ``(x*x)**2`` wherever those do not overflow or
  underflow, because scaling by a power of two commutes with rounding).

Each integer is added into a small per-exponent table ``acc[e - e_lo, 2t]`` (one memory
update per term); when an entry nears $2^{62}$ its bits above 32 move to
``acc[e - e_lo, 2t + 1]``.  :func:`flush` moves the table into the limbs after each chunk
(a two-level superaccumulator).
"""
from __future__ import annotations

import math

import numpy as np

from lloydmax._jit import jit

from ._exactsum import BASE_EXP, N_POWERS, OFFSETS, TOTAL_LIMBS

SPILL = 1 << 62
MASK32 = (1 << 32) - 1
TWO52 = float(2 ** 52)
TWO_M52 = float(2.0 ** -52)
HIDDEN = 1 << 52
#: columns of the per-exponent table: (hi, lo) for x, a^2, ab, b^2, x^3, x^4
ACC_COLS = 12
#: columns of the per-channel counters ``stats`` that :func:`scan` / :func:`scan_bits` fill
COL_NAN, COL_INF, COL_ZERO = 0, 1, 2

_OFF1, _OFF2, _OFF3, _OFF4 = OFFSETS[0], OFFSETS[1], OFFSETS[2], OFFSETS[3]
_OFFS = np.array(OFFSETS, dtype=np.int64)
_B1, _B2, _B3, _B4 = BASE_EXP
assert N_POWERS == 4 and OFFSETS[4] == TOTAL_LIMBS


@jit
def scan(x3, stats, lohi, absrange):
    """Counts of NaN, Inf and exact zeros (added into ``stats[c, 0:3]``), min / max of the
    finite non-zero values (folded into ``lohi[c]``) and the smallest / largest non-zero
    magnitude over all channels (folded into ``absrange``).
    Used by the strict NaN / Inf check; updates use the faster :func:`scan_bits`."""
    outer, n_ch, inner = x3.shape
    amin = absrange[0]
    amax = absrange[1]
    for c in range(n_ch):
        lo = lohi[c, 0]
        hi = lohi[c, 1]
        n_nan = 0
        n_inf = 0
        n_zero = 0
        for o in range(outer):
            for i in range(inner):
                x = np.float64(x3[o, c, i])
                if x == 0.0:
                    n_zero += 1
                elif x - x != 0.0:
                    if x != x:
                        n_nan += 1
                    else:
                        n_inf += 1
                else:
                    if x < lo:
                        lo = x
                    if x > hi:
                        hi = x
                    a = abs(x)
                    if a < amin:
                        amin = a
                    if a > amax:
                        amax = a
        stats[c, 0] += n_nan
        stats[c, 1] += n_inf
        stats[c, 2] += n_zero
        lohi[c, 0] = lo
        lohi[c, 1] = hi
    absrange[0] = amin
    absrange[1] = amax


@jit
def scan_bits(b3, is32, stats, lohi, absrange, sbits, sflt):
    """:func:`scan` on the integer view ``b3`` of the chunk (int32 bits of float32 values
    when ``is32``, else int64 bits of float64), with the same outputs.

    Every test is an integer comparison on $a = $ bits without the sign, and min / max run
    on the order-preserving key $a \\oplus (\\text{bits} \\gg 63)$ (non-negative floats
    keep $a$, negative ones get $-1 - a$).  Integer min / max and counters need no branch,
    so ReLU data (zeros in random order) cost no mispredictions, and the loop vectorises.
    ``sbits`` / ``sflt`` are one-element int / float views of the same memory, used to turn
    the winning keys back into floats.
    """
    outer, n_ch, inner = b3.shape
    if is32:
        smask = np.int64(0x7FFFFFFF)
        infb = np.int64(0x7F800000)
    else:
        smask = np.int64(0x7FFFFFFFFFFFFFFF)
        infb = np.int64(0x7FF0000000000000)
    big = np.int64(0x7FFFFFFFFFFFFFFF)
    amin = big
    amax = np.int64(0)
    for c in range(n_ch):
        lo = big
        hi = -big
        n_nan = 0
        n_bad = 0
        n_zero = 0
        for o in range(outer):
            for i in range(inner):
                v = np.int64(b3[o, c, i])
                a = v & smask
                ok = (a != 0) & (a < infb)  # finite and non-zero
                n_zero += a == 0
                n_bad += a >= infb
                n_nan += a > infb
                key = a ^ (v >> 63)
                lo = min(lo, key if ok else big)
                hi = max(hi, key if ok else -big)
                amin = min(amin, a if ok else big)
                amax = max(amax, a if ok else 0)
        stats[c, 0] += n_nan
        stats[c, 1] += n_bad - n_nan
        stats[c, 2] += n_zero
        if lo != big:
            sbits[0] = lo ^ (lo >> 63) | (lo >> 63) << (31 if is32 else 63)
            lohi[c, 0] = min(lohi[c, 0], np.float64(sflt[0]))
            sbits[0] = hi ^ (hi >> 63) | (hi >> 63) << (31 if is32 else 63)
            lohi[c, 1] = max(lohi[c, 1], np.float64(sflt[0]))
    if amax != 0:
        sbits[0] = amin
        absrange[0] = min(absrange[0], np.float64(sflt[0]))
        sbits[0] = amax
        absrange[1] = max(absrange[1], np.float64(sflt[0]))


@jit
def accumulate(x3, b3, is32, c_off, counts, k0s, inv_ws, ws, acc, ex_lo, limbs, stats,
               xbuf, bbuf):
    """Second pass: bin every finite non-zero value and add its powers exactly.

    Channel ``c`` of the chunk is channel ``c_off + c`` of the histogram; ``stats[c]`` are
    the chunk's NaN, Inf and zero counts of that channel (from ``scan_bits``).  The grid
    must already cover the chunk (``scan_bits`` + regrid).

    When at least an eighth of a channel's values are zeros, NaN or Inf, its finite
    non-zero values and their bits are first packed, without a branch
    (``xbuf[n] = x; bbuf[n] = bits; n += ok``), into the small buffers ``xbuf`` (float64)
    and ``bbuf`` (int64, same length), which :func:`_bin_and_add` empties whenever they
    are full: with ReLU data (zeros in random order) a branch on ``x == 0`` would
    mispredict about every other value.  Otherwise :func:`_bin_and_add` reads the rows
    directly and skips the rare zeros with a well-predicted branch.
    """
    outer, n_ch, inner = x3.shape
    size = xbuf.shape[0]
    for c in range(n_ch):
        ch = c_off + c
        k0 = k0s[ch]
        inv_w = inv_ws[ch]
        w = ws[ch]
        if 8 * (stats[c, 0] + stats[c, 1] + stats[c, 2]) < outer * inner:
            for o in range(outer):
                _bin_and_add(x3[o, c], b3[o, c], inner, is32, counts, ch, k0, inv_w, w,
                             acc, ex_lo)
        else:
            n = 0
            for o in range(outer):
                for i in range(inner):
                    x = np.float64(x3[o, c, i])
                    xbuf[n] = x
                    bbuf[n] = np.int64(b3[o, c, i])
                    n += (x != 0.0) & (x - x == 0.0)
                    if n == size:
                        _bin_and_add(xbuf, bbuf, n, is32, counts, ch, k0, inv_w, w, acc, ex_lo)
                        n = 0
            _bin_and_add(xbuf, bbuf, n, is32, counts, ch, k0, inv_w, w, acc, ex_lo)
        flush(acc, ex_lo, limbs, ch)


@jit
def _bin_and_add(xbuf, bbuf, n, is32, counts, ch, k0, inv_w, w, acc, ex_lo):
    """Bin the finite non-zero values among ``xbuf[:n]`` (bits ``bbuf[:n]``; zeros, NaN
    and Inf are skipped) of channel ``ch`` and add their powers into the per-exponent table.

    Bin index $k = \\lfloor x / w \\rfloor$ with $w = 2^e$ (multiplication by ``inv_w``
    when $2^{-e}$ is a float, division by ``w`` otherwise; both exact except where the
    quotient is subnormal, and there only a negative $x$ rounding to $-0$ needs the fix
    below).
    """
    for t in range(n):
        x = np.float64(xbuf[t])
        if x == 0.0 or x - x != 0.0:
            continue
        bits = np.int64(bbuf[t])
        if inv_w != 0.0:
            q = x * inv_w
        else:
            q = x / w
        k = np.int64(math.floor(q))
        if k == 0 and x < 0.0:
            k = -1
        counts[ch, k - k0] += 1

        if is32:
            ex = ((bits >> 23) & 0xFF) - 127
            mant = (bits & 0x7FFFFF) << 29
            if ex == -127:
                ex = -126
            else:
                mant |= HIDDEN
        else:
            ex = ((bits >> 52) & 0x7FF) - 1023
            mant = bits & (HIDDEN - 1)
            if ex == -1023:
                ex = -1022
            else:
                mant |= HIDDEN
        while mant < HIDDEN:  # subnormal input
            mant <<= 1
            ex -= 1
        neg = bits >> 63  # 0 or -1: (v ^ neg) - neg negates v when x < 0
        row = ex - ex_lo
        m = np.float64(mant) * TWO_M52
        h = m * m
        p3 = np.int64(h * m * TWO52)
        p4 = np.int64(h * h * TWO52)
        ahi = mant >> 27
        blo = mant & ((1 << 27) - 1)
        _add(acc, row, 0, (mant ^ neg) - neg)
        _add(acc, row, 2, ahi * ahi)
        if blo != 0:
            _add(acc, row, 4, ahi * blo)
            _add(acc, row, 6, blo * blo)
        _add(acc, row, 8, (p3 ^ neg) - neg)
        _add(acc, row, 10, p4)


@jit
def _add(acc, row, col, value):
    """acc[row, col] += value with |value| < 2^56; before |acc| could overflow, its high
    part moves to acc[row, col + 1] (units of 2^32).  One memory update per term in the
    common case: these updates bound the kernel's speed."""
    t = acc[row, col] + value
    if t >= SPILL or t <= -SPILL:
        acc[row, col + 1] += t >> 32
        t &= MASK32
    acc[row, col] = t


@jit
def _add_at(limbs, ch, j0, bit, value):
    """Add the signed int64 ``value`` times 2^bit into limbs[ch, j0:] (exact, no overflow:
    each limb receives parts below 2^32)."""
    j = j0 + (bit >> 5)
    r = bit & 31
    low = value & MASK32
    high = value >> 32
    t = low << r
    limbs[ch, j] += t & MASK32
    limbs[ch, j + 1] += t >> 32
    t = high << r
    limbs[ch, j + 1] += t & MASK32
    limbs[ch, j + 2] += t >> 32


@jit
def flush(acc, ex_lo, limbs, ch):
    """Move the per-exponent table into channel ``ch``'s limbs, zero it, normalise."""
    for row in range(acc.shape[0]):
        if acc[row, 2] == 0 and acc[row, 3] == 0:  # every value adds a^2 > 0 here: empty
            continue
        ex = ex_lo + row
        bit = ex - 52 - _B1
        _add_at(limbs, ch, _OFF1, bit, acc[row, 0])
        _add_at(limbs, ch, _OFF1, bit + 32, acc[row, 1])
        bit = 2 * ex - 104 - _B2
        _add_at(limbs, ch, _OFF2, bit + 54, acc[row, 2])
        _add_at(limbs, ch, _OFF2, bit + 54 + 32, acc[row, 3])
        _add_at(limbs, ch, _OFF2, bit + 28, acc[row, 4])
        _add_at(limbs, ch, _OFF2, bit + 28 + 32, acc[row, 5])
        _add_at(limbs, ch, _OFF2, bit, acc[row, 6])
        _add_at(limbs, ch, _OFF2, bit + 32, acc[row, 7])
        bit = 3 * ex - 52 - _B3
        _add_at(limbs, ch, _OFF3, bit, acc[row, 8])
        _add_at(limbs, ch, _OFF3, bit + 32, acc[row, 9])
        bit = 4 * ex - 52 - _B4
        _add_at(limbs, ch, _OFF4, bit, acc[row, 10])
        _add_at(limbs, ch, _OFF4, bit + 32, acc[row, 11])
        for col in range(acc.shape[1]):
            acc[row, col] = 0
    normalize_limbs(limbs, ch)


@jit
def normalize_limbs(limbs, ch):
    """Carry so that every limb of each power but its top one lies in [0, 2^32)."""
    for k in range(_OFFS.shape[0] - 1):
        for j in range(_OFFS[k], _OFFS[k + 1] - 1):
            carry = limbs[ch, j] >> 32
            limbs[ch, j] -= carry << 32
            limbs[ch, j + 1] += carry


@jit
def regrid(counts, k0_old, shift, k0_new, out):
    """Re-bin ``counts`` (grid start ``k0_old``) onto a grid 2^shift times coarser starting
    at ``k0_new``: old bin index k goes to floor(k / 2^shift), an exact integer shift."""
    s = shift if shift < 63 else 63  # indices stay below 2^61, so >> 63 is the floor too
    for i in range(counts.shape[0]):
        n = counts[i]
        if n != 0:
            out[((k0_old + i) >> s) - k0_new] += n
