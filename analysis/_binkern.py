"""Numba kernels of the streaming update: one call bins a whole array and sums S1, S2 exactly.

:func:`update` takes a 3-D view ``(outer, channels, inner)`` of float32 or float64 values
(any strides) and an integer view of the same memory, and walks it in blocks of at most
``block`` values per channel (a block stays in cache between its two reads).  Per block and
channel it

1. scans the integer bits without a data-dependent branch: NaN, Inf and zero counts, the
   min / max of the finite non-zero values and their smallest / largest magnitude;
2. moves the channel's grid when the range grew (:func:`move_channel`: the canonical grid of
   the new range, :func:`grid_of`, and the exact re-binning $k \\to \\lfloor k/2^s \\rfloor$),
   so the per-channel re-gridding never returns to Python;
3. bins every finite non-zero value and adds $\\pm M$ and $M^2$ into a per-exponent table,
   where $x = \\pm M\\,2^{r - r_0}$ with an integer mantissa $M$ and the biased exponent
   $r \\ge 1$ (subnormals share row 1 with the smallest normals, at the same scale);
4. moves the table into the channel's limbs (:mod:`lloydmax.analysis._exactsum`).

float32: $M < 2^{24}$, so a row holds $\\sum M^2 < 2^{63}$ for up to $2^{15}$ values: no
overflow check in the loop (``block`` is at most $2^{15}$).  float64: $M < 2^{53}$,
$M^2 = a^2 2^{54} + 2ab\\,2^{27} + b^2$ with $M = a 2^{27} + b$, and every table entry
spills its high bits before it could overflow.

Nothing validates here; :mod:`lloydmax.analysis._stream` does.  Helpers that take arrays are
called once per row or buffer, never per value.
"""
from __future__ import annotations

import math

import numpy as np

from lloydmax._jit import jit

from ._exactsum import BASE_EXP, OFFSETS

#: values per channel per block; float32 rows of the table must not see more than 2^15
BLOCK = 1 << 15
#: rows of the per-exponent table (biased exponents 0 .. 2047) and its columns
ACC_ROWS, ACC_COLS = 2048, 8
PACK = BLOCK  # values of the packing buffer: one block of a channel (in L2)
MAG_BITS = 60
SPILL = 1 << 62
MASK32 = (1 << 32) - 1
_OFF1, _OFF2 = OFFSETS[0], OFFSETS[1]
_NL = OFFSETS[2]
_B1, _B2 = BASE_EXP[0], BASE_EXP[1]


@jit
def _floor_div(x, e):
    """floor(x / 2^e), exact for |x / 2^e| < 2^62 (x non-zero)."""
    k = np.int64(math.floor(math.ldexp(x, int(-e))))
    if k == 0 and x < 0.0:  # a subnormal quotient may round to -0
        k = -1
    return k


@jit
def grid_of(lo, hi, n_bins):
    """``(e, k0)`` of the canonical grid of the finite non-zero range [lo, hi]: the same
    integers as :func:`lloydmax.analysis._grid.canonical_grid` (which uses Python ints)."""
    e = max(-1074, math.frexp(max(abs(lo), abs(hi)))[1] - MAG_BITS)
    half_span = hi / 2 - lo / 2
    log2n = 0
    while (np.int64(1) << (log2n + 1)) <= n_bins:
        log2n += 1
    if half_span > 0:
        e = max(e, math.frexp(half_span)[1] - log2n)
    while True:
        k_lo = _floor_div(lo, e)
        if _floor_div(hi, e) - k_lo < n_bins:
            return e, k_lo
        e += 1


@jit(inline=True)
def add_rebinned(counts, ch, e_src, k0_src, out, e, k0):
    """out += row ``ch`` of ``counts`` (on the grid (e_src, k0_src)) re-binned onto the
    coarser or equal grid (e, k0), which covers its range (exact: a power-of-two grid
    only coarsens).

    No branch on the counts themselves (sparse and unpredictable: a branch per bin cost
    25 % more when pooling channels): on the same grid it is one shifted vector add; on a
    grid 2^s times finer the run of bins that land in one target bin is summed in a
    register, and the target changes every 2^s bins, a pattern the branch predictor
    follows.
    """
    n_bins = counts.shape[1]
    s = min(e - e_src, 63)  # indices stay below 2^61: >> 63 is the floor too
    if s == 0:
        off = k0_src - k0
        for i in range(n_bins):
            out[off + i] += counts[ch, i]
        return
    t_prev = (k0_src >> s) - k0
    acc = 0
    for i in range(n_bins):
        t = ((k0_src + i) >> s) - k0
        if t != t_prev:
            out[t_prev] += acc
            acc = 0
            t_prev = t
        acc += counts[ch, i]
    out[t_prev] += acc


