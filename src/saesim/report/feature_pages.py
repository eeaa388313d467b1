"""Feature cards: matched latents of two SAEs side by side, as static self-contained HTML.

For a pair of SAEs over rows of one store (two seeds of one variant, or two members of a suite):

* the SAEs' activations come from :func:`saesim.analysis.ground_truth.encode_acts` (sae-lens semantics
  for standard, JumpReLU and TopK SAEs, without importing sae-lens);
* :func:`pair_pass`: one pass over the rows gathering
  :class:`~saesim.analysis.latent_stats.LatentStats` of both SAEs and, for every matched
  pair of the one-to-one decoder matching, the Pearson correlation of the two
  activations and their co-firing (Jaccard: rows where both fire / rows where
  either fires);
* :func:`select_cards`: which pairs get cards: the best-matched, a sample spread
  evenly over the matched |cos| range, and the most frequent unmatched latents
  of each side (no partner, or a partner below ``unmatched_below``);
* :func:`render_pair_page` / :func:`render_index`: the HTML (inline CSS and
  JavaScript, no server, no network): a sortable, filterable table of the
  selected pairs and a card per latent; a card draws a modular latent's Fourier
  spectrum (:func:`saesim.analysis.fourier.frequency_spectrum`) as an SVG bar
  chart and a language-model latent's logit-lens tokens
  (:func:`saesim.analysis.logit_lens.logit_lens`) when the caller gives them.

Memory: the pass holds both SAEs' running statistics (see
:mod:`saesim.analysis.latent_stats`) and ``6 * n_matched`` float64 sums; a chunk adds both
SAEs' dense activations (``chunk_rows * (n_a + n_b) * 4`` bytes).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from saesim.analysis.latent_stats import HIST_EDGES, LatentStats, LatentStatsAccumulator

__all__ = ["PairPass", "pair_pass", "select_cards", "render_pair_page", "render_index"]


@dataclass
class PairPass:
    """What :func:`pair_pass` gathered: both SAEs' statistics and, per matched pair k
    (``rows[k]`` of A with ``cols[k]`` of B), ``corr[k]`` and ``cofire[k]`` (NaN where undefined)."""

    a: LatentStats
    b: LatentStats
    rows: np.ndarray
    cols: np.ndarray
    corr: np.ndarray
    cofire: np.ndarray


def pair_pass(encode_a: Callable[[np.ndarray], np.ndarray], encode_b: Callable[[np.ndarray], np.ndarray],
              chunks: Iterable[tuple[int, np.ndarray]], n_a: int, n_b: int, rows: np.ndarray, cols: np.ndarray,
              *, k: int = 16, m: int = 32, seed: int = 0) -> PairPass:
    """One pass over ``chunks`` (``(row0, block)``): statistics of A and B and of their matched pairs."""
    acc_a = LatentStatsAccumulator(n_a, k=k, m=m, seed=seed)
    acc_b = LatentStatsAccumulator(n_b, k=k, m=m, seed=seed + 1)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    s = {name: np.zeros(len(rows)) for name in ("x", "y", "xx", "yy", "xy", "both", "either")}
    n = 0
    for row0, block in chunks:
        xa, xb = encode_a(block), encode_b(block)
        acc_a.update(xa, row0)
        acc_b.update(xb, row0)
        x, y = xa[:, rows].astype(np.float64), xb[:, cols].astype(np.float64)
        s["x"] += x.sum(0)
        s["y"] += y.sum(0)
        s["xx"] += (x * x).sum(0)
        s["yy"] += (y * y).sum(0)
        s["xy"] += (x * y).sum(0)
        s["both"] += ((x > 0) & (y > 0)).sum(0)
        s["either"] += ((x > 0) | (y > 0)).sum(0)
        n += len(block)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = s["xy"] / max(n, 1) - (s["x"] / max(n, 1)) * (s["y"] / max(n, 1))
        var_x = s["xx"] / max(n, 1) - (s["x"] / max(n, 1)) ** 2
        var_y = s["yy"] / max(n, 1) - (s["y"] / max(n, 1)) ** 2
        corr = np.where((var_x > 1e-12) & (var_y > 1e-12), cov / np.sqrt(var_x * var_y), np.nan)
        cofire = np.where(s["either"] > 0, s["both"] / s["either"], np.nan)
    return PairPass(acc_a.result(), acc_b.result(), rows, cols, np.clip(corr, -1, 1), cofire)


def select_cards(rows: np.ndarray, cols: np.ndarray, cos: np.ndarray, n_a: int, n_b: int,
                 freq_a: np.ndarray, freq_b: np.ndarray, *, n_best: int = 6, n_spread: int = 6,
                 n_unmatched: int = 3, unmatched_below: float = 0.3) -> list[dict[str, Any]]:
    """The pairs to show: ``{"group", "a", "b", "k"}`` (``k``: index into the matching; None for unmatched).

    ``best``: the highest-|cos| matched pairs where both latents fired; ``spread``:
    matched pairs nearest evenly spaced |cos| levels between ``unmatched_below``
    and the best (what 0.5, 0.7, 0.9 look like); ``unmatched A``/``unmatched B``:
    the most frequent latents of each side with no partner at |cos| >= ``unmatched_below``.
    Deterministic (ties by latent id).
    """
    rows, cols, cos = np.asarray(rows), np.asarray(cols), np.asarray(cos, dtype=np.float64)
    alive = (freq_a[rows] > 0) & (freq_b[cols] > 0)
    matched = np.flatnonzero(alive & (cos >= unmatched_below))
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for k in matched[np.lexsort((rows[matched], -cos[matched]))][:n_best]:
        out.append({"group": "best", "a": int(rows[k]), "b": int(cols[k]), "k": int(k)})
        used.add(int(k))
    rest = np.array([k for k in matched if int(k) not in used], dtype=np.int64)
    if rest.size and n_spread > 0:
        levels = np.linspace(unmatched_below, cos[rest].max(), n_spread)
        for lv in levels:
            if not rest.size:
                break
            j = int(np.lexsort((rows[rest], np.abs(cos[rest] - lv)))[0])
            k = int(rest[j])
            out.append({"group": "spread", "a": int(rows[k]), "b": int(cols[k]), "k": k})
            rest = np.delete(rest, j)
    for side, n, freq, mine in (("a", n_a, freq_a, rows), ("b", n_b, freq_b, cols)):
        good = np.zeros(n, dtype=bool)
        good[mine[cos >= unmatched_below]] = True
        cand = np.flatnonzero(~good & (freq > 0))
        for lat in cand[np.lexsort((cand, -freq[cand]))][:n_unmatched]:
            out.append({"group": f"unmatched {side.upper()}", "a": int(lat) if side == "a" else None,
                        "b": int(lat) if side == "b" else None, "k": None})
    return out


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:1500px}
h1{font-size:1.3em}h2{font-size:1.05em;margin:.2em 0}
table.idx{border-collapse:collapse;font-size:.85em}table.idx th,table.idx td{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.idx th{cursor:pointer;background:#eef}table.idx td.l{text-align:left}
.controls{margin:.6em 0}.controls input,.controls select{margin-right:1em}
.pair{border:1px solid #bbb;border-radius:6px;margin:1em 0;padding:.5em}
.pair .head{font-size:.9em;margin-bottom:.4em}.cards{display:flex;gap:1em}
.card{flex:1;border:1px solid #ddd;border-radius:4px;padding:.5em;min-width:0;background:#fcfcfc}
.card.empty{background:#f3f3f3;color:#888}
.ctx{font-family:ui-monospace,monospace;font-size:.8em;white-space:pre-wrap;margin:2px 0;border-bottom:1px dotted #eee}
mark.hl{background:#f6a623;color:#000;padding:0 1px;border-radius:2px}
.val{color:#666;font-size:.8em}.meta{font-size:.82em;color:#444}
svg.hist rect{fill:#4C72B0}
svg.spectrum rect{fill:#9aa5b8}svg.spectrum rect.key{fill:#d1495b}
.lens{font-size:.8em;margin:2px 0}.lens .tok{font-family:ui-monospace,monospace;white-space:pre;background:#eef3fb;border-radius:2px;padding:0 2px;margin-right:3px}
.lens.bottom .tok{background:#fbeeee}
"""

