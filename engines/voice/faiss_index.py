"""A reader for faiss ``IVF…,Flat`` index files and an exact IVF search in torch.

RVC ships each voice with a feature index written by ``faiss.write_index`` of an
``index_factory(d, "IVF{n},Flat")`` index (``train/train_index.py``): the voice's training
content features (256-d for v1, 768-d for v2), in inverted lists around ``n`` k-means
centroids. At conversion time RVC looks up the 8 nearest training features of each frame
and blends them in (:func:`blend_features`, ``index_rate``). This module reads that file
with numpy and searches it in torch the way faiss's ``IndexIVFFlat.search`` does (probe
the ``nprobe`` nearest centroids, scan their lists, keep the ``k`` smallest squared L2
distances), so faiss is not needed at run time.

File layout read here (faiss ``impl/index_write.cpp``, little-endian)::

    "IwFl"                                   IndexIVFFlat
      int32 d; int64 ntotal; int64 dummy x2; uint8 is_trained; int32 metric
      [float32 metric_arg if metric > 1]
      uint64 nlist; uint64 nprobe
      quantizer: "IxF2" | "IxFI" | "IxFl" + the same header + uint64 n, float32[n] centroids
      direct map: uint8 type; uint64 n, int64[n]; [uint64 m, (int64, int64)[m] if type == 2]
      inverted lists: "ilar", uint64 nlist, uint64 code_size,
        "full" + uint64 n, uint64[nlist] sizes   or   "sprs" + uint64 n, uint64[n] (list, size) pairs
        then for each non-empty list: float32[size * d] codes, int64[size] ids

Only the L2 metric is accepted (RVC's). Truncated files, other index types and
inconsistent sizes raise :class:`IndexFileError` with a plain message.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.base.errors import InvalidJob, register_error_type

__all__ = ["IndexFileError", "IvfFlatIndex", "read_index", "blend_features"]

METRIC_INNER_PRODUCT = 0
METRIC_L2 = 1


@register_error_type
class IndexFileError(InvalidJob):
    """A voice's ``.index`` file can't be used (truncated, not ``IVF…,Flat``, wrong metric)."""

    default_hint = "use the 'added_IVF…_Flat….index' file that RVC wrote for this voice, or convert without an index"


class _Reader:
    def __init__(self, data: bytes, name: str):
        self.data, self.pos, self.name = data, 0, name

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise IndexFileError(f"the index file '{self.name}' is truncated: it ends at byte {len(self.data)} "
                                 f"while reading {what} (needs {self.pos + n} bytes)")
        view = memoryview(self.data)[self.pos: self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def fourcc(self, what: str) -> bytes:
        return bytes(self.take(4, what))

    def array(self, dtype: Any, count: int, what: str) -> np.ndarray:
        dt = np.dtype(dtype).newbyteorder("<")
        if count < 0 or count > 1 << 40:
            raise IndexFileError(f"the index file '{self.name}' is corrupt: {what} claims {count} entries")
        return np.frombuffer(self.take(count * dt.itemsize, what), dtype=dt, count=count)

    def vector(self, dtype: Any, what: str) -> np.ndarray:
        (n,) = self.unpack("Q", f"the length of {what}")
        return self.array(dtype, n, what)


def _header(r: _Reader) -> tuple[int, int, bool, int]:
    d, ntotal, _, _ = r.unpack("iqqq", "the index header")
    (trained,) = r.unpack("B", "the index header")
    (metric,) = r.unpack("i", "the index header")
    if metric > 1:
        r.unpack("f", "the metric argument")
    return d, ntotal, bool(trained), metric


@dataclass
class IvfFlatIndex:
    """An ``IVF…,Flat`` index in memory.

    Attributes:
        d: vector size (256 or 768 for RVC).
        nprobe: lists probed per query, as stored in the file (RVC writes 1).
        centroids: ``(nlist, d)`` float32 coarse centroids.
        vectors: ``(ntotal, d)`` float32 stored vectors, list after list.
        ids: ``(ntotal,)`` int64 ids of ``vectors`` (0..ntotal-1 for RVC's indexes).
        offsets: ``(nlist + 1,)`` int64: list ``l`` holds rows ``offsets[l]:offsets[l+1]``.
        metric: 1 = L2.
    """

    d: int
    nprobe: int
    centroids: np.ndarray
    vectors: np.ndarray
    ids: np.ndarray
    offsets: np.ndarray
    metric: int = METRIC_L2

    @property
    def nlist(self) -> int:
        """Number of inverted lists (coarse centroids)."""
        return int(self.centroids.shape[0])

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return int(self.vectors.shape[0])

    def to_torch(self, device: str = "cpu") -> "TorchIvf":
        """The index as torch tensors on ``device`` (float32), ready for :meth:`TorchIvf.search`."""
        return TorchIvf(self, device)


def read_index(path: str | os.PathLike) -> IvfFlatIndex:
    """Read a faiss ``IVF…,Flat`` index file (as RVC writes it) with numpy.

    Args:
        path: the ``.index`` file.

    Returns:
        :class:`IvfFlatIndex`.

    Raises:
        IndexFileError: missing or truncated file, another index type (not ``IwFl``),
            a metric other than L2, or sizes that don't add up.
    """
    path = Path(path)
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexFileError(f"the index file '{path}' can't be read ({exc.strerror or exc})") from exc
    r = _Reader(data, name)
    kind = r.fourcc("the index type")
    if kind != b"IwFl":
        what = {b"IvFl": "an old-format IVF index", b"IxMp": "an ID-mapped index", b"IxPT": "a pre-transformed index",
                b"IwPQ": "an IVF-PQ index", b"IxF2": "a flat index", b"IxFI": "a flat index"}.get(kind)
        raise IndexFileError(f"the index file '{name}' is {what or 'not a faiss IVF-Flat index'} "
                             f"(type {kind!r}); only 'IVF…,Flat' indexes are supported")
    d, ntotal, trained, metric = _header(r)
    if metric != METRIC_L2:
        raise IndexFileError(f"the index file '{name}' uses metric {metric}; RVC indexes use L2 (1)")
    if d <= 0 or ntotal < 0:
        raise IndexFileError(f"the index file '{name}' is corrupt (d = {d}, ntotal = {ntotal})")
    nlist, nprobe = r.unpack("QQ", "the IVF header")
    qkind = r.fourcc("the quantizer type")
    if qkind not in (b"IxF2", b"IxFI", b"IxFl"):
        raise IndexFileError(f"the index file '{name}' has an unsupported coarse quantizer {qkind!r}")
    qd, qn, _, _ = _header(r)
    centroids = r.vector(np.float32, "the centroids")
    if qd != d or qn != nlist or centroids.size != nlist * d:
        raise IndexFileError(f"the index file '{name}' is corrupt: {qn} centroids of size {qd} for {nlist} lists "
                             f"of size {d}")
    (dm_type,) = r.unpack("B", "the direct map")
    r.vector(np.int64, "the direct map")
    if dm_type == 2:
        (m,) = r.unpack("Q", "the direct map hashtable")
        r.array(np.int64, 2 * m, "the direct map hashtable")
    if r.fourcc("the inverted lists") != b"ilar":
        raise IndexFileError(f"the index file '{name}' stores its lists in an unsupported way (not 'ilar')")
    il_n, code_size = r.unpack("QQ", "the inverted lists header")
    if il_n != nlist or code_size != 4 * d:
        raise IndexFileError(f"the index file '{name}' is corrupt: {il_n} lists of {code_size}-byte codes, "
                             f"expected {nlist} of {4 * d}")
    list_type = r.fourcc("the inverted lists layout")
    sizes = np.zeros(nlist, np.int64)
    if list_type == b"full":
        s = r.vector(np.uint64, "the list sizes")
        if s.size != nlist:
            raise IndexFileError(f"the index file '{name}' is corrupt: {s.size} list sizes for {nlist} lists")
        sizes[:] = s.astype(np.int64)
    elif list_type == b"sprs":
        pairs = r.vector(np.uint64, "the list sizes").astype(np.int64)
        if pairs.size % 2 or (pairs.size and pairs[0::2].max() >= nlist):
            raise IndexFileError(f"the index file '{name}' is corrupt: bad sparse list sizes")
        sizes[pairs[0::2]] = pairs[1::2]
    else:
        raise IndexFileError(f"the index file '{name}' has an unknown list layout {list_type!r}")
    if int(sizes.sum()) != ntotal:
        raise IndexFileError(f"the index file '{name}' is corrupt: its lists hold {int(sizes.sum())} vectors "
                             f"but the header says {ntotal}")
    vectors = np.empty((ntotal, d), np.float32)
    ids = np.empty(ntotal, np.int64)
    offsets = np.zeros(nlist + 1, np.int64)
    offsets[1:] = np.cumsum(sizes)
    for lst in np.flatnonzero(sizes):
        a, b = offsets[lst], offsets[lst + 1]
        vectors[a:b] = r.array(np.float32, int(b - a) * d, f"list {lst}").reshape(-1, d)
        ids[a:b] = r.array(np.int64, int(b - a), f"the ids of list {lst}")
    if r.pos != len(data):
        raise IndexFileError(f"the index file '{name}' has {len(data) - r.pos} unexpected bytes after its lists")
    return IvfFlatIndex(d=int(d), nprobe=max(1, int(nprobe)), centroids=centroids.reshape(nlist, d).copy(),
                        vectors=vectors, ids=ids, offsets=offsets, metric=metric)


class TorchIvf:
    """An :class:`IvfFlatIndex` on a torch device, with faiss's IVF-Flat search."""

    def __init__(self, index: IvfFlatIndex, device: str = "cpu"):
        import torch

        self.d, self.nprobe, self.nlist = index.d, index.nprobe, index.nlist
        self.centroids = torch.from_numpy(index.centroids).to(device)
        self.vectors = torch.from_numpy(index.vectors).to(device)
        self.ids = torch.from_numpy(index.ids).to(device)
        self.offsets = index.offsets.tolist()
        self._c_norm = (self.centroids ** 2).sum(1)
        self._v_norm = (self.vectors ** 2).sum(1)

    def search(self, queries: Any, k: int = 8, nprobe: int | None = None) -> tuple[Any, Any, Any]:
        """Nearest stored vectors by squared L2 distance, probing ``nprobe`` lists.

        Args:
            queries: ``(n, d)`` float tensor (any float dtype; searched in float32).
            k: neighbours per query.
            nprobe: lists to probe; None = the file's value.

        Returns:
            ``(distances (n, k) float32, ids (n, k) int64, rows (n, k) int64)``, sorted by
            distance. Where the probed lists hold fewer than ``k`` vectors the rest are
            id ``-1``, row ``-1`` and distance ``inf`` (faiss gives -1 too). ``rows`` index
            :attr:`vectors`.
        """
        import torch

        q = queries.to(self.vectors.device, torch.float32)
        n = q.shape[0]
        nprobe = max(1, min(int(nprobe or self.nprobe), self.nlist))
        q_norm = (q ** 2).sum(1)
        coarse = q_norm[:, None] - 2 * q @ self.centroids.T + self._c_norm[None, :]
        probe = torch.topk(coarse, nprobe, dim=1, largest=False).indices  # (n, nprobe)
        cand_d = torch.full((n, nprobe * k), float("inf"), device=q.device)
        cand_r = torch.full((n, nprobe * k), -1, dtype=torch.long, device=q.device)
        for p in range(nprobe):
            lists = probe[:, p]
            for lst in torch.unique(lists).tolist():
                a, b = self.offsets[lst], self.offsets[lst + 1]
                if b <= a:
                    continue
                qi = torch.nonzero(lists == lst).squeeze(1)
                dist = q_norm[qi, None] - 2 * q[qi] @ self.vectors[a:b].T + self._v_norm[None, a:b]
                kk = min(k, b - a)
                top = torch.topk(dist, kk, dim=1, largest=False)
                cand_d[qi, p * k: p * k + kk] = top.values.clamp_min(0)
                cand_r[qi, p * k: p * k + kk] = top.indices + a
        order = torch.topk(cand_d, min(k, cand_d.shape[1]), dim=1, largest=False)
        dist = order.values
        rows = torch.gather(cand_r, 1, order.indices)
        ids = torch.where(rows >= 0, self.ids[rows.clamp_min(0)], torch.full_like(rows, -1))
        return dist, ids, rows


def blend_features(feats: Any, index: TorchIvf, rate: float, k: int = 8) -> Any:
    """RVC's retrieval blend: each frame moves toward its ``k`` nearest training features.

    ``out = rate * sum_i(w_i * v_i) + (1 - rate) * feats`` with ``w_i ∝ 1 / d_i²`` (``d_i``
    the squared L2 distance faiss reports, as RVC's ``np.square(1 / score)``), normalised
    over the neighbours found; missing neighbours (id -1) weigh 0, and a frame with none
    keeps its features.

    Args:
        feats: ``(frames, d)`` content features (torch).
        index: a :class:`TorchIvf` of the same ``d``.
        rate: ``index_rate`` in [0, 1]; 0 returns ``feats`` unchanged.

    Returns:
        ``(frames, d)`` tensor of ``feats``' dtype and device.

    Raises:
        IndexFileError: the index's vector size differs from the features'.
    """
    import torch

    if rate <= 0 or feats.shape[0] == 0:
        return feats
    if feats.shape[1] != index.d:
        raise IndexFileError(f"the index holds {index.d}-d features but this voice uses {feats.shape[1]}-d "
                             "features (is it the index of another voice?)")
    dist, _, rows = index.search(feats, k)
    valid = rows >= 0
    w = torch.where(valid, 1.0 / dist.clamp_min(1e-12).double() ** 2, torch.zeros_like(dist, dtype=torch.float64))
    total = w.sum(1, keepdim=True)
    has = total[:, 0] > 0
    w = torch.where(has[:, None], w / total.clamp_min(1e-300), w).float()
    neigh = index.vectors[rows.clamp_min(0)]  # (frames, k, d)
    retrieved = (neigh * w[:, :, None]).sum(1).to(feats.device, feats.dtype)
    retrieved = torch.where(has.to(feats.device)[:, None], retrieved, feats)
    return rate * retrieved + (1 - rate) * feats
