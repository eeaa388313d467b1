"""Reading sae-lens and sparsify checkpoints with safetensors only."""

import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from saesim.saes.loading import SAEWeights, decoder_rows, is_pretrained_id, load_sae_weights
from saesim.errors import SaesimError


def save_tensors(path, tensors):
    # safetensors.numpy writes the raw buffer: non-C-contiguous arrays would be scrambled
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path))


def make_sae_lens(folder, d_in=16, d_sae=48, seed=0, cfg_extra=None, **override):
    """A sae-lens inference folder: cfg.json + sae_weights.safetensors."""
    rng = np.random.default_rng(seed)
    t = {
        "W_enc": rng.standard_normal((d_in, d_sae)),
        "W_dec": rng.standard_normal((d_sae, d_in)),
        "b_enc": np.zeros(d_sae),
        "b_dec": rng.standard_normal(d_in),
    }
    t.update(override)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / "sae_weights.safetensors", {k: v for k, v in t.items() if v is not None})
    cfg = {"architecture": "standard", "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu"}
    cfg.update(cfg_extra or {})
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def make_sparsify(folder, d_in=16, expansion=4, seed=0, transpose_dec=False):
    """A sparsify folder: cfg.json + sae.safetensors (encoder.weight and W_dec are [num_latents, d_in])."""
    rng = np.random.default_rng(seed)
    n = d_in * expansion
    t = {
        "encoder.weight": rng.standard_normal((n, d_in)),
        "encoder.bias": np.zeros(n),
        "W_dec": rng.standard_normal((n, d_in)),
        "b_dec": np.zeros(d_in),
    }
    stored = dict(t)
    if transpose_dec:
        stored["W_dec"] = t["W_dec"].T
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / "sae.safetensors", stored)
    cfg = {"activation": "topk", "expansion_factor": expansion, "normalize_decoder": True,
           "num_latents": 0, "k": 8, "multi_topk": False, "skip_connection": False, "d_in": d_in}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for n in needles:
        assert str(n) in msg, (n, msg)
    return msg


# --------------------------------------------------------------------------


def test_sae_lens_folder(tmp_path):
    t = make_sae_lens(tmp_path / "sae")
    w = load_sae_weights(tmp_path / "sae")
    assert isinstance(w, SAEWeights) and w.format == "sae_lens"
    assert w.W_dec.dtype == np.float32 and w.W_dec.shape == (48, 16)
    assert w.W_enc.shape == (16, 48)
    np.testing.assert_allclose(w.W_dec, t["W_dec"], rtol=1e-6)
    np.testing.assert_allclose(w.W_enc, t["W_enc"], rtol=1e-6)
    np.testing.assert_allclose(w.b_dec, t["b_dec"], rtol=1e-6)
    assert w.cfg["d_sae"] == 48 and w.source == str(tmp_path / "sae")
    # the weights file itself names the same checkpoint
    np.testing.assert_array_equal(load_sae_weights(tmp_path / "sae" / "sae_weights.safetensors").W_dec, w.W_dec)
    np.testing.assert_array_equal(decoder_rows(tmp_path / "sae"), w.W_dec)
    assert load_sae_weights(tmp_path / "sae", with_encoder=False).W_enc is None


def test_sparsify_folder_orients_decoder_and_encoder(tmp_path):
    t = make_sparsify(tmp_path / "layers.3")
    w = load_sae_weights(tmp_path / "layers.3")
    assert w.format == "sparsify"
    assert w.W_dec.shape == (64, 16) and w.W_enc.shape == (16, 64)
    np.testing.assert_allclose(w.W_dec, t["W_dec"], rtol=1e-6)
    np.testing.assert_allclose(w.W_enc, t["encoder.weight"].T, rtol=1e-6)


def test_sparsify_decoder_stored_transposed_is_turned_round(tmp_path):
    t = make_sparsify(tmp_path / "s", transpose_dec=True)
    w = load_sae_weights(tmp_path / "s")
    assert w.W_dec.shape == (64, 16)
    np.testing.assert_allclose(w.W_dec, t["W_dec"], rtol=1e-6)


def test_bfloat16_weights_are_read_as_float32(tmp_path):
    import torch
    from safetensors.torch import save_file as save_pt

    folder = tmp_path / "bf16"
    folder.mkdir()
    W_dec = torch.randn(48, 16).to(torch.bfloat16)
    W_enc = torch.randn(16, 48).to(torch.bfloat16)
    save_pt({"W_dec": W_dec, "W_enc": W_enc}, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": 16, "d_sae": 48}))
    w = load_sae_weights(folder)
    assert w.W_dec.dtype == np.float32
    np.testing.assert_array_equal(w.W_dec, W_dec.float().numpy())
    np.testing.assert_array_equal(w.W_enc, W_enc.float().numpy())


def test_missing_path(tmp_path):
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "nope")
    one_line_error(e, tmp_path / "nope", "no such file")