_JS = """
(function(){
  const tables=Array.from(document.querySelectorAll('table.idx')); if(!tables.length) return;
  tables.forEach(table=>{const body=table.tBodies[0];
  table.querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{
    const asc=th.dataset.dir!=='asc'; table.querySelectorAll('th').forEach(t=>delete t.dataset.dir);
    th.dataset.dir=asc?'asc':'desc';
    const num=th.dataset.type==='num';
    const rows=Array.from(body.rows);
    rows.sort((r1,r2)=>{let a=r1.cells[i].dataset.v??r1.cells[i].textContent, b=r2.cells[i].dataset.v??r2.cells[i].textContent;
      if(num){a=parseFloat(a);b=parseFloat(b);a=isNaN(a)?-Infinity:a;b=isNaN(b)?-Infinity:b;return asc?a-b:b-a;}
      return asc?a.localeCompare(b):b.localeCompare(a);});
    rows.forEach(r=>body.appendChild(r));
  }));});
  const q=document.getElementById('q'), g=document.getElementById('grp'), mc=document.getElementById('mincos');
  function filter(){const t=q.value.toLowerCase(), gv=g.value, m=parseFloat(mc.value);
    tables.flatMap(tb=>Array.from(tb.tBodies[0].rows)).forEach(r=>{const c=parseFloat(r.dataset.cos);
      const ok=(!t||r.textContent.toLowerCase().includes(t))&&(!gv||r.dataset.group.startsWith(gv))&&(isNaN(m)||(!isNaN(c)&&c>=m));
      r.style.display=ok?'':'none';
      const card=document.getElementById(r.dataset.card); if(card) card.style.display=ok?'':'none';});}
  [q,g,mc].forEach(e=>e.addEventListener('input',filter));
})();
"""


