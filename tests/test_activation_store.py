import errno
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from saesim.stores.activation_store import STORE_FORMAT, StoreWriter, iter_shuffled_batches, open_store
from saesim.errors import SaesimError
from saesim.sources.synthetic import write_synthetic_store


def make_store(path, n=1000, d=8, with_tokens=False, dtype="float32", chunk_rows=128):
    x = np.arange(n * d, dtype=np.float32).reshape(n, d) / (n * d)
    with StoreWriter(path, d, dtype=dtype, chunk_rows=chunk_rows, with_tokens=with_tokens, attrs={"model": "m", "hook": "h"}) as w:
        for s in range(0, n, 300):
            e = min(s + 300, n)
            if with_tokens:
                w.append(x[s:e], token_ids=np.arange(s, e), positions=np.arange(s, e) % 16, context_ids=np.arange(s, e) // 16)
            else:
                w.append(x[s:e])
    return x


def test_roundtrip_schema_and_hash(tmp_path):
    p = tmp_path / "s.h5"
    x = make_store(p, with_tokens=True)
    with open_store(p) as s:
        assert s.n_rows == 1000 and s.d == 8
        np.testing.assert_array_equal(s.read_rows(0, 1000), x)
        np.testing.assert_array_equal(s.row_array("positions"), np.arange(1000) % 16)
        a = s.attrs
        assert a["format"] == STORE_FORMAT and a["model"] == "m" and a["hook"] == "h" and a["n_rows"] == 1000
        assert "torch" in a["producer"] or "numpy" in a["producer"]
        h1 = s.content_hash
    p2 = tmp_path / "s2.h5"
    make_store(p2, with_tokens=True)
    with open_store(p2) as s:
        assert s.content_hash == h1  # same content, same hash
    assert not list(tmp_path.glob("*.partial-*"))


def test_float16_store(tmp_path):
    p = tmp_path / "s.h5"
    x = make_store(p, dtype="float16")
    with open_store(p) as s:
        assert s.activations.dtype == np.float16
        np.testing.assert_allclose(s.read_rows(0, 10), x[:10], atol=1e-3)


def test_failed_writer_leaves_nothing(tmp_path):
    p = tmp_path / "s.h5"
    with pytest.raises(RuntimeError):
        with StoreWriter(p, 4) as w:
            w.append(np.ones((10, 4)))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def _fail_on_call(n, exc):
    """A stand-in that raises ``exc`` from its ``n``-th call on (1-based) and passes through before."""
    calls = []

    def wrap(original):
        def fn(*args, **kwargs):
            calls.append(1)
            if len(calls) >= n:
                raise exc
            return original(*args, **kwargs)

        return fn

    return wrap


@pytest.mark.parametrize(
    "target, exc",
    [
        # a plain OSError from a dataset write, as h5py raises for a direct chunk write
        ("Dataset.__setitem__", OSError(errno.ENOSPC, "No space left on device")),
        # h5py's wrapped HDF5 error from the final flush: a RuntimeError with errno = 28 in its text
        ("File.flush", RuntimeError("Unable to flush file's cached information (file write failed: time = x, "
                                    "filename = 'f', file descriptor = 3, errno = 28, error message = "
                                    "'No space left on device', buf = 0x0, total write size = 4096)")),
    ],
)
def test_disk_full_while_writing_removes_the_partial_store(tmp_path, monkeypatch, target, exc):
    cls_name, method = target.split(".")
    cls = getattr(h5py, cls_name)
    monkeypatch.setattr(cls, method, _fail_on_call(3 if method == "__setitem__" else 1, exc)(getattr(cls, method)))
    p = tmp_path / "s.h5"
    with pytest.raises(SaesimError) as info:
        make_store(p, n=3000, with_tokens=True)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{p}: disk is full"), msg
    assert list(tmp_path.iterdir()) == []  # no partial file, no store


def test_store_writer_stops_before_the_disk_is_full(tmp_path, monkeypatch):
    """HDF5 crashes the process when it closes a file after a failed write (seen on a full
    tmpfs: SIGSEGV), so the writer checks the free space before each write."""
    real = os.statvfs
    calls = []

    def statvfs(path):
        st = real(path)
        calls.append(path)
        free_blocks = st.f_bavail if len(calls) < 3 else (2 << 20) // st.f_frsize  # 2 MiB left after 2 writes
        return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, free_blocks, free_blocks, *tuple(st)[5:]))

    monkeypatch.setattr(os, "statvfs", statvfs)
    p = tmp_path / "s.h5"
    with pytest.raises(SaesimError, match=r"disk is full .*MiB free") as info:
        make_store(p, n=3000, d=1024, chunk_rows=256)  # 1 MiB chunks: 2 MiB free is not enough
    assert str(info.value).startswith(f"{p}: ")
    assert len(calls) == 3 and list(tmp_path.iterdir()) == []


