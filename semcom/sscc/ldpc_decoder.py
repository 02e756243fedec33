r"""A fast belief-propagation decoder for the 5G NR LDPC codes, a drop-in for Sionna's ``LDPC5GDecoder``.

Same code, same algorithm, a faster kernel. The code construction is Sionna's: the (pruned) parity-check
matrix, the lifting size ``Z``, the filler bits and the rate matching are read from a Sionna
``LDPC5GDecoder`` (and its ``LDPC5GEncoder``), so both decoders see the same graph. The algorithm is
the one Sionna runs by default -- flooding BP with LLR clipping at ``llr_max = 20`` -- with the
check-node rule ``"boxplus-phi"`` (exact sum-product) or ``"minsum"`` (optionally normalised). Only
the memory layout, the order of floating-point operations and (by default) early stopping differ: a
block leaves the iterations once its hard decisions are a codeword. On noisy input the decisions can
therefore differ from Sionna's only through rounding or a codeword that later iterations would have
left; ``tests/test_ldpc_decoder.py`` and ``bench/bench_ldpc_verify.py`` compare the two. On noiseless
input both return the codeword.

Message passing, with LLRs :math:`\ell = \ln P(b=0)/P(b=1)` (the negated logits Sionna's blocks use),
check node ``j``, variable node ``i`` and :math:`\mathcal N(j)` the variable nodes of check ``j``:

.. math::

    q_{i\to j} = \operatorname{clip}\big(L_i - r_{j\to i}\big), \qquad
    L_i = \ell_i + \sum_{j' \ni i} r_{j'\to i},

    r_{j\to i} = \operatorname{clip}\Big(\prod_{i'\in\mathcal N(j)\setminus i}\operatorname{sign} q_{i'\to j}
        \cdot \phi\Big(\sum_{i'\in\mathcal N(j)\setminus i}\phi(|q_{i'\to j}|)\Big)\Big), \qquad
    \phi(x) = -\ln\tanh(x/2)

("boxplus-phi"), or :math:`\alpha \min_{i'\in\mathcal N(j)\setminus i}|q_{i'\to j}|` in place of the
:math:`\phi` term ("minsum", normalised for :math:`\alpha < 1`), with ``clip`` to :math:`[-20, 20]`,
:math:`r = 0` and :math:`q = \ell` before the first iteration, and the bit decision :math:`\hat b_i =
[L_i \le 0]` after the last (W. E. Ryan and S. Lin, "Channel Codes: Classical and Modern", 2009,
Ch. 5; J. Chen and M. Fossorier, "Near optimum universal belief propagation based decoding of
low-density parity check codes", 2002, for normalised min-sum).

Why it is faster: messages live edge-major with the batch innermost, ``[edges, batch]``, so every
gather and scatter moves contiguous rows of ``batch`` floats instead of single elements, and the
check nodes are grouped by degree into at most three buckets padded to the bucket's largest degree
(instead of one tensor padded to the largest degree of the graph, up to 19 for base graph 1, while
most of its checks have degree 3 to 10). Everything else is a handful of whole-tensor torch
operations per iteration.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FastCnUpdate", "FastLdpc5GDecoder", "fast_tb_decoder"]

FastCnUpdate = Literal["boxplus-phi", "minsum"]

# phi's argument range, as in Sionna's float32 boxplus-phi: phi(8.5e-8) is about 16.6, the upper bound
_PHI_LO, _PHI_HI = 8.5e-8, 16.635532


# messages per chunk of blocks decoded together: a [cells, chunk] float32 tensor of about 4 MiB (larger chunks pay
# fewer per-operation overheads; smaller ones did not run faster from cache)
_CELLS_PER_CHUNK = 1 << 20


def _phi_(x: torch.Tensor) -> torch.Tensor:
    """In place: ``phi(x) = -ln tanh(x / 2) = ln(1 + 2 / (e^x - 1))`` on ``x`` clamped to ``[8.5e-8, 16.635532]``.

    The ``expm1``/``log1p`` form is exact to float32 rounding at both ends of the range and cheaper
    than ``tanh`` followed by ``log``.
    """
    return torch.log1p(x.clamp_(_PHI_LO, _PHI_HI).expm1_().reciprocal_().mul_(2.0), out=x)


def _buckets(degrees: np.ndarray, max_buckets: int = 3) -> list[int]:
    """Upper degree of each bucket: the split of the sorted distinct degrees with the fewest padded cells."""
    values, counts = np.unique(degrees, return_counts=True)
    best: tuple[int, list[int]] | None = None
    for nb in range(1, min(max_buckets, len(values)) + 1):
        for cuts in itertools.combinations(range(len(values) - 1), nb - 1):
            tops = [int(values[c]) for c in cuts] + [int(values[-1])]
            cells, lo = 0, 0
            for top in tops:
                sel = (values > lo) & (values <= top)
                cells += int(counts[sel].sum()) * top
                lo = top
            if best is None or cells < best[0]:
                best = (cells, tops)
    assert best is not None
    return best[1]


class FastLdpc5GDecoder(torch.nn.Module):
    """Flooding BP on a Sionna ``LDPC5GDecoder``'s code: rate recovery, decoding, info bits out.

    Args:
        reference: the Sionna ``LDPC5GDecoder`` whose code (pruned parity-check matrix, encoder and its
            rate matching, ``llr_max``) this decoder uses; it must have been built with
            ``return_infobits=True`` and no HARQ mode (as ``TBDecoder`` builds it).
        num_iter: BP iterations.
        cn_update: ``"boxplus-phi"`` (exact) or ``"minsum"``.
        alpha: normalisation of min-sum (1 = plain min-sum, Sionna's ``"minsum"``); ignored by boxplus.
        early_stop: a block stops iterating once its hard decisions form a codeword (all checks
            satisfied); ``False`` runs all ``num_iter`` iterations on every block, as Sionna does.

    Input:
        llr: ``[..., n]`` float, logits ``ln P(b=1)/P(b=0)`` of the rate-matched code block (Sionna's
            convention, the same input as the reference decoder).

    Output:
        ``[..., k]`` float 0/1: the hard decisions on the ``k`` information bits.
    """

    _cell_vn: torch.Tensor  # [cells] variable node of each message cell (num_vns for a padded cell)
    _pad_cells: torch.Tensor  # [pads] the padded cells
    _out_int_inv: torch.Tensor | None  # [n] inverse of the rate matcher's bit interleaver

    def __init__(self, reference: torch.nn.Module, num_iter: int = 20, cn_update: FastCnUpdate = "boxplus-phi",
                 alpha: float = 1.0, early_stop: bool = True) -> None:
        super().__init__()
        if cn_update not in ("boxplus-phi", "minsum"):
            raise ValueError(f"cn_update must be 'boxplus-phi' or 'minsum', got {cn_update!r}")
        ref: Any = reference
        if getattr(ref, "_harq_mode", False) or not getattr(ref, "_return_infobits", True):
            raise ValueError("the reference decoder must return info bits and not run in HARQ mode")
        enc = ref.encoder
        self.num_iter, self.cn_update, self.alpha = int(num_iter), str(cn_update), float(alpha)
        self.early_stop = bool(early_stop)
        self.cells_per_chunk = _CELLS_PER_CHUNK
        self.n, self.k, self.z, self.k_filler = int(enc.n), int(enc.k), int(enc.z), int(enc.k_filler)
        self.llr_max = float(ref._llr_max) if ref._llr_max is not None else 20.0
        self._buf_len = int(enc.n_cb_comp) - int(ref._nb_pruned_nodes)
        out_int_inv = getattr(enc, "out_int_inv", None) if enc.num_bits_per_symbol is not None else None
        pcm = sp.csr_matrix(ref.pcm)
        pcm.sort_indices()
        self.num_cns, self.num_vns = pcm.shape
        self.num_edges = int(pcm.nnz)
        degrees = np.diff(pcm.indptr)
        # check nodes grouped by degree: bucket b holds the rows with degree in (top_{b-1}, top_b],
        # padded to top_b; padded cells point to the dummy variable node ``num_vns``
        index: list[np.ndarray] = []
        pads: list[np.ndarray] = []
        shapes: list[tuple[int, int, int]] = []  # (first cell, rows, padded degree) per bucket
        start, lo = 0, 0
        for top in _buckets(degrees):
            rows = np.flatnonzero((degrees > lo) & (degrees <= top))
            cells = np.full((len(rows), top), self.num_vns, dtype=np.int64)
            for r, row in enumerate(rows):
                cols = pcm.indices[pcm.indptr[row]:pcm.indptr[row + 1]]
                cells[r, :len(cols)] = cols
            index.append(cells.ravel())
            pad = np.flatnonzero(cells.ravel() == self.num_vns)
            pads.append(start + pad)
            self.register_buffer(f"_pad_cells_{len(shapes)}", torch.from_numpy(pad), persistent=False)
            shapes.append((start, len(rows), top))
            start += cells.size
            lo = top
        self._shapes = shapes
        self.register_buffer("_cell_vn", torch.from_numpy(np.concatenate(index)), persistent=False)
        self.register_buffer("_pad_cells", torch.from_numpy(np.concatenate(pads)), persistent=False)
        self.register_buffer("_out_int_inv", None if out_int_inv is None else
                             torch.as_tensor(np.asarray(out_int_inv), dtype=torch.int64), persistent=False)

    @property
    def num_cells(self) -> int:
        """Message cells per block (edges plus the padding of the degree buckets)."""
        return int(self._cell_vn.numel())

    # ---------------------------------------------------------------- rate recovery
    def _codeword_llr(self, llr: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n]`` -> LLRs ``ln P(0)/P(1)`` of the pruned mother codeword ``[B, num_vns]``.

        As Sionna's ``LDPC5GDecoder``: undo the bit interleaver, fill the circular buffer (zeros where
        not sent), put back the ``2 Z`` punctured systematic bits (LLR 0) and the filler bits (known 0,
        LLR ``+llr_max``), and clip to ``[-llr_max, llr_max]``.
        """
        if self._out_int_inv is not None:
            llr = llr.index_select(1, self._out_int_inv)
        buf = torch.nn.functional.pad(llr, (0, self._buf_len - self.n))
        b, n_sys = llr.shape[0], self.k - 2 * self.z
        full = torch.cat([
            llr.new_zeros(b, 2 * self.z), buf[:, :n_sys],
            llr.new_full((b, self.k_filler), -self.llr_max), buf[:, n_sys:],
        ], dim=1)
        # 0 - x, not -x: a punctured bit keeps LLR +0.0 (its sign counts as +, as in Sionna)
        return torch.sub(0.0, full.clamp(-self.llr_max, self.llr_max))

    # ---------------------------------------------------------------- BP
    def _check_update(self, q: torch.Tensor) -> torch.Tensor:
        """v2c messages ``[cells, B]`` (clipped) -> c2v messages ``[cells, B]`` (clipped, pads arbitrary)."""
        c = self.llr_max
        out = torch.empty_like(q)
        for bucket, (start, rows, deg) in enumerate(self._shapes):
            qb = q[start:start + rows * deg].view(rows, deg, -1)
            ob = out[start:start + rows * deg].view(rows, deg, -1)
            sign = qb.sign().add_(0.5).sign_()  # +1 for q >= 0 (0 counts as +, as in Sionna), else -1
            sign.mul_(sign.prod(dim=1, keepdim=True))  # sign of the product over the others
            mag = qb.abs()
            if self.cn_update == "minsum":
                min1, arg = mag.min(dim=1, keepdim=True)
                min2 = mag.scatter_(1, arg, float("inf")).amin(dim=1, keepdim=True)
                ext = torch.where(torch.arange(deg, device=q.device).view(1, deg, 1) == arg, min2, min1)
                if self.alpha != 1.0:
                    ext.mul_(self.alpha)
            else:
                _phi_(mag)
                pad = getattr(self, f"_pad_cells_{bucket}")
                if len(pad):  # padded cells contribute phi = 0 to the sum
                    mag.view(rows * deg, -1).index_fill_(0, pad, 0.0)
                ext = _phi_(mag.sum(dim=1, keepdim=True) - mag)
            torch.mul(ext, sign, out=ob)
        return out.clamp_(-c, c)

    def _parity_ok(self, app: torch.Tensor) -> torch.Tensor:
        """A-posteriori LLRs ``[num_vns + 1, B]`` -> ``[B]`` bool: the hard decisions satisfy every check."""
        hard = (app <= 0).to(torch.uint8).index_select(0, self._cell_vn)  # the dummy node decides 0
        ok = torch.ones(app.shape[1], dtype=torch.bool, device=app.device)
        for start, rows, deg in self._shapes:
            odd = hard[start:start + rows * deg].view(rows, deg, -1).sum(dim=1, dtype=torch.uint8) & 1
            ok &= odd.amax(dim=0) == 0
        return ok

    @torch.no_grad()
    def decode_codeword(self, llr_vn: torch.Tensor) -> torch.Tensor:
        """BP on LLRs ``[B, num_vns]`` (``ln P(0)/P(1)``) -> a-posteriori LLRs ``[B, num_vns]``.

        With ``early_stop``, a block leaves the iterations as soon as its hard decisions satisfy every
        parity check (they are then a codeword, which further iterations practically never leave).
        """
        c = self.llr_max
        b = llr_vn.shape[0]
        # batch innermost; one dummy variable node at the end for the padded cells
        chan = torch.cat([llr_vn.t(), llr_vn.new_full((1, b), c)], dim=0).contiguous()
        result = chan.clone()
        active = torch.arange(b, device=llr_vn.device)
        q = chan.index_select(0, self._cell_vn)
        for it in range(self.num_iter):
            r = self._check_update(q)
            r.index_fill_(0, self._pad_cells, 0.0)
            app = chan.index_add(0, self._cell_vn, r)  # the dummy node gets only zeros: stays +llr_max
            if it == self.num_iter - 1:
                result[:, active] = app
                break
            if self.early_stop:
                done = self._parity_ok(app)
                if bool(done.any()):
                    result[:, active[done]] = app[:, done]
                    keep = ~done
                    if not bool(keep.any()):
                        break
                    active, chan, app, r = active[keep], chan[:, keep], app[:, keep], r[:, keep]
            q = app.index_select(0, self._cell_vn).sub_(r).clamp_(-c, c)
        return result[:-1].t()

    @torch.no_grad()
    def forward(self, llr: torch.Tensor) -> torch.Tensor:
        shape = llr.shape
        if shape[-1] != self.n:
            raise ValueError(f"last dimension must be n = {self.n}, got {tuple(shape)}")
        flat = llr.reshape(-1, self.n).to(torch.float32)
        if flat.shape[0] == 0:
            return flat.new_zeros(*shape[:-1], self.k)
        llr_vn = self._codeword_llr(flat)
        # blocks in chunks of about ``cells_per_chunk`` messages, so that a message tensor stays in cache
        step = max(1, self.cells_per_chunk // self.num_cells)
        app = torch.cat([self.decode_codeword(llr_vn[i:i + step]) for i in range(0, len(llr_vn), step)])
        bits = (app[:, :self.k] <= 0).to(torch.float32)
        return bits.reshape(*shape[:-1], self.k)


def fast_tb_decoder(encoder: torch.nn.Module, num_bp_iter: int = 20, cn_update: FastCnUpdate = "boxplus-phi",
                    alpha: float = 1.0, early_stop: bool = True, device: str = "cpu") -> torch.nn.Module:
    """A Sionna ``TBDecoder`` for ``encoder`` whose LDPC decoding runs on :class:`FastLdpc5GDecoder`.

    Descrambling, code-block de-segmentation and both CRC checks stay Sionna's; only the inner
    ``LDPC5GDecoder`` (the ``_decoder`` attribute Sionna's ``TBDecoder`` calls on
    ``[B, num_tx, num_cbs, n]`` LLRs) is replaced. Same input and output as ``TBDecoder``:
    logits ``[B, N]`` -> (bits ``[B, TBS]`` float, TB CRC status ``[B]`` bool).
    """
    from sionna.phy.nr import TBDecoder

    tb = TBDecoder(encoder, num_bp_iter=num_bp_iter, cn_update=cn_update, device=device)
    inner = tb._decoder
    tb._decoder = FastLdpc5GDecoder(inner, num_iter=num_bp_iter, cn_update=cn_update, alpha=alpha,
                                    early_stop=early_stop).to(device)
    return tb