@jit
def move_channel(counts, grid, lohi, inv_ws, ws, ch, lo, hi, tmp):
    """Re-bin channel ``ch`` onto the canonical grid of [lo, hi] (a superset of its range)
    and record the range; ``tmp`` is a scratch row of ``n_bins`` int64."""
    n_bins = counts.shape[1]
    e, k0 = grid_of(lo, hi, n_bins)
    if lohi[ch, 0] <= lohi[ch, 1]:
        e_old = grid[ch, 0]
        k0_old = grid[ch, 1]
        if e != e_old or k0 != k0_old:
            for i in range(n_bins):
                tmp[i] = 0
            add_rebinned(counts, ch, e_old, k0_old, tmp, e, k0)
            for i in range(n_bins):
                counts[ch, i] = tmp[i]
    grid[ch, 0] = e
    grid[ch, 1] = k0
    ws[ch] = math.ldexp(1.0, int(e))
    inv_ws[ch] = math.ldexp(1.0, int(-e)) if e >= -1023 else 0.0
    lohi[ch, 0] = lo
    lohi[ch, 1] = hi


@jit
def merge_grids(counts, grid, lohi, inv_ws, ws, o_counts, o_grid, o_lohi, tmp):
    """Add the counts of another grid set (same shape) into this one, every channel on the
    grid of the joint range: one pass over all channels."""
    for ch in range(counts.shape[0]):
        o_lo = o_lohi[ch, 0]
        o_hi = o_lohi[ch, 1]
        if o_lo > o_hi:
            continue
        lo = min(lohi[ch, 0], o_lo)
        hi = max(lohi[ch, 1], o_hi)
        if lo != lohi[ch, 0] or hi != lohi[ch, 1]:
            move_channel(counts, grid, lohi, inv_ws, ws, ch, lo, hi, tmp)
        add_rebinned(o_counts, ch, o_grid[ch, 0], o_grid[ch, 1], counts[ch], grid[ch, 0],
                     grid[ch, 1])


@jit
def widen_grids(counts, grid, lohi, inv_ws, ws, lo, hi, tmp):
    """Move every channel with ``lo[c] <= hi[c]`` onto the grid of [lo[c], hi[c]] (the
    caller checked that it contains the channel's range)."""
    for ch in range(counts.shape[0]):
        if lo[ch] <= hi[ch] and (lo[ch] != lohi[ch, 0] or hi[ch] != lohi[ch, 1]):
            move_channel(counts, grid, lohi, inv_ws, ws, ch, lo[ch], hi[ch], tmp)


@jit
def _add_at(limbs, ch, j0, bit, value):
    """limbs[ch, j0:] += value * 2^bit for a signed int64 value (parts below 2^32 each)."""
    j = j0 + (bit >> 5)
    r = bit & 31
    t = (value & MASK32) << r
    limbs[ch, j] += t & MASK32
    limbs[ch, j + 1] += t >> 32
    t = (value >> 32) << r
    limbs[ch, j + 1] += t & MASK32
    limbs[ch, j + 2] += t >> 32


@jit
def _flush(acc, r_lo, r_hi, is32, limbs, ch):
    """Move table rows r_lo..r_hi into channel ch's limbs, zero them, normalise."""
    for row in range(r_lo, r_hi + 1):
        used = False
        for col in range(ACC_COLS):
            used |= acc[row, col] != 0
        if not used:  # float32 rows hold only the rare small values: most are empty
            continue
        if is32:  # x = M 2^(row - 150)
            b1 = row - 150 - _B1
            b2 = 2 * (row - 150) - _B2
            _add_at(limbs, ch, _OFF1, b1, acc[row, 0])
            _add_at(limbs, ch, _OFF2, b2, acc[row, 1])
        else:  # x = M 2^(row - 1075), M^2 = a^2 2^54 + (2ab) 2^27 + b^2
            b1 = row - 1075 - _B1
            b2 = 2 * (row - 1075) - _B2
            _add_at(limbs, ch, _OFF1, b1, acc[row, 0])
            _add_at(limbs, ch, _OFF1, b1 + 32, acc[row, 4])
            _add_at(limbs, ch, _OFF2, b2 + 54, acc[row, 1])
            _add_at(limbs, ch, _OFF2, b2 + 54 + 32, acc[row, 5])
            _add_at(limbs, ch, _OFF2, b2 + 27, acc[row, 2])
            _add_at(limbs, ch, _OFF2, b2 + 27 + 32, acc[row, 6])
            _add_at(limbs, ch, _OFF2, b2, acc[row, 3])
            _add_at(limbs, ch, _OFF2, b2 + 32, acc[row, 7])
        for col in range(ACC_COLS):
            acc[row, col] = 0
    # carry from the lowest limb touched (the float sums lie within these rows' bits too)
    # until the carry is 0 past the highest one: the limbs were normalised before, so
    # they are again, in a few steps instead of a pass over all of them
    scale = 150 if is32 else 1075
    _carry(limbs, ch, _OFF1, _OFF2 - 1, _OFF1 + ((r_lo - scale - _B1) >> 5),
           _OFF1 + ((r_hi - scale - _B1 + 192) >> 5))
    _carry(limbs, ch, _OFF2, _NL - 1, _OFF2 + ((2 * (r_lo - scale) - _B2) >> 5),
           _OFF2 + ((2 * (r_hi - scale) - _B2 + 256) >> 5))