def test_folder_without_cfg_is_not_an_sae(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "x")
    one_line_error(e, tmp_path / "x", "not an SAE folder")


def test_folder_with_cfg_but_no_weights(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "cfg.json").write_text("{}")
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "x")
    one_line_error(e, "sae_weights.safetensors", "not an SAE folder")


def test_other_file_is_not_an_sae(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"\0" * 100)
    with pytest.raises(SaesimError) as e:
        load_sae_weights(f)
    one_line_error(e, f, "not an SAE checkpoint")


def test_corrupt_safetensors(tmp_path):
    make_sae_lens(tmp_path / "s")
    (tmp_path / "s" / "sae_weights.safetensors").write_bytes(b"garbage that is not safetensors at all")
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "s")
    one_line_error(e, "sae_weights.safetensors", "not a safetensors file")


def test_bad_cfg_json(tmp_path):
    make_sae_lens(tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text("{not json")
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "s")
    one_line_error(e, "cfg.json", "not valid JSON")


def test_safetensors_without_decoder_is_not_an_sae(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    save_tensors(folder / "sae_weights.safetensors", {"embed": np.ones((4, 4))})
    (folder / "cfg.json").write_text("{}")
    with pytest.raises(SaesimError) as e:
        load_sae_weights(folder)
    one_line_error(e, "sae_weights.safetensors", "no W_dec", "not an SAE")


@pytest.mark.parametrize("tensor,value", [("W_dec", np.nan), ("W_enc", np.inf), ("W_dec", -np.inf)])
def test_non_finite_weights(tmp_path, tensor, value):
    t = make_sae_lens(tmp_path / "s")
    bad = t[tensor].copy()
    bad.flat[7] = value
    make_sae_lens(tmp_path / "s", **{tensor: bad})
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "s")
    one_line_error(e, "sae_weights.safetensors", tensor, "non-finite")


def test_shape_disagreeing_with_cfg(tmp_path):
    make_sae_lens(tmp_path / "s", cfg_extra={"d_sae": 100})
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "s")
    one_line_error(e, "sae_weights.safetensors", "W_dec has shape [48, 16]", "d_sae")


def test_sparsify_shape_fitting_neither_orientation(tmp_path):
    make_sparsify(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    cfg["expansion_factor"] = 8
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(SaesimError) as e:
        load_sae_weights(tmp_path / "s")
    one_line_error(e, "sae.safetensors", "W_dec", "fits neither")


def test_pretrained_id_detection(tmp_path):
    assert is_pretrained_id("gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical")
    assert not is_pretrained_id(str(tmp_path))
    assert not is_pretrained_id("/some/dir:with_colon")
    weird = tmp_path / "a:b"
    make_sae_lens(weird)
    assert not is_pretrained_id(str(weird))
    assert load_sae_weights(weird).W_dec.shape == (48, 16)


def test_reading_does_not_import_sae_lens(tmp_path):
    make_sae_lens(tmp_path / "s")
    code = (
        "import sys; from saesim.saes.loading import load_sae_weights; "
        f"w = load_sae_weights({str(tmp_path / 's')!r}); "
        "import saesim.similarity, saesim.cli; "
        "bad = [m for m in ('sae_lens', 'transformer_lens', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_fixture_format_matches_sae_lens(tmp_path):
    """A folder written by sae-lens itself reads back to the same weights (imports sae-lens: ~8 s)."""
    sae_lens = pytest.importorskip("sae_lens")
    import torch

    torch.manual_seed(0)
    sae = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=16, d_sae=48))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_()
    sae.save_model(str(tmp_path / "saved"))
    w = load_sae_weights(tmp_path / "saved")
    np.testing.assert_array_equal(w.W_dec, sae.W_dec.detach().numpy())
    np.testing.assert_array_equal(w.W_enc, sae.W_enc.detach().numpy())
    # and our fixtures load in sae-lens
    make_sae_lens(tmp_path / "ours")
    loaded = sae_lens.SAE.load_from_disk(str(tmp_path / "ours"))
    np.testing.assert_array_equal(loaded.W_dec.detach().numpy(), load_sae_weights(tmp_path / "ours").W_dec)


def test_all_zero_decoder_is_refused_naming_the_file(tmp_path):
    make_sae_lens(tmp_path / "lens", W_dec=np.zeros((48, 16)))
    with pytest.raises(SaesimError, match="W_dec is all zeros .*no direction") as info:
        load_sae_weights(tmp_path / "lens")
    assert str(info.value).startswith(str(tmp_path / "lens" / "sae_weights.safetensors"))
    make_sparsify(tmp_path / "sp")
    save_tensors(tmp_path / "sp" / "sae.safetensors", {"encoder.weight": np.ones((64, 16)), "W_dec": np.zeros((64, 16))})
    with pytest.raises(SaesimError, match="all zeros"):
        decoder_rows(tmp_path / "sp")


