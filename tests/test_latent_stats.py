"""Streaming per-latent statistics (saesim.analysis.latent_stats): known answers against a brute-force pass."""

import numpy as np
import pytest

from saesim.analysis.latent_stats import HIST_EDGES, latent_stats


def sparse_acts(rng, rows=3000, n=50, p=0.05):
    acts = rng.exponential(1.0, (rows, n)).astype(np.float32) * (rng.random((rows, n)) < p)
    acts[:, 7] = 0.0  # a dead latent
    acts[:5, 3] = 0.0
    acts[100, 3] = acts[2500, 3] = 50.0  # a tie at the top: the earlier row first
    return acts


@pytest.mark.parametrize("chunk_rows", [1, 7, 256, 5000])
def test_top_k_counts_and_histogram_equal_brute_force(rng, chunk_rows):
    acts = sparse_acts(rng)
    st = latent_stats(acts, k=6, m=10, chunk_rows=chunk_rows)
    assert st.n_rows == 3000
    np.testing.assert_array_equal(st.fire_count, (acts > 0).sum(0))
    np.testing.assert_allclose(st.act_sum, acts.sum(0, dtype=np.float64), rtol=1e-6)
    for j in range(acts.shape[1]):
        col = acts[:, j]
        order = np.lexsort((np.arange(len(col)), -col))  # value desc, row asc
        want = [r for r in order[:6] if col[r] > 0]
        rows, vals = st.top(j)
        assert rows.tolist() == want, j
        np.testing.assert_array_equal(vals, col[want])
        h, _ = np.histogram(np.clip(col[col > 0], HIST_EDGES[0], HIST_EDGES[-1] * 0.999), bins=HIST_EDGES)
        np.testing.assert_array_equal(st.hist[j], h)
    assert st.top(3)[0][:2].tolist() == [100, 2500]
    assert st.top(7)[0].size == 0 and st.frequency[7] == 0 and st.middle(7)[0].size == 0


def test_sample_is_uniform_over_firing_rows_and_middle_is_central(rng):
    acts = np.zeros((4000, 3), np.float32)
    acts[:, 0] = np.arange(4000, dtype=np.float32) + 1  # fires everywhere, value = row + 1
    acts[::10, 1] = 1.0  # fires on every 10th row
    st = latent_stats(acts, k=4, m=200, chunk_rows=333, seed=5)
    rows0 = st.sample_rows[0]
    assert (rows0 >= 0).all() and len(set(rows0.tolist())) == 200
    np.testing.assert_array_equal(st.sample_values[0], rows0 + 1)
    # uniform over the rows: the sample's mean row is near the middle (sd of the mean ~ 4000/sqrt(12*200) = 82)
    assert abs(rows0.mean() - 2000) < 350
    assert (st.sample_rows[1] % 10 == 0).all()  # only firing rows
    mid_rows, mid_vals = st.middle(0, m=5)
    assert len(mid_rows) == 5 and abs(np.median(mid_vals) - 2000) < 400
    assert st.top(0)[0].tolist() == [3999, 3998, 3997, 3996]
    # deterministic: same seed, same bytes; another seed, another sample
    again = latent_stats(acts, k=4, m=200, chunk_rows=333, seed=5)
    np.testing.assert_array_equal(again.sample_rows, st.sample_rows)
    assert not np.array_equal(latent_stats(acts, k=4, m=200, chunk_rows=333, seed=6).sample_rows, st.sample_rows)