def _f(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}"


def _hist_svg(hist: np.ndarray, width: int = 240, height: int = 50) -> str:
    nz = np.flatnonzero(hist)
    if not nz.size:
        return "<div class='meta'>never fired</div>"
    lo, hi = int(nz[0]), int(nz[-1]) + 1
    h = hist[lo:hi].astype(float)
    bw = width / len(h)
    bars = "".join(f"<rect x='{i * bw:.1f}' y='{height - height * v / h.max():.1f}' width='{max(bw - 1, 1):.1f}' "
                   f"height='{height * v / h.max():.1f}'><title>{int(v)} rows in [{HIST_EDGES[lo + i]:.3g}, "
                   f"{HIST_EDGES[lo + i + 1]:.3g})</title></rect>" for i, v in enumerate(h))
    return (f"<svg class='hist' width='{width}' height='{height}' role='img'>{bars}</svg>"
            f"<div class='meta'>activation histogram (log bins) {HIST_EDGES[lo]:.3g} – {HIST_EDGES[hi]:.3g}</div>")


def _spectrum_svg(spectrum: dict[str, Any], width: int = 240, height: int = 50) -> str:
    """Bars of the fraction of activation variance per frequency 1..(p-1)/2, key frequencies in red."""
    power = np.asarray(spectrum["power"], dtype=float)
    keys = {int(k) for k in spectrum.get("keys", [])}
    if not power.size or power.max() <= 0:
        return "<div class='meta'>Fourier spectrum: constant activation</div>"
    bw = width / len(power)
    top = power.max()
    bars = "".join(
        f"<rect class='{'key' if k in keys else 'other'}' x='{i * bw:.1f}' y='{height - height * v / top:.1f}' "
        f"width='{max(bw - 0.5, 0.5):.1f}' height='{height * v / top:.1f}'><title>frequency {k}"
        f"{' (key)' if k in keys else ''}: {100 * v:.1f}% of the variance</title></rect>"
        for i, (k, v) in enumerate(zip(range(1, len(power) + 1), power)))
    at_keys = sum(power[k - 1] for k in keys if 0 < k <= len(power))
    best = int(power.argmax()) + 1
    return (f"<svg class='spectrum' width='{width}' height='{height}' role='img'>{bars}</svg>"
            f"<div class='meta'>Fourier spectrum of the activation over all inputs (frequencies 1–{len(power)}, "
            f"key frequencies in red): {100 * at_keys:.1f}% of the variance at the key frequencies, "
            f"{100 * power[best - 1]:.1f}% at frequency {best}</div>")