def test_sigkill_mid_write_leaves_no_store_a_reader_accepts(tmp_path):
    p = tmp_path / "s.h5"
    code = textwrap.dedent(
        f"""
        import numpy as np, time
        from saesim.stores.activation_store import StoreWriter
        with StoreWriter({str(p)!r}, 4) as w:
            w.append(np.ones((10, 4)))
            print("written", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not p.exists()
    partial = list(tmp_path.glob("s.h5.partial-*"))
    assert len(partial) == 1
    with pytest.raises(SaesimError, match="not an HDF5|not a saesim activation store|incomplete"):
        open_store(partial[0])


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(SaesimError, match="does not exist"):
        open_store(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(SaesimError, match=r"junk\.h5: not an HDF5"):
        open_store(junk)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones(3)
    with pytest.raises(SaesimError, match=r"other\.h5: not a saesim activation store"):
        open_store(other)


def test_nan_rows_are_refused_with_file_and_row(tmp_path):
    p = tmp_path / "s.h5"
    make_store(p)
    with h5py.File(p, "a") as f:
        f["activations"][500, 3] = np.nan
    with open_store(p) as s:
        with pytest.raises(SaesimError, match=r"s\.h5: non-finite activation .* row 500"):
            list(s.iter_chunks(128))
    with pytest.raises(SaesimError, match="non-finite"):
        with StoreWriter(tmp_path / "w.h5", 2) as w:
            w.append(np.array([[1.0, np.inf]]))
    assert not (tmp_path / "w.h5").exists()


def test_shuffled_batches_are_seeded_complete_and_bounded(tmp_path):
    p = tmp_path / "s.h5"
    x = make_store(p, n=1024, d=4)
    with open_store(p) as s:
        it = iter_shuffled_batches(s, 64, seed=1, chunk_rows=128, buffer_chunks=2)
        epoch = np.concatenate([next(it) for _ in range(16)])
        # one epoch visits every row exactly once
        np.testing.assert_array_equal(np.sort(epoch[:, 0]), np.sort(x[:, 0]))
        assert not np.array_equal(epoch[:, 0], x[:, 0])
        again = iter_shuffled_batches(s, 64, seed=1, chunk_rows=128, buffer_chunks=2)
        np.testing.assert_array_equal(np.concatenate([next(again) for _ in range(16)]), epoch)
        other = iter_shuffled_batches(s, 64, seed=2, chunk_rows=128, buffer_chunks=2)
        assert not np.array_equal(np.concatenate([next(other) for _ in range(16)]), epoch)
        mask = np.zeros(1024, dtype=bool)
        mask[::2] = True
        masked = iter_shuffled_batches(s, 64, seed=1, chunk_rows=128, row_mask=mask)
        rows = np.concatenate([next(masked) for _ in range(8)])
        np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(x[::2, 0]))


def test_toy_store_keeps_ground_truth(tmp_path):
    p = tmp_path / "toy.h5"
    model = {"num_features": 10, "hidden_dim": 20, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.1}, "seed": 0}
    summary = write_synthetic_store(p, model, 5000, chunk_rows=1000, progress=False)
    with open_store(p) as s:
        gt = s.group("ground_truth")
        assert gt["features"].shape == (10, 20)
        assert s.attrs["true_l0"] == pytest.approx(summary["true_l0"])
        assert s.attrs["model"] == "toy"


def test_verify_store_recomputes_the_content_hash(tmp_path):
    from saesim.stores.activation_store import verify_store

    toy = tmp_path / "toy.h5"
    write_synthetic_store(toy, {"num_features": 10, "hidden_dim": 20, "seed": 0}, 5000, chunk_rows=1000, progress=False)
    tokens = tmp_path / "tokens.h5"
    make_store(tokens, with_tokens=True, dtype="float16")
    for p in (toy, tokens):
        with open_store(p) as s:
            assert verify_store(p) == s.content_hash
    # one changed byte anywhere (activations, token metadata, ground truth) is caught, naming the file
    for p, name, index in ((toy, "activations", (7, 3)), (tokens, "positions", 5), (toy, "ground_truth/features", (0, 0))):
        with h5py.File(p, "r+") as f:
            original = f[name][index]
            f[name][index] = original + 1
        with pytest.raises(SaesimError, match="content hash mismatch") as info:
            verify_store(p)
        assert str(info.value).startswith(f"{p}: ") and "\n" not in str(info.value)
        with h5py.File(p, "r+") as f:
            f[name][index] = original
        verify_store(p)


def test_nan_ground_truth_is_refused_naming_the_store(tmp_path):
    p = tmp_path / "toy.h5"
    write_synthetic_store(p, {"num_features": 10, "hidden_dim": 20, "seed": 0}, 2000, chunk_rows=1000, progress=False)
    with h5py.File(p, "r+") as f:
        f["ground_truth/features"][3, 4] = np.nan
    with open_store(p) as s:  # the rows are fine; reading the ground truth is refused
        with pytest.raises(SaesimError, match="ground_truth/features holds 1 NaN/inf") as info:
            s.group("ground_truth")
    assert str(info.value).startswith(f"{p}: ")
    with pytest.raises(SaesimError, match="ground_truth/features holds NaN/inf"):
        with StoreWriter(tmp_path / "w.h5", 4) as w:
            w.append(np.ones((3, 4)))
            w.add_group("ground_truth", {"features": np.array([[np.nan, 0, 0, 1.0]])})
    assert not list(tmp_path.glob("w.h5*"))
