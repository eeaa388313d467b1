import os

import pytest

# Tests run on 2 shared cores: one torch thread each keeps them predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
