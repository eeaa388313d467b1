"""Feature pages: card selection, activations, and the HTML opened and clicked in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saesim.report.feature_pages import (
    build_card, lens_entries, render_index, render_pair_page, select_cards, token_windows,
)
from saesim.analysis.fourier import frequency_spectrum
from saesim.analysis.ground_truth import encode_acts
from saesim.analysis.latent_stats import latent_stats
from saesim.analysis.logit_lens import logit_lens

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (.ci/setup-chromium.sh)")


def test_select_cards_known_answer():
    # 10 x 12 latents; A's latent i matched to B's 11 - i with |cos| 0.95 - 0.1 i (i < 10)
    rows = np.arange(10)
    cols = 11 - rows
    cos = 0.95 - 0.1 * rows
    freq_a = np.full(10, 0.1)
    freq_b = np.full(12, 0.1)
    freq_a[0] = 0.0  # the best pair's A latent never fired: not shown as "best"
    freq_b[[0, 1]] = [0.5, 0.2]  # B's latents 0 and 1 have no partner
    sel = select_cards(rows, cols, cos, 10, 12, freq_a, freq_b, n_best=2, n_spread=3, n_unmatched=2,
                       unmatched_below=0.3)
    best = [s for s in sel if s["group"] == "best"]
    assert [(s["a"], s["b"]) for s in best] == [(1, 10), (2, 9)]
    spread = [s for s in sel if s["group"] == "spread"]
    assert len(spread) == 3 and len({s["a"] for s in spread}) == 3
    assert all(cos[s["k"]] >= 0.3 for s in spread)
    # unmatched A: partner below 0.3 (i = 7, 8, 9), most frequent first, ties by id
    assert [s["a"] for s in sel if s["group"] == "unmatched A"] == [7, 8]
    assert [s["b"] for s in sel if s["group"] == "unmatched B"] == [0, 1]


def test_encode_acts_fires_like_encode_fires(rng):
    from saesim.analysis.ground_truth import encode_fires

    d, n = 8, 20
    base = {"W_enc": rng.standard_normal((d, n)).astype(np.float32), "b_enc": rng.standard_normal(n).astype(np.float32),
            "b_dec": rng.standard_normal(d).astype(np.float32), "W_dec": rng.standard_normal((n, d)).astype(np.float32),
            "threshold": np.full(n, 0.5, np.float32), "k": 3, "apply_b_dec_to_input": True,
            "rescale_acts_by_decoder_norm": False}
    x = rng.standard_normal((50, d)).astype(np.float32)
    for arch in ("standard", "jumprelu", "topk"):
        enc = {**base, "architecture": arch}
        acts = encode_acts(enc, x)
        np.testing.assert_array_equal(acts > 0, encode_fires(enc, x))
        assert (acts >= 0).all()
        # known values: a latent that fires carries its pre-activation (x - b_dec) W_enc + b_enc
        pre = (x - base["b_dec"]) @ base["W_enc"] + base["b_enc"]
        np.testing.assert_allclose(acts[acts > 0], pre[acts > 0], rtol=1e-6)
    assert ((encode_acts({**base, "architecture": "topk"}, x) > 0).sum(1) <= 3).all()


def test_logit_lens_known_answer(rng):
    """A decoder row whose normed image is unembedding column t ranks t first (and its negative last), with
    the logit the model would output: ||u_t||^2 / rms(d); a scaled row gives the same logits."""
    d_model, vocab = 64, 500
    W_U = rng.standard_normal((d_model, vocab)).astype(np.float32)
    w_norm = rng.uniform(0.5, 2.0, d_model).astype(np.float32)
    t = [17, 333]
    rows = np.stack([W_U[:, t[0]] / w_norm, -W_U[:, t[1]] / w_norm])
    top_ids, top_vals, bottom_ids, bottom_vals = logit_lens(rows, w_norm, W_U, 5)
    assert top_ids.shape == (2, 5) and top_ids[0, 0] == t[0] and bottom_ids[1, 0] == t[1]
    rms = np.sqrt((rows[0].astype(np.float64) ** 2).mean())
    np.testing.assert_allclose(top_vals[0, 0], (W_U[:, t[0]].astype(np.float64) ** 2).sum() / rms, rtol=1e-5)
    assert (np.diff(top_vals, axis=1) <= 0).all() and (np.diff(bottom_vals, axis=1) >= 0).all()
    # the same ranking as W_U^T (w_norm * d); every logit a dot product
    full = (rows[0] * w_norm) @ W_U / rms
    np.testing.assert_array_equal(top_ids[0], np.argsort(-full, kind="stable")[:5])
    np.testing.assert_allclose(logit_lens(7.5 * rows, w_norm, W_U, 5)[1], top_vals, rtol=1e-5)
    # without a norm weight the planted column itself ranks first; LayerNorm centring ignores an offset
    assert logit_lens(W_U[:, [42]].T, None, W_U, 1)[0][0, 0] == 42
    tied = np.zeros((2, 10), np.float32)
    tied[0, [7, 3, 5]] = 1.0  # three tokens tie: the two lowest ids, in order
    np.testing.assert_array_equal(logit_lens(np.array([[1.0, 0.0]]), None, tied, 2)[0], [[3, 5]])
    centred = W_U[:, [42]].T - W_U[:, [42]].T.mean()
    np.testing.assert_allclose(logit_lens(centred + 3.0, None, W_U, 3, center=True)[1],
                               logit_lens(centred, None, W_U, 3)[1], rtol=1e-4)
    entries = lens_entries(top_ids, top_vals, bottom_ids, bottom_vals, lambda i: f"tok{i}")
    assert entries[0]["top"][0] == {"token": "tok17", "id": 17, "value": float(top_vals[0, 0])}
    assert entries[1]["bottom"][0]["token"] == "tok333"


def test_frequency_spectrum_known_answer():
    p = 13
    a, b = np.divmod(np.arange(p * p), p)
    w = 2 * np.pi / p
    cols = np.stack([
        np.cos(w * 3 * (a + b)),  # all at frequency 3
        np.cos(w * 2 * a) + 0.5 * np.sin(w * 5 * b),  # 0.8 at 2, 0.2 at 5
        np.cos(w * 4 * a) * np.cos(w * 4 * b) + 2.0,  # a product: a + b and a - b, all at 4
        np.full(p * p, 1.5),  # constant: nothing
        np.cos(w * 1 * a) * np.cos(w * 6 * b),  # mixes two frequencies: in no bar
    ], axis=1)
    spec = frequency_spectrum(cols, p)
    assert spec.shape == (5, 6)
    expect = np.zeros((5, 6))
    expect[0, 2] = 1.0
    expect[1, [1, 4]] = [0.8, 0.2]
    expect[2, 3] = 1.0
    np.testing.assert_allclose(spec, expect, atol=1e-9)
    noise = frequency_spectrum(np.random.default_rng(0).standard_normal((p * p, 3)), p)
    assert ((noise > 0) & (noise < 0.3)).all() and (noise.sum(1) < 1).all()  # 8 of 168 components per k


def lm_page(tmp_path) -> Path:
    """A page with token contexts (as a language model's): latent 0 fires on 'cat', latent 1 on 'dog'."""
    words = ["the", " cat", " sat", " on", " a", " dog", " mat", "."]
    corpus = np.array([[i % 8 for i in range(j, j + 16)] for j in range(8)])
    ctx_ids = np.repeat(np.arange(8), 16)  # a store: each context's 16 tokens as consecutive rows
    tokens = corpus.reshape(-1)
    acts = np.zeros((128, 3), np.float32)
    acts[tokens == 1, 0] = np.linspace(1, 2, (tokens == 1).sum())
    acts[tokens == 5, 1] = 3.0
    acts[::7, 2] = 0.5
    st = latent_stats(acts, k=5, m=8)
    ctx = lambda rows: token_windows(rows, ctx_ids, tokens, lambda t: words[t], before=4, after=2)  # noqa: E731
    lens = {"top": [{"token": " cat", "id": 1, "value": 5.25}, {"token": " mat", "id": 6, "value": 4.0},
                    {"token": "\n a", "id": 4, "value": 1.0}],
            "bottom": [{"token": "<&>", "id": 9, "value": -3.5}, {"token": "  ", "id": 11, "value": -2.0}]}
    spectrum = {"power": [0.01, 0.7, 0.02, 0.0, 0.15, 0.03], "keys": [2, 5]}
    items = [
        {"group": "best", "a": 0, "b": 1, "cos": 0.91, "corr": 0.5, "cofire": 0.2,
         "card_a": build_card(st, 0, context=ctx, logit_lens=lens), "card_b": build_card(st, 1, context=ctx, spectrum=spectrum)},
        {"group": "spread", "a": 2, "b": 2, "cos": 0.52, "corr": float("nan"), "cofire": 0.0,
         "card_a": build_card(st, 2, context=ctx), "card_b": build_card(st, 2, context=ctx)},
        {"group": "unmatched A", "a": 1, "b": None, "cos": None, "corr": None, "cofire": None,
         "card_a": build_card(st, 1, context=ctx), "card_b": None},
    ]
    page = tmp_path / "page.html"
    page.write_text(render_pair_page("lm <test> & pair", {"rows": 128}, items, sides=("seed 0", "seed 1")))
    return page


def test_token_windows_stay_inside_the_context():
    ctx_ids = np.repeat([0, 1, 2], 5)
    tokens = np.arange(15)
    wins = token_windows(np.array([5, 9, 0]), ctx_ids, tokens, str, before=3, after=2)
    assert wins == [(["5", "6", "7"], 0), (["6", "7", "8", "9"], 3), (["0", "1", "2"], 0)]


def test_cards_hold_the_highlighted_token(tmp_path):
    text = lm_page(tmp_path).read_text()
    assert "<mark class='hl' title='activation 2.000'> cat</mark>" in text  # the top context of latent 0
    assert "<mark class='hl' title='activation 3.000'> dog</mark>" in text
    assert "lm &lt;test&gt; &amp; pair" in text and "<test>" not in text  # escaped
    assert "<span class='tok' title='logit 5.250 (token id 1)'> cat</span>" in text and "&lt;&amp;&gt;</span>" in text
    assert "title='logit 1.000 (token id 4)'>↵ a</span>" in text  # a line break shown
    assert "A (seed 0) latent 0" in text


def open_page(pw, tmp_path):
    ctx = pw.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return ctx, page, errors


def column(page, i):
    return page.evaluate(f"Array.from(document.querySelectorAll('#idx tbody tr'))"
                         f".filter(r => r.style.display !== 'none').map(r => r.cells[{i}].textContent)")


@needs_chromium
def test_lm_page_sorts_filters_and_highlights_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = lm_page(tmp_path)
    with sync_playwright() as pw:
        ctx, page, errors = open_page(pw, tmp_path)
        try:
            page.goto(page_path.as_uri())
            assert page.locator(".pair").count() == 3 and page.locator(".card").count() == 6
            assert page.locator(".card.empty").count() == 1
            assert page.locator("mark.hl").count() >= 10
            assert page.locator("svg.hist rect").count() > 0
            # logit lens on latent 0's card: promoted tokens in order, the suppressed one escaped
            lens = page.locator(".card[data-latent='0'] .lens.top .tok")
            assert [lens.nth(i).inner_text() for i in range(lens.count())] == [" cat", " mat", "↵ a"]
            assert page.locator(".lens.bottom .tok").all_inner_texts() == ["<&>", "␣␣"]
            # Fourier spectrum: one bar per frequency, the key frequencies 2 and 5 marked
            assert page.locator("svg.spectrum rect").count() == 6
            assert page.locator("svg.spectrum rect.key").count() == 2
            assert "frequency 2 (key): 70.0%" in page.locator("svg.spectrum rect.key").first.inner_html()
            cos_header = page.locator("#idx th", has_text="decoder |cos|")
            cos_header.click()  # ascending; missing values first
            assert column(page, 3) == ["–", "0.520", "0.910"]
            cos_header.click()  # descending
            assert column(page, 3) == ["0.910", "0.520", "–"]
            page.fill("#mincos", "0.6")
            page.dispatch_event("#mincos", "input")
            assert column(page, 3) == ["0.910"]
            assert page.locator("#pair1").is_hidden() and page.locator("#pair0").is_visible()
            page.fill("#mincos", "")
            page.select_option("#grp", "unmatched")
            assert column(page, 0) == ["unmatched A"]
            page.screenshot(path=tmp_path / "lm_page.png", full_page=True)
        finally:
            ctx.close()
    assert errors == []


@needs_chromium
def test_workflow_feature_pages_render_in_chromium(workflow_copy, tmp_path):
    """The tiny run's toy pages: index links to every variant's page, cards with ground truth, no errors."""
    from playwright.sync_api import sync_playwright

    index = workflow_copy / "results" / "toy" / "features" / "index.html"
    assert index.is_file()
    with sync_playwright() as pw:
        ctx, page, errors = open_page(pw, tmp_path)
        try:
            page.goto(index.as_uri())
            links = page.locator("#idx tbody a")
            assert links.count() == 3  # one seed pair per variant of the TINY config
            hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
            for href in hrefs:
                page.goto(index.as_uri())
                page.locator(f"#idx tbody a[href='{href}']").click()
                page.wait_for_selector(".card")
                assert page.locator(".pair").count() >= 3
                assert "ground truth: feature" in page.locator(".card").first.inner_text()
                assert page.locator("#idx tbody tr").count() == page.locator(".pair").count()
                page.locator("#idx th", has_text="freq A %").click()
            page.screenshot(path=tmp_path / "toy_page.png", full_page=True)
        finally:
            ctx.close()
    assert errors == []
    print(f"\nfeature page screenshots: {tmp_path}")


def test_default_config_pages_seed_pairs_and_suite_cells():
    """The full run's config: the suite cells of smollm2 (widths 1152 vs 2304, the k sweep) are pages of
    the smollm2 job, after its seed pairs; experiments without suites keep their seed pairs only.
    The default config keeps the widths cell only."""
    import copy

    import yaml

    from saesim.workflow.config import validate_config
    from saesim.workflow.planning import Plan

    root = Path(__file__).resolve().parents[1]
    schema = root / "workflow" / "schemas" / "config.schema.yaml"
    default = Plan(validate_config(yaml.safe_load((root / "config.yaml").read_text()), schema))
    assert [j["out"] for j in default.feature_page_jobs("smollm2") if j["section"] == "suite cells"] == [
        "results/smollm2/features/suites/smollm2-widths/topk-w1152-k64__topk-w2304-k64.html"]
    raw = yaml.safe_load((root / "config" / "presets" / "runs" / "full.yaml").read_text())
    plan = Plan(validate_config(copy.deepcopy(raw), schema))
    jobs = plan.feature_page_jobs("smollm2")
    suites = [j for j in jobs if j["section"] == "suite cells"]
    assert [j["section"] for j in jobs] == ["seed pairs"] * (len(jobs) - 7) + ["suite cells"] * 7
    assert [j["out"] for j in suites] == [
        "results/smollm2/features/suites/smollm2-widths/topk-w1152-k64__topk-w2304-k64.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k16__topk-w1152-k32.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k16__topk-w1152-k64.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k16__topk-w1152-k128.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k32__topk-w1152-k64.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k32__topk-w1152-k128.html",
        "results/smollm2/features/suites/smollm2-k/topk-w1152-k64__topk-w1152-k128.html",
    ]
    assert suites[0]["sae_a"] == "results/smollm2/saes/blocks.6.hook_out/topk-w1152-k64/seed0"
    assert suites[0]["sae_b"] == "results/smollm2/saes/blocks.6.hook_out/topk-w2304-k64/seed0"
    assert suites[0]["store"] == "results/smollm2/stores/blocks.6.hook_out.h5"
    assert all(j["section"] == "seed pairs" for j in plan.feature_page_jobs("modular"))
    assert set(plan.feature_page_files("smollm2")) >= {j["out"] for j in suites}
    raw["feature_pages"] = {"suites": False}
    off = Plan(validate_config(raw, root / "workflow" / "schemas" / "config.schema.yaml"))
    assert [j for j in off.feature_page_jobs("smollm2") if j["section"] == "suite cells"] == []
    assert plan.feature_page_options("smollm2")["logit_tokens"] == 8


def test_index_has_a_section_per_kind_of_pair():
    pages = [{"href": "a.html", "section": "seed pairs", "label": "h / v / seed0-seed1", "hungarian_mean_cos": 0.9, "n_cards": 3},
             {"href": "s/x__y.html", "section": "suite cells", "label": "s: x vs y", "hungarian_mean_cos": 0.5, "n_cards": 2},
             {"href": "b.html", "section": "seed pairs", "label": "h / w / seed0-seed1", "hungarian_mean_cos": 0.7, "n_cards": 3}]
    text = render_index("t", pages)
    assert text.index("<h2>seed pairs</h2>") < text.index("id='idx'") < text.index("<h2>suite cells</h2>") < text.index("id='idx2'")
    assert text.count("<tr data-card") == 3 and "href='s/x__y.html'" in text.split("id='idx2'")[1]


@needs_chromium
def test_workflow_suite_cell_pages_render_in_chromium(workflow_copy, tmp_path):
    """A suite of the tiny run's toy SAEs (k 2 vs k 4, seed 0): its cell gets a page in the toy job, listed in
    the index's own section, rendered with both members' cards and no console errors."""
    import shutil

    import yaml
    from conftest import snakemake
    from playwright.sync_api import sync_playwright

    work = tmp_path / "wf"
    shutil.copytree(workflow_copy, work, symlinks=True)
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["suites"] = {"tiny-k": {"experiment": "toy", "axis": "k", "members": ["topk-w12-k2", "topk-w12-k4"]}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    # the new page is an output of the toy job, which reruns (and rewrites the index) for it alone
    proc = snakemake(work, "results/toy/features/suites/tiny-k/topk-w12-k2__topk-w12-k4.html")
    assert "feature_pages_toy" in proc.stderr and "train_saes" not in proc.stderr
    index = work / "results" / "toy" / "features" / "index.html"
    with sync_playwright() as pw:
        ctx, page, errors = open_page(pw, tmp_path)
        try:
            page.goto(index.as_uri())
            assert page.locator("#idx tbody a").count() == 3  # the seed pairs, as before
            assert page.locator("h2", has_text="suite cells").count() == 1
            suite_links = page.locator("#idx2 tbody a")
            assert suite_links.count() == 1 and suite_links.first.inner_text() == "tiny-k: topk-w12-k2 vs topk-w12-k4"
            suite_links.first.click()
            page.wait_for_selector(".card")
            assert page.locator(".pair").count() >= 3
            assert page.locator("#idx tbody tr").count() == page.locator(".pair").count()
            heads = page.locator(".card h2").all_inner_texts()
            assert any(h.startswith("A (topk-w12-k2) latent") for h in heads)
            assert any(h.startswith("B (topk-w12-k4) latent") for h in heads)
            assert "ground truth: feature" in page.locator(".card").first.inner_text()
            assert "suite tiny-k (k): topk-w12-k2 vs topk-w12-k4, seed 0" in page.title()
            page.screenshot(path=tmp_path / "suite_page.png", full_page=True)
        finally:
            ctx.close()
    assert errors == []
