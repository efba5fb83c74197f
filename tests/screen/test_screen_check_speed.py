"""The speed work on the screening checks (docs/adr/0077-screening-check-speed.md) moves no result.

Each test runs the check as it is and, in the same process, with the code it replaced (kept here as the
reference), on seeded frames with planted outliers, NaNs, infinities, nulls, a missing column and batches of
unequal sizes; the reports must be equal to the last bit.
"""

from __future__ import annotations

import heapq
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dataward.screen import _outliers, near_duplicates
from dataward.screen._util import as_float, encoded
from dataward.screen.api import check_table, create_baseline


def _old_outliers_update(self: Any, batch: pa.RecordBatch, offset: int) -> None:
    """``OutliersCheck.update`` before the speed work: a row-major matrix, a Python loop over the candidates."""
    if self._skip:
        return
    if self._cols is None:
        self._cols = self._choose(batch)
        if len(self._cols) < 2:
            self._skip = "fewer than two numeric columns"
            return
        self._fit(batch)
        if self._skip:
            return
    z = np.empty((batch.num_rows, len(self._cols)), dtype=np.float32)
    shift = self._center + self._loc * self._scale
    with np.errstate(invalid="ignore", over="ignore"):
        for j, c in enumerate(self._cols):
            col = as_float(batch.column(c)) if c in batch.schema.names else np.full(batch.num_rows, np.nan)
            z[:, j] = (col - shift[j]) / self._scale[j]
    if not np.isfinite(z).all():
        np.nan_to_num(z, copy=False, nan=0.0, posinf=1e6, neginf=-1e6)
    d2 = ((z @ self._prec32) * z).sum(axis=1, dtype=np.float64)
    self._hist += np.bincount(np.searchsorted(self._score_edges, d2, side="right"), minlength=22)[1:21]
    out = np.flatnonzero(d2 > self._threshold)
    self._count += out.size
    for i in out[np.argsort(-d2[out])][:2000].tolist():
        item = (float(d2[i]), offset + i, int(np.argmax(np.abs(z[i]))))
        if len(self._heap) < 2000:
            heapq.heappush(self._heap, item)
        elif item[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)