def _visible(token: str) -> str:
    """A token as shown in a list: line breaks and tabs as ↵ and ⇥, a token of spaces only as ␣s, an empty
    token as ∅ (spaces inside a token stay)."""
    if token and not token.strip(" "):
        return "␣" * len(token)
    return token.replace("\r", "␍").replace("\n", "↵").replace("\t", "⇥") or "∅"


def _lens_html(lens: dict[str, Any]) -> str:
    """Top and bottom logit-lens tokens, each with its logit in the tooltip and in brackets."""
    out = []
    for key, label in (("top", "promotes"), ("bottom", "suppresses")):
        toks = "".join(f"<span class='tok' title='logit {t['value']:.3f} (token id {t.get('id', '?')})'>"
                       f"{html.escape(_visible(t['token']))}</span>"
                       f"<span class='val'>({t['value']:.2f})</span> " for t in lens[key])
        out.append(f"<div class='lens {key}'><b>logit lens, {label}:</b> {toks}</div>")
    return "".join(out)


def _context_html(ctx: dict[str, Any]) -> str:
    """One context: ``{"tokens": [...], "at": index, "value": v}`` or ``{"row": r, "value": v}``."""
    if "tokens" in ctx:
        parts = []
        for i, t in enumerate(ctx["tokens"]):
            t = html.escape(t)
            parts.append(f"<mark class='hl' title='activation {ctx['value']:.3f}'>{t}</mark>" if i == ctx["at"] else t)
        return f"<div class='ctx'>{''.join(parts)} <span class='val'>({ctx['value']:.3f})</span></div>"
    return f"<div class='ctx'>row {ctx['row']} <span class='val'>({ctx['value']:.3f})</span></div>"


def _card_html(side: str, card: dict[str, Any] | None) -> str:
    side = html.escape(side)
    if card is None:
        return f"<div class='card empty'><h2>{side}: no partner</h2></div>"
    extra = "".join(f"<div class='meta'>{html.escape(k)}: {html.escape(str(v))}</div>" for k, v in card.get("extra", {}).items())
    if card.get("spectrum") is not None:
        extra += _spectrum_svg(card["spectrum"])
    if card.get("logit_lens") is not None:
        extra += _lens_html(card["logit_lens"])
    top = "".join(_context_html(c) for c in card["top"]) or "<div class='meta'>no activating rows</div>"
    mid = "".join(_context_html(c) for c in card["middle"]) or "<div class='meta'>–</div>"
    return (f"<div class='card' data-latent='{card['latent']}'><h2>{side} latent {card['latent']}</h2>"
            f"<div class='meta'>fires on {card['frequency'] * 100:.3g}% of {card['n_rows']} rows; mean when firing "
            f"{_f(card['mean'])}</div>{extra}{_hist_svg(np.asarray(card['hist']))}"
            f"<div class='meta'><b>top activations</b></div>{top}"
            f"<div class='meta'><b>from the middle of the distribution</b></div>{mid}</div>")


