"""A hand-checked 4 users x 3 items matrix for the engines' own tests (values worked out in each test)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# u0: 1 1 0 / u1: 1 0 1 / u2: 1 1 1 / u3: 0 1 0
SMALL = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=np.float32))


def row(*items: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(items), np.float32), ([0] * len(items), list(items))), shape=(1, 3))