def frame(n: int, seed: int, *, dirty: bool, dims: int = 6) -> pa.Table:
    """Normal floats with a planted far cluster and scattered outliers; ``dirty`` adds NaN, inf and nulls."""
    r = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"x{i}": r.normal(i, 1 + i / 4, n) for i in range(dims)}
    cols["k"] = r.poisson(12, n).astype(np.int64)
    idx = r.permutation(n)
    cols["x1"][idx[: n // 100]] = 30 + r.normal(0, 0.01, n // 100)
    cols["x2"][idx[n // 100 : n // 50]] *= 25
    cols["label"] = np.where(r.random(n) < 0.5, "a", "b").astype(object)
    table = pa.table(cols)
    if dirty:
        x3 = cols["x3"].copy()
        x3[r.random(n) < 0.01] = np.nan
        x3[r.random(n) < 0.001] = np.inf
        x3[r.random(n) < 0.001] = -np.inf
        x3[:3] = 1e300  # overflows float32
        table = table.set_column(3, "x3", pa.array(x3, mask=r.random(n) < 0.01))
    return table


def _batches(table: pa.Table, sizes: list[int]) -> pa.Table:
    out, start = [], 0
    for size in sizes:
        out.extend(table.slice(start, size).to_batches())
        start += size
    out.extend(table.slice(start).to_batches())
    return pa.Table.from_batches(out)


def _report(table: pa.Table, baseline: Any, checks: list[str]) -> str:
    rep = check_table(table, baseline=baseline, checks=checks)
    return json.dumps([{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in rep.results], sort_keys=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("dirty", [False, True])
@pytest.mark.parametrize("with_baseline", [False, True])
def test_outliers_are_the_same_as_before(
    monkeypatch: pytest.MonkeyPatch, seed: int, dirty: bool, with_baseline: bool
) -> None:
    ref = frame(30_000, seed, dirty=dirty)
    batch = _batches(frame(90_000, seed + 50, dirty=dirty), [40_000, 1, 17_000])
    if dirty:
        batch = batch.drop(["x5"])  # a column of the baseline missing from the batch
    baseline = create_baseline(ref, label="label") if with_baseline else None
    new = _report(batch, baseline, ["outliers"])
    monkeypatch.setattr(_outliers.OutliersCheck, "update", _old_outliers_update)
    old = _report(batch, baseline, ["outliers"])
    assert new == old
    assert '"multivariate_outliers"' in new  # the planted cluster is found: the comparison is not of two empties


def test_the_heap_keeps_the_2000_farthest_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """More candidates than the heap holds, in several batches: the early stop must not change what is kept."""
    table = frame(60_000, 9, dirty=False)
    x = table.column("x0").to_numpy().copy()
    x[::7] = np.random.default_rng(4).normal(0, 40, x[::7].size)  # ~8,500 far records
    table = _batches(table.set_column(0, "x0", pa.array(x)), [15_000, 15_000, 15_000])
    baseline = create_baseline(frame(20_000, 10, dirty=False), label="label")
    new = _report(table, baseline, ["outliers"])
    monkeypatch.setattr(_outliers.OutliersCheck, "update", _old_outliers_update)
    assert new == _report(table, baseline, ["outliers"])


def _old_column_hash(arr: pa.Array) -> np.ndarray:
    """``near_duplicates.column_hash`` before the speed work (a new array at each step)."""
    n = len(arr)
    typ = arr.type
    if pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_temporal(typ):
        vals = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False)
        out = np.asarray(vals, dtype=np.int64).view(np.uint64) * near_duplicates._PRIME + np.uint64(1)
    elif pa.types.is_floating(typ):
        vals = np.asarray(pc.fill_null(pc.cast(arr, pa.float64(), safe=False), 0.0).to_numpy(zero_copy_only=False))
        vals = vals + 0.0
        nan = np.isnan(vals)
        if nan.any():
            vals[nan] = np.nan
        out = vals.astype(np.float64).view(np.uint64) * near_duplicates._PRIME + np.uint64(2)
    else:
        enc = encoded(arr)
        hashes = near_duplicates._str_hashes(enc.dictionary.to_pylist())
        out = hashes[np.maximum(enc.indices, 0)] if hashes.size else np.zeros(n, dtype=np.uint64)
    if arr.null_count:
        nulls = np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=bool)
        out = np.where(nulls, near_duplicates._NULL, out)
    return np.asarray(out, dtype=np.uint64)


def _old_mix_into(h: np.ndarray, c: np.ndarray) -> None:
    h[:] = near_duplicates.mix(h, c)


def _duplicated(n: int, seed: int) -> pa.Table:
    """Floats (with -0.0, NaN of two payloads and nulls), integers with nulls, booleans, strings; 3 % exact
    copies of one record and 1 % copies that differ only in the label."""
    r = np.random.default_rng(seed)
    x = np.round(r.normal(0, 1, n), 1)
    x[r.random(n) < 0.01] = -0.0
    x[r.random(n) < 0.01] = np.nan
    x[:5] = np.frombuffer(np.array([0x7FF8000000000001] * 5, dtype=np.uint64).tobytes(), dtype=np.float64)
    k = r.integers(0, 20, n)
    cols = {
        "x": pa.array(x, mask=r.random(n) < 0.005),
        "k": pa.array(k, mask=r.random(n) < 0.005),
        "flag": pa.array(r.random(n) < 0.5),
        "s": pa.array(r.choice(["p", "q", "r"], n).tolist(), mask=r.random(n) < 0.005),
        "label": pa.array(np.where(r.random(n) < 0.5, "a", "b").tolist()),
    }
    table = pa.table(cols)
    copies = np.zeros(n, dtype=np.int64)
    flood = r.permutation(n)[: 3 * n // 100]
    rows = np.arange(n)
    rows[flood] = copies[flood]
    conflict = r.permutation(n)[: n // 100]
    rows[conflict] = 1
    out = table.take(pa.array(rows))
    label = np.asarray(out.column("label").to_pylist(), dtype=object)
    label[conflict[::2]] = "b"
    label[conflict[1::2]] = "a"
    return out.set_column(4, "label", pa.array(label.tolist()))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("labelled", [False, True])
def test_duplicates_are_the_same_as_before(monkeypatch: pytest.MonkeyPatch, seed: int, labelled: bool) -> None:
    table = _batches(_duplicated(60_000, seed), [25_000, 3, 10_000])
    if not labelled:
        table = table.drop(["label"])
    baseline = create_baseline(_duplicated(5_000, seed + 10), label="label" if labelled else None)
    new = _report(table, baseline, ["duplicates"])
    for name in table.column_names:
        col = table.column(name).chunk(0)
        assert np.array_equal(near_duplicates.column_hash(col), _old_column_hash(col)), name
    monkeypatch.setattr(near_duplicates, "column_hash", _old_column_hash)
    monkeypatch.setattr(near_duplicates, "mix_into", _old_mix_into)
    assert new == _report(table, baseline, ["duplicates"])
    assert '"exact_duplicates_flood"' in new  # the planted flood is found


def _old_clusters(keys: np.ndarray) -> list[np.ndarray]:
    """The clusters as they were found before the bucket pre-filter: a sort of every key."""
    if keys.size < 2:
        return []
    s = np.sort(keys)
    repeated = np.unique(s[1:][s[1:] == s[:-1]])
    if repeated.size == 0:
        return []
    slot = np.minimum(np.searchsorted(repeated, keys), repeated.size - 1)
    pos = np.flatnonzero(repeated[slot] == keys)
    order = pos[np.argsort(keys[pos], kind="stable")]
    sk = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sk[1:] != sk[:-1]]))
    sizes = np.diff(np.concatenate([starts, [sk.size]]))
    groups = [order[starts[i] : starts[i] + sizes[i]] for i in np.flatnonzero(sizes >= 2)]
    groups.sort(key=lambda g: -g.size)
    return groups


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n", [3, 1000, 65_535, 65_536, 300_000])
@pytest.mark.parametrize("shape", ["hashes", "floods", "few", "top_bits_equal"])
def test_clusters_are_the_ones_a_full_sort_gives(seed: int, n: int, shape: str) -> None:
    r = np.random.default_rng(seed)
    keys = r.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    if shape == "floods":  # copies of a few keys over the batch, and the extreme values
        keys[r.integers(0, n, n // 50 + 1)] = keys[0]
        keys[r.integers(0, n, n // 500 + 1)] = keys[1]
        keys[: min(n, 2)] = np.uint64(2**64 - 1)
    elif shape == "few":
        keys = r.integers(0, 50, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    elif shape == "top_bits_equal":  # every key in one bucket: nothing is filtered out
        keys = r.integers(0, 1 << 16, n).astype(np.uint64)
    got, want = near_duplicates._clusters(keys), _old_clusters(keys)
    assert len(got) == len(want)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    if shape != "hashes" and n >= 1000:
        assert want  # the planted repeats are there


# --- string columns read as Parquet dictionaries hand their encoding over ----------------------------------


def _strings(n: int, seed: int, k: int = 7) -> pa.Array:
    r = np.random.default_rng(seed)
    values = np.array([f"v{i}" for i in range(k)], dtype=object)[r.integers(0, k, n)]
    return pa.array(values.tolist(), mask=r.random(n) < 0.05)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_seeded_encoding_is_the_one_hashing_gives(seed: int) -> None:
    plain = _strings(5000, seed)
    r = np.random.default_rng(seed)
    # a dictionary in another order, with entries the batch does not use
    values = pa.array([f"v{i}" for i in r.permutation(9)])
    lookup = {v: i for i, v in enumerate(values.to_pylist())}
    codes = pa.array([None if v is None else lookup[v] for v in plain.to_pylist()], type=pa.int32())
    dictionary = pa.DictionaryArray.from_arrays(codes, values)
    fresh = pa.array(plain.to_pylist())  # other buffers: hashed, not seeded
    assert encoded_seeded(plain, dictionary)
    got, want = encoded(plain), encoded(fresh)
    assert got.dictionary.equals(want.dictionary)
    assert np.array_equal(got.indices, want.indices) and np.array_equal(got.counts, want.counts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_dictionary_in_first_occurrence_order_hands_its_codes_over(seed: int) -> None:
    # a Parquet column chunk's dictionary: every entry used, in the order of first occurrence, no null
    plain = pc.drop_null(_strings(5000, seed))
    dictionary = plain.dictionary_encode()
    assert encoded_seeded(plain, dictionary)
    got, want = encoded(plain), encoded(pa.array(plain.to_pylist()))
    assert got.indices.dtype == np.int32  # the codes themselves, not a converted copy
    assert got.dictionary.equals(want.dictionary)
    assert np.array_equal(got.indices, want.indices) and np.array_equal(got.counts, want.counts)
    assert np.array_equal(got.gather(np.arange(len(got.dictionary)) * 10, -1), want.indices * 10)


def test_a_dictionary_with_repeats_or_nulls_is_not_used() -> None:
    plain = pa.array(["a", "b", "a", None] * 50)
    repeated = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 2, None] * 50, type=pa.int32()), pa.array(["a", "b", "a"])
    )
    with_null = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 2] * 50, type=pa.int32()), pa.array(["a", "b", None]))
    assert not encoded_seeded(plain, repeated)
    assert not encoded_seeded(plain, with_null)


def encoded_seeded(plain: pa.Array, dictionary: pa.DictionaryArray) -> bool:
    from dataward.screen._util import seed_encoded

    return seed_encoded(plain, dictionary)


@pytest.mark.parametrize(
    ("row_group", "page_limit"),
    [(1000, None), (2000, None), (700, None), (3000, 64)],  # 64-byte dictionary pages fall back to plain ones
)
def test_a_parquet_read_with_dictionaries_gives_the_plain_batches(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, row_group: int, page_limit: int | None
) -> None:
    from dataward.records import readers

    monkeypatch.setattr(readers, "BATCH_ROWS", 1000)
    n = 7_500
    table = pa.table({"s": _strings(n, 4), "t": _strings(n, 5, k=300), "x": np.arange(n, dtype=np.float64)})
    path = tmp_path / "f.parquet"
    kwargs = {"dictionary_pagesize_limit": page_limit} if page_limit else {}
    pq.write_table(table, path, row_group_size=row_group, **kwargs)
    pairs: list[tuple[pa.Array, pa.DictionaryArray]] = []
    plain = list(readers.read(str(path)))
    via = list(readers.read(str(path), on_dictionary=lambda a, d: pairs.append((a, d))))
    assert [b.num_rows for b in via] == [b.num_rows for b in plain]
    assert all(a.equals(b) and a.schema.equals(b.schema) for a, b in zip(via, plain, strict=True))
    if row_group % 1000 == 0:
        assert pairs and all(a.equals(d.cast(a.type)) for a, d in pairs)
    else:
        assert not pairs  # row groups that do not end on a batch: read as before


def test_rebatching_cuts_where_a_plain_read_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataward.records import readers

    monkeypatch.setattr(readers, "BATCH_ROWS", 100)
    table = pa.table({"s": _strings(1234, 6), "x": np.arange(1234)})
    sizes, start, parts = [100, 37, 63, 250, 100, 1, 99, 584], 0, []
    for size in sizes:
        parts.append(table.slice(start, size).to_batches()[0])
        start += size
    out = list(readers._rebatch(iter(parts)))
    assert [b.num_rows for b in out] == [100] * 12 + [34]
    assert pa.Table.from_batches(out).equals(table)
    assert out[0] is parts[0]  # a batch of the full size passes through untouched (its seeded encoding holds)


# --- the row sample: a full sample only looks at the batch rows that can enter it --------------------------


def _old_update_sample(self: Any, batch: pa.RecordBatch, offset: int) -> None:
    """The row sample as it was drawn before: a partition of every batch's priorities."""
    from dataward.screen.baseline import kind_of

    n, k = batch.num_rows, self.profile.sample_size
    if n == 0 or k <= 0:
        return
    prio = np.random.default_rng([*self._seed, offset]).random(n)
    take = np.argpartition(prio, k)[:k] if n > k else np.arange(n)
    numeric = [
        name
        for name in batch.schema.names
        if kind_of(batch.column(name).type) in ("numeric", "integer")
        and self.profile.columns[name].kind in ("numeric", "integer")
    ]
    idx = pa.array(take)
    new_vals = {
        name: np.asarray(
            pc.fill_null(pc.cast(pc.take(batch.column(name), idx), pa.float64(), safe=False), np.nan).to_numpy(),
            dtype=np.float64,
        )
        for name in numeric
    }
    all_prio = np.concatenate([self._prio, prio[take]])
    keep = np.argsort(all_prio, kind="stable")[:k]
    old_n = self._prio.size
    for name in set(self._sample) | set(new_vals):
        old = self._sample.get(name, np.full(old_n, np.nan))
        new = new_vals.get(name, np.full(take.size, np.nan))
        self._sample[name] = np.concatenate([old, new])[keep]
    self._prio = all_prio[keep]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("sizes", "sample_size"), [([5000, 5000, 5000], 1000), ([700, 3, 40, 9000], 800), ([], 50)])
def test_the_row_sample_is_the_one_a_partition_of_every_batch_gives(
    monkeypatch: pytest.MonkeyPatch, seed: int, sizes: list[int], sample_size: int
) -> None:
    from dataward.screen.baseline import ProfileBuilder

    r = np.random.default_rng(seed)
    n = 20_000
    table = _batches(
        pa.table(
            {
                "x": pa.array(r.normal(0, 1, n), mask=r.random(n) < 0.01),
                "k": pa.array(r.integers(0, 50, n)),
                "s": pa.array(r.choice(["p", "q"], n).tolist()),
            }
        ),
        sizes,
    )
    new = create_baseline(table, sample_size=sample_size, seed=seed)
    monkeypatch.setattr(ProfileBuilder, "_update_sample", _old_update_sample)
    old = create_baseline(table, sample_size=sample_size, seed=seed)
    assert len(new.profile.sample["x"]) == sample_size
    assert json.dumps(new.profile.to_dict()) == json.dumps(old.profile.to_dict())  # the same bits