@jit
def _carry(limbs, ch, j_first, j_top, j_lo, j_hi):
    """Carry limbs j_lo .. of one power (limbs j_first .. j_top, the top one signed) until
    past j_hi the carry is 0."""
    for j in range(max(j_lo, j_first), j_top):
        carry = limbs[ch, j] >> 32
        limbs[ch, j] -= carry << 32
        limbs[ch, j + 1] += carry
        if carry == 0 and j >= j_hi:
            break


@jit
def normalize_all(limbs):
    """Carry every channel's limbs back to the normalised form (each limb but the top one
    of each power in [0, 2^32))."""
    for ch in range(limbs.shape[0]):
        for j in range(_NL - 1):
            if j != _OFF2 - 1:
                carry = limbs[ch, j] >> 32
                limbs[ch, j] -= carry << 32
                limbs[ch, j + 1] += carry


@jit
def _bin32(xs, bs, n, counts, ch, k0, inv_w, w, acc, t_bits, big_c, s1, s2h, s2l):
    """Bin float32 values xs[:n] (bits bs[:n]) of channel ch and add them to S1, S2;
    zeros, NaN and Inf are skipped.  Returns the new ``(s1, s2h, s2l)``.

    Values of magnitude bits ``>= t_bits`` (the block's largest exponent minus 14) go to
    three float64 sums that stay exact over a block: $\\sum x$ (every such $x$ is a
    multiple of $2^{t - 150}$ and the sum below $2^{53}$ of those units), and $x^2$ (exact
    in float64) split by the constant ``big_c`` $= 1.5 \\cdot 2^{2 h + 16}$ into
    $h = (x^2 + c) - c$, a multiple of $2^{2 h - 36}$ below $2^{2h + 2}$, and the exact
    rest $x^2 - h$, a multiple of $2^{2(t - 150)}$.  The rare smaller values go to the
    per-exponent integer table.  (A branch-free variant that lets zeros add 0 was slower
    on ReLU data than packing the non-zeros first.)"""
    for t in range(n):
        bits = np.int64(bs[t])
        a = bits & 0x7FFFFFFF
        if a < t_bits or a >= 0x7F800000:
            if a == 0 or a >= 0x7F800000:
                continue
            ex = a >> 23
            row = max(ex, 1)
            mant = (a & 0x7FFFFF) | (np.int64(ex != 0) << 23)
            neg = bits >> 31  # 0 or -1
            acc[row, 0] += (mant ^ neg) - neg
            acc[row, 1] += mant * mant
        else:
            v = np.float64(xs[t])
            sq = v * v
            h = (sq + big_c) - big_c
            s1 += v
            s2h += h
            s2l += sq - h
        x = np.float64(xs[t])
        q = x * inv_w if inv_w != 0.0 else x / w
        k = np.int64(math.floor(q))
        if k == 0 and x < 0.0:
            k = -1
        counts[ch, k - k0] += 1
    return s1, s2h, s2l


@jit
def _add_float(limbs, ch, j0, base, value):
    """limbs[ch, j0:] += value (a float64 that is a multiple of 2^base), exactly."""
    if value != 0.0:
        frac, e = math.frexp(value)
        _add_at(limbs, ch, j0, e - 53 - base, np.int64(math.ldexp(frac, 53)))


