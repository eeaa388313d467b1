"""Feature pages: card selection, activations, and the HTML opened and clicked in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saesim.report.feature_pages import build_card, render_pair_page, select_cards, token_windows
from saesim.analysis.ground_truth import encode_acts
from saesim.analysis.latent_stats import latent_stats

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
    items = [
        {"group": "best", "a": 0, "b": 1, "cos": 0.91, "corr": 0.5, "cofire": 0.2,
         "card_a": build_card(st, 0, context=ctx), "card_b": build_card(st, 1, context=ctx)},
        {"group": "spread", "a": 2, "b": 2, "cos": 0.52, "corr": float("nan"), "cofire": 0.0,
         "card_a": build_card(st, 2, context=ctx), "card_b": build_card(st, 2, context=ctx)},
        {"group": "unmatched A", "a": 1, "b": None, "cos": None, "corr": None, "cofire": None,
         "card_a": build_card(st, 1, context=ctx), "card_b": None},
    ]
    page = tmp_path / "page.html"
    page.write_text(render_pair_page("lm <test> & pair", {"rows": 128}, items))
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