def test_some_zero_decoder_rows_are_loaded(tmp_path):
    """A few zero rows (pruned latents) load: they have |cos| 0 with everything (README)."""
    W = np.random.default_rng(0).standard_normal((48, 16))
    W[:5] = 0
    make_sae_lens(tmp_path / "lens", W_dec=W)
    assert np.count_nonzero(~load_sae_weights(tmp_path / "lens").W_dec.any(axis=1)) == 5


# --------------------------------------------------------------------------
# Encoders read lazily (what `saesim compare` uses)
# --------------------------------------------------------------------------


def _check_lazy_equals_eager(lazy, eager):
    """Every way similarity reads rows gives exactly the eager values, as C-contiguous float32."""
    from saesim.saes.loading import LazyTensor

    assert isinstance(lazy, LazyTensor) and lazy.shape == eager.shape
    rows, erows = lazy.T, eager.T  # encoder directions as rows, as similarity reads them
    assert rows.shape == erows.shape
    for sl in (slice(0, 7), slice(5, 40), slice(30, None), slice(0, rows.shape[0])):
        got = rows[sl]
        assert got.dtype == np.float32 and got.flags.c_contiguous == np.array(erows[sl]).flags.c_contiguous
        np.testing.assert_array_equal(got, erows[sl])
        np.testing.assert_array_equal(lazy[sl], eager[sl])  # the stored orientation too
    idx = np.array([3, 0, 47, 3, 12, -1])
    np.testing.assert_array_equal(rows[idx], erows[idx])
    np.testing.assert_array_equal(lazy[np.array([15, 2, 2])], eager[np.array([15, 2, 2])])
    np.testing.assert_array_equal(np.asarray(lazy), eager)
    with pytest.raises(IndexError):
        rows[np.array([rows.shape[0]])]


def test_lazy_encoder_reads_the_eager_values(tmp_path, monkeypatch):
    import saesim.saes.loading as C

    make_sae_lens(tmp_path / "sae")
    make_sparsify(tmp_path / "sp")
    monkeypatch.setattr(C, "_LAZY_BAND_BYTES", 200)  # several bands even for these small tensors
    for folder in ("sae", "sp"):
        eager = load_sae_weights(tmp_path / folder)
        lazy = load_sae_weights(tmp_path / folder, lazy_encoder=True)
        np.testing.assert_array_equal(lazy.W_dec, eager.W_dec)
        _check_lazy_equals_eager(lazy.W_enc, eager.W_enc)
    assert load_sae_weights(tmp_path / "sae", with_encoder=False, lazy_encoder=True).W_enc is None


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_lazy_encoder_converts_like_the_eager_reader(tmp_path, dtype):
    import torch
    from safetensors.torch import save_file as save_pt

    folder = tmp_path / dtype
    folder.mkdir()
    tdt = getattr(torch, dtype)
    save_pt({"W_dec": torch.randn(48, 16).to(tdt), "W_enc": torch.randn(16, 48).to(tdt)},
            str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": 16, "d_sae": 48}))
    _check_lazy_equals_eager(load_sae_weights(folder, lazy_encoder=True).W_enc, load_sae_weights(folder).W_enc)


@pytest.mark.parametrize("value,kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_lazy_encoder_refuses_non_finite_values_at_load(tmp_path, value, kind):
    t = make_sae_lens(tmp_path / "s")
    bad = t["W_enc"].copy()
    bad.flat[7] = bad.flat[20] = value
    make_sae_lens(tmp_path / "s", W_enc=bad)
    with pytest.raises(SaesimError) as lazy_e:
        load_sae_weights(tmp_path / "s", lazy_encoder=True)
    with pytest.raises(SaesimError) as eager_e:
        load_sae_weights(tmp_path / "s")
    assert one_line_error(lazy_e, "sae_weights.safetensors", "W_enc has 2 non-finite values", kind) == str(eager_e.value)


def test_lazy_encoder_of_a_file_cut_short_is_one_line_error(tmp_path):
    make_sae_lens(tmp_path / "s")
    w = load_sae_weights(tmp_path / "s", lazy_encoder=True)
    f = tmp_path / "s" / "sae_weights.safetensors"
    f.write_bytes(f.read_bytes()[: w.W_enc.offset + 100])  # changed after loading
    with pytest.raises(SaesimError) as e:
        w.W_enc.T[0:10]
    one_line_error(e, "sae_weights.safetensors", "W_enc", "file too short")