def render_pair_page(title: str, meta: dict[str, Any], items: Sequence[dict[str, Any]],
                     sides: tuple[str, str] | None = None) -> str:
    """A self-contained page: ``items`` are ``{"group", "a", "b", "cos", "corr", "cofire", "card_a", "card_b"}``
    (cards from the caller: ``latent``, ``frequency``, ``n_rows``, ``mean``, ``hist``, ``top``, ``middle``,
    optional ``extra``, ``spectrum`` and ``logit_lens``, see :func:`build_card`; None on a side without a latent).
    ``sides`` names the two SAEs on their cards (e.g. ``("seed 0", "seed 1")``)."""
    name_a, name_b = ("A", "B") if sides is None else (f"A ({sides[0]})", f"B ({sides[1]})")
    rows_html, cards_html = [], []
    for i, it in enumerate(items):
        cid = f"pair{i}"
        fa = it["card_a"]["frequency"] if it["card_a"] else None
        fb = it["card_b"]["frequency"] if it["card_b"] else None
        cos = it.get("cos")
        cells = [
            f"<td class='l'>{html.escape(it['group'])}</td>",
            f"<td data-v='{-1 if it['a'] is None else it['a']}'><a href='#{cid}'>{'–' if it['a'] is None else it['a']}</a></td>",
            f"<td data-v='{-1 if it['b'] is None else it['b']}'><a href='#{cid}'>{'–' if it['b'] is None else it['b']}</a></td>",
            f"<td data-v='{_f(cos, 6)}'>{_f(cos)}</td>",
            f"<td data-v='{_f(it.get('corr'), 6)}'>{_f(it.get('corr'))}</td>",
            f"<td data-v='{_f(it.get('cofire'), 6)}'>{_f(it.get('cofire'))}</td>",
            f"<td data-v='{_f(fa, 8)}'>{_f(None if fa is None else 100 * fa, 2)}</td>",
            f"<td data-v='{_f(fb, 8)}'>{_f(None if fb is None else 100 * fb, 2)}</td>",
        ]
        rows_html.append(f"<tr data-card='{cid}' data-group='{html.escape(it['group'])}' data-cos='{_f(cos, 6)}'>"
                         + "".join(cells) + "</tr>")
        head = (f"<b>{html.escape(it['group'])}</b>: decoder |cos| {_f(cos)}, activation correlation "
                f"{_f(it.get('corr'))}, co-firing (Jaccard) {_f(it.get('cofire'))}")
        cards_html.append(f"<div class='pair' id='{cid}'><div class='head'>{head}</div><div class='cards'>"
                          f"{_card_html(name_a, it['card_a'])}{_card_html(name_b, it['card_b'])}</div></div>")
    meta_html = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in meta.items())
    heads = [("group", "str"), ("latent A", "num"), ("latent B", "num"), ("decoder |cos|", "num"),
             ("act. corr", "num"), ("co-firing", "num"), ("freq A %", "num"), ("freq B %", "num")]
    th = "".join(f"<th data-type='{t}'>{h}</th>" for h, t in heads)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1><ul class="meta">{meta_html}</ul>