@jit
def _bin64(xs, bs, n, counts, ch, k0, inv_w, w, acc):
    """:func:`_bin32` for float64 values, with overflow spills into columns 4..7."""
    for t in range(n):
        bits = np.int64(bs[t])
        a = bits & 0x7FFFFFFFFFFFFFFF
        if a == 0 or a >= 0x7FF0000000000000:
            continue
        x = np.float64(xs[t])
        q = x * inv_w if inv_w != 0.0 else x / w
        k = np.int64(math.floor(q))
        if k == 0 and x < 0.0:
            k = -1
        counts[ch, k - k0] += 1
        ex = a >> 52
        row = max(ex, 1)
        mant = (a & 0xFFFFFFFFFFFFF) | (np.int64(ex != 0) << 52)
        neg = bits >> 63
        ahi = mant >> 27
        blo = mant & 0x7FFFFFF
        v0 = acc[row, 0] + ((mant ^ neg) - neg)
        v1 = acc[row, 1] + ahi * ahi
        v2 = acc[row, 2] + 2 * ahi * blo
        v3 = acc[row, 3] + blo * blo
        if (v0 >= SPILL or v0 <= -SPILL or v1 >= SPILL or v2 >= SPILL or v3 >= SPILL):
            acc[row, 4] += v0 >> 32
            v0 &= MASK32
            acc[row, 5] += v1 >> 32
            v1 &= MASK32
            acc[row, 6] += v2 >> 32
            v2 &= MASK32
            acc[row, 7] += v3 >> 32
            v3 &= MASK32
        acc[row, 0] = v0
        acc[row, 1] = v1
        acc[row, 2] = v2
        acc[row, 3] = v3


@jit
def _pack32(row_bits, row_vals, xbuf, n):
    """Append the finite non-zero float32 values of a row to ``xbuf`` from ``n`` without a
    branch; the new fill.  (A function of its own: inside :func:`update` the same loop ran
    at a third of the speed.)"""
    for i in range(row_bits.shape[0]):
        a = np.int64(row_bits[i]) & 0x7FFFFFFF
        xbuf[n] = row_vals[i]
        n += (a != 0) & (a < 0x7F800000)
    return n


@jit
def _pack64(row_bits, row_vals, xbuf, n):
    """:func:`_pack32` for float64 rows."""
    for i in range(row_bits.shape[0]):
        a = np.int64(row_bits[i]) & 0x7FFFFFFFFFFFFFFF
        xbuf[n] = row_vals[i]
        n += (a != 0) & (a < 0x7FF0000000000000)
    return n


@jit
def _key_value(key, mshift):
    """The float of an order-preserving key (see :func:`update`), exactly."""
    neg = key < 0
    a = ~key if neg else key
    ex = a >> mshift
    mant = (a & ((np.int64(1) << mshift) - 1)) | (np.int64(ex != 0) << mshift)
    value = math.ldexp(np.float64(mant), int(max(ex, 1) - (150 if mshift == 23 else 1075)))
    return -value if neg else value


