"""The faiss IVF-Flat reader: same neighbours and distances as faiss on files faiss writes
(faiss is a test dependency only), id -1 masked in the blend, truncated files refused."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")

from engines.voice.faiss_index import IndexFileError, blend_features, read_index  # noqa: E402


def _write(path, data, nlist, nprobe):
    """An index as RVC's train_index.py builds it: index_factory("IVF{n},Flat"), nprobe set, trained, added."""
    index = faiss.index_factory(data.shape[1], f"IVF{nlist},Flat")
    index.train(data)
    faiss.extract_index_ivf(index).nprobe = nprobe
    index.add(data)
    faiss.write_index(index, str(path))
    return index


@pytest.mark.parametrize("d,n,nlist,nprobe", [(768, 2000, 40, 1), (256, 1500, 20, 3)])
def test_same_neighbours_as_faiss(tmp_path, d, n, nlist, nprobe):
    rng = np.random.default_rng(d)
    data = rng.standard_normal((n, d)).astype(np.float32)
    index = _write(tmp_path / "added.index", data, nlist, nprobe)
    queries = (data[rng.integers(0, n, 200)] + 0.3 * rng.standard_normal((200, d))).astype(np.float32)
    ref_d, ref_i = index.search(queries, 8)

    ours = read_index(tmp_path / "added.index")
    assert (ours.d, ours.nprobe, ours.nlist, ours.ntotal) == (d, nprobe, nlist, n)
    np.testing.assert_array_equal(ours.vectors[np.argsort(ours.ids)], index.reconstruct_n(0, n))
    dist, ids, rows = ours.to_torch().search(torch.from_numpy(queries), 8)
    np.testing.assert_array_equal(ids.numpy(), ref_i)
    found = ref_i >= 0
    np.testing.assert_allclose(dist.numpy()[found], ref_d[found], rtol=1e-4, atol=1e-3)
    assert np.array_equal(ours.ids[rows.numpy()][found], ref_i[found])


def test_missing_neighbours_are_id_minus_one_and_weigh_nothing(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.standard_normal((60, 16)).astype(np.float32)
    index = _write(tmp_path / "small.index", data, 12, 1)  # ~5 vectors per list: fewer than k = 8
    queries = rng.standard_normal((40, 16)).astype(np.float32)
    ref_d, ref_i = index.search(queries, 8)
    assert (ref_i == -1).any()
    t = read_index(tmp_path / "small.index").to_torch()
    dist, ids, rows = t.search(torch.from_numpy(queries), 8)
    np.testing.assert_array_equal(ids.numpy(), ref_i)
    assert torch.isinf(dist[ids < 0]).all() and (rows[ids < 0] == -1).all()

    # RVC's blend over the neighbours that exist: weights 1 / d^2, normalised
    blended = blend_features(torch.from_numpy(queries), t, rate=1.0).numpy()
    recon = index.reconstruct_n(0, index.ntotal)
    for q in range(len(queries)):
        ok = ref_i[q] >= 0
        w = 1.0 / ref_d[q, ok].astype(np.float64) ** 2
        expect = (recon[ref_i[q, ok]] * (w / w.sum())[:, None]).sum(0)
        np.testing.assert_allclose(blended[q], expect, rtol=1e-3, atol=1e-4)
    half = blend_features(torch.from_numpy(queries), t, rate=0.25).numpy()
    np.testing.assert_allclose(half, 0.25 * blended + 0.75 * queries, rtol=1e-5, atol=1e-5)
    assert torch.equal(blend_features(torch.from_numpy(queries), t, rate=0.0), torch.from_numpy(queries))
    with pytest.raises(IndexFileError, match="holds 16-d features but this voice uses 8-d"):
        blend_features(torch.zeros(3, 8), t, rate=0.5)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((300, 32)).astype(np.float32)
    _write(tmp_path / "ok.index", data, 8, 1)
    raw = (tmp_path / "ok.index").read_bytes()
    for cut in (2, 30, 70, 200, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.index").write_bytes(raw[:cut])
        with pytest.raises(IndexFileError, match="truncated"):
            read_index(tmp_path / "cut.index")
    (tmp_path / "long.index").write_bytes(raw + b"\0" * 8)
    with pytest.raises(IndexFileError, match="unexpected bytes"):
        read_index(tmp_path / "long.index")
    flat = faiss.IndexFlatL2(32)
    flat.add(data)
    faiss.write_index(flat, str(tmp_path / "flat.index"))
    with pytest.raises(IndexFileError, match="only 'IVF…,Flat' indexes are supported"):
        read_index(tmp_path / "flat.index")
    ip = faiss.index_factory(32, "IVF8,Flat", faiss.METRIC_INNER_PRODUCT)
    ip.train(data)
    ip.add(data)
    faiss.write_index(ip, str(tmp_path / "ip.index"))
    with pytest.raises(IndexFileError, match="RVC indexes use L2"):
        read_index(tmp_path / "ip.index")
    with pytest.raises(IndexFileError, match="does not exist|can't be read"):
        read_index(tmp_path / "missing.index")