<div class="controls"><label>filter <input id="q" type="search" placeholder="text or latent id"></label>
<label>group <select id="grp"><option value="">all</option><option value="best">best</option><option value="spread">spread</option>
<option value="unmatched">unmatched</option></select></label>
<label>min |cos| <input id="mincos" type="number" step="0.05" min="0" max="1"></label></div>
<table class="idx" id="idx"><thead><tr>{th}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>
{''.join(cards_html)}
<script>{_JS}</script></body></html>
"""


def render_index(title: str, pages: Sequence[dict[str, Any]]) -> str:
    """An index of pair pages, one table per section (seed pairs, suite cells), in order of first appearance:
    ``pages`` are ``{"href", "section", "label", "hungarian_mean_cos", "n_cards"}``. The first table has id ``idx``."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for p in pages:
        sections.setdefault(p["section"], []).append(p)
    blocks = []
    for i, (section, entries) in enumerate(sections.items()):
        rows = "".join(
            f"<tr data-card='' data-group='' data-cos='{_f(p['hungarian_mean_cos'], 6)}'><td class='l'>"
            f"<a href='{html.escape(p['href'])}'>{html.escape(p['label'])}</a></td>"
            f"<td data-v='{_f(p['hungarian_mean_cos'], 6)}'>{_f(p['hungarian_mean_cos'])}</td><td>{p['n_cards']}</td></tr>"
            for p in entries)
        tid = "idx" if i == 0 else f"idx{i + 1}"
        blocks.append(f"<h2>{html.escape(section)}</h2><table class='idx' id='{tid}'><thead><tr><th data-type='str'>pair</th>"
                      f"<th data-type='num'>Hungarian mean |cos|</th><th data-type='num'>cards</th></tr></thead>"
                      f"<tbody>{rows}</tbody></table>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<div class="controls"><label>filter <input id="q" type="search"></label><select id="grp" hidden><option value=""></option></select>
<label>min |cos| <input id="mincos" type="number" step="0.05" min="0" max="1"></label></div>
{''.join(blocks)}
<script>{_JS}</script></body></html>
"""


def dumps_meta(meta: dict[str, Any]) -> str:
    return json.dumps(meta, sort_keys=True)


# --------------------------------------------------------------------------
# Cards from statistics
# --------------------------------------------------------------------------


def lens_entries(top_ids: np.ndarray, top_vals: np.ndarray, bottom_ids: np.ndarray, bottom_vals: np.ndarray,
                 decode: Callable[[int], str]) -> list[dict[str, Any]]:
    """Cards' ``logit_lens`` entries from :func:`saesim.analysis.logit_lens.logit_lens`'s four ``[n, k]`` arrays,
    one per row: ``{"top": [{"token", "id", "value"}], "bottom": [...]}``, tokens decoded with ``decode``."""
    out = []
    for ti, tv, bi, bv in zip(top_ids, top_vals, bottom_ids, bottom_vals):
        out.append({key: [{"token": decode(int(t)), "id": int(t), "value": float(v)} for t, v in zip(ids, vals)]
                    for key, ids, vals in (("top", ti, tv), ("bottom", bi, bv))})
    return out


def token_windows(store_rows: np.ndarray, context_ids: np.ndarray, token_ids: np.ndarray,
                  decode: Callable[[int], str], *, before: int = 12, after: int = 3) -> list[tuple[list[str], int]]:
    """For each store row: the decoded tokens of the store rows around it from the same context (up to
    ``before`` rows before and ``after`` after; a store holds a context's tokens as consecutive rows), and
    the index of the row's own token in that list."""
    out = []
    n = len(token_ids)
    for r in np.asarray(store_rows, dtype=np.int64):
        c = context_ids[r]
        lo = max(0, r - before)
        while context_ids[lo] != c:
            lo += 1
        hi = min(n, r + after + 1)
        while context_ids[hi - 1] != c:
            hi -= 1
        out.append(([decode(int(t)) for t in token_ids[lo:hi]], int(r - lo)))
    return out


def build_card(stats: LatentStats, latent: int | None, *, n_top: int = 8, n_middle: int = 3,
               context: Callable[[np.ndarray], list[tuple[list[str], int]]] | None = None,
               row_ids: np.ndarray | None = None, extra: dict[str, Any] | None = None,
               spectrum: dict[str, Any] | None = None, logit_lens: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The card of one latent (None for None): frequency, histogram, top and middle contexts.

    Stats rows are indices into ``row_ids`` (the store rows of the pass); ``context``
    maps store rows to token windows (language models), else contexts are row ids.
    ``spectrum`` (modular addition: ``{"power": [(p-1)/2 fractions], "keys": [key frequencies]}``)
    and ``logit_lens`` (language models: ``{"top": [{"token", "value"}], "bottom": [...]}``) are
    drawn on the card when given.
    """
    if latent is None:
        return None
    card: dict[str, Any] = {
        "latent": int(latent), "frequency": float(stats.frequency[latent]), "n_rows": int(stats.n_rows),
        "mean": float(stats.mean_when_firing[latent]), "hist": stats.hist[latent].tolist(), "extra": extra or {},
        "spectrum": spectrum, "logit_lens": logit_lens,
    }
    for key, (rows, vals) in (("top", stats.top(latent)), ("middle", stats.middle(latent, n_middle))):
        if key == "top":
            rows, vals = rows[:n_top], vals[:n_top]
        store_rows = row_ids[rows] if row_ids is not None else rows
        if context is not None and len(store_rows):
            card[key] = [{"tokens": toks, "at": at, "value": float(v)}
                         for (toks, at), v in zip(context(store_rows), vals)]
        else:
            card[key] = [{"row": int(r), "value": float(v)} for r, v in zip(store_rows, vals)]
    return card