@jit
def update(x3, b3, is32, c_off, counts, grid, lohi, inv_ws, ws, limbs, stats, acc,
           xbuf, bbuf, tmp, block):
    """Add the values of ``x3`` (channel ``c`` is histogram channel ``c_off + c``): counts
    into ``counts`` on the grids ``grid`` / ``lohi`` / ``inv_ws`` / ``ws`` (moved as the
    range grows), exact S1, S2 into ``limbs``, NaN / Inf / zero counts into ``stats``.
    ``acc`` (ACC_ROWS x ACC_COLS int64) is zero and left zero; ``xbuf`` is a PACK-long
    buffer of the dtype of ``x3`` and ``bbuf`` its integer view, ``tmp`` a scratch row of
    n_bins int64."""
    outer, n_ch, inner = x3.shape
    if is32:
        smask = np.int64(0x7FFFFFFF)
        infb = np.int64(0x7F800000)
        mshift = 23
    else:
        smask = np.int64(0x7FFFFFFFFFFFFFFF)
        infb = np.int64(0x7FF0000000000000)
        mshift = 52
    big = np.int64(0x7FFFFFFFFFFFFFFF)
    istep = min(inner, block)
    ostep = max(1, block // max(1, istep))
    for o0 in range(0, outer, ostep):
        o1 = min(outer, o0 + ostep)
        for i0 in range(0, inner, istep):
            i1 = min(inner, i0 + istep)
            for c in range(n_ch):
                ch = c_off + c
                # 1. branch-free scan of the block's bits; min / max on the order-preserving
                # key a ^ (bits >> 63) (negative values get -1 - a)
                k_lo = big
                k_hi = -big
                amin = infb
                amax = np.int64(0)
                n_nan = 0
                n_bad = 0
                n_zero = 0
                for o in range(o0, o1):
                    row_bits = b3[o, c, i0:i1]  # indices from 0: no wraparound test, SIMD
                    for i in range(row_bits.shape[0]):
                        v = np.int64(row_bits[i])
                        a = v & smask
                        ok = (a != 0) & (a < infb)
                        n_zero += a == 0
                        n_bad += a >= infb
                        n_nan += a > infb
                        key = a ^ (v >> 63)
                        k_lo = min(k_lo, key if ok else big)
                        k_hi = max(k_hi, key if ok else -big)
                        amin = min(amin, a if ok else infb)
                        amax = max(amax, a if ok else 0)
                stats[ch, 0] += n_nan
                stats[ch, 1] += n_bad - n_nan
                stats[ch, 2] += n_zero
                if amax == 0:
                    continue  # only zeros, NaN and Inf
                lo = _key_value(k_lo, mshift)
                hi = _key_value(k_hi, mshift)
                # 2. the grid covers the block
                if lo < lohi[ch, 0] or hi > lohi[ch, 1]:
                    move_channel(counts, grid, lohi, inv_ws, ws, ch, min(lo, lohi[ch, 0]),
                                 max(hi, lohi[ch, 1]), tmp)
                k0 = grid[ch, 1]
                inv_w = inv_ws[ch]
                w = ws[ch]
                # 3. bin and sum, row by row; short rows and rows with many zeros, NaN or Inf
                # (ReLU: a branch on x == 0 would mispredict) are packed into a buffer first
                hx = max(amax >> mshift, 1)
                t_bits = max((hx - 14) << 23, 1)  # at least 1: zeros never take the fast path
                big_c = 1.5 * math.ldexp(1.0, int(2 * (hx - 127) + 16)) if is32 else 0.0
                s1 = 0.0
                s2h = 0.0
                s2l = 0.0
                n_vals = (o1 - o0) * (i1 - i0)
                if 8 * (n_bad + n_zero) < n_vals and i1 - i0 >= 64:
                    for o in range(o0, o1):
                        if is32:
                            s1, s2h, s2l = _bin32(x3[o, c, i0:i1], b3[o, c, i0:i1], i1 - i0,
                                                  counts, ch, k0, inv_w, w, acc, t_bits, big_c,
                                                  s1, s2h, s2l)
                        else:
                            _bin64(x3[o, c, i0:i1], b3[o, c, i0:i1], i1 - i0, counts, ch, k0,
                                   inv_w, w, acc)
                else:
                    n = 0  # a block holds at most BLOCK = PACK values per channel
                    for o in range(o0, o1):
                        if i1 - i0 < 16:  # short rows (channels last): no call per row
                            for i in range(i0, i1):
                                a = np.int64(b3[o, c, i]) & smask
                                xbuf[n] = x3[o, c, i]
                                n += (a != 0) & (a < infb)
                        elif is32:
                            n = _pack32(b3[o, c, i0:i1], x3[o, c, i0:i1], xbuf, n)
                        else:
                            n = _pack64(b3[o, c, i0:i1], x3[o, c, i0:i1], xbuf, n)
                    if is32:
                        s1, s2h, s2l = _bin32(xbuf, bbuf, n, counts, ch, k0, inv_w, w, acc,
                                              t_bits, big_c, s1, s2h, s2l)
                    else:
                        _bin64(xbuf, bbuf, n, counts, ch, k0, inv_w, w, acc)
                # 4. float sums and table -> limbs
                _add_float(limbs, ch, _OFF1, _B1, s1)
                _add_float(limbs, ch, _OFF2, _B2, s2h)
                _add_float(limbs, ch, _OFF2, _B2, s2l)
                _flush(acc, max(amin >> mshift, 1), hx, is32, limbs, ch)


@jit
def pool_counts(counts, grid, lohi, chans, e, k0, out):
    """out += the counts of channels ``chans`` re-binned onto the grid (e, k0), which
    covers all their ranges (:func:`add_rebinned`): one pass over the channels' counts,
    which stay as they are."""
    for c in range(chans.shape[0]):
        ch = chans[c]
        if lohi[ch, 0] <= lohi[ch, 1]:  # else no finite non-zero value: no counts
            add_rebinned(counts, ch, grid[ch, 0], grid[ch, 1], out, e, k0)
