"""The simulated users: hidden tastes from the sample generator, and how each of them acts on a list.

The population is ``app.data.sample``'s: items with 1-3 genres and Zipf-like popularity, users with
2-3 favourite genres, and the true affinity of a user for an item is the share of the item's genres
the user likes (0..1). The base log (what the first model is trained on) is the generator's log of
the same users; ``new_users`` more users of the same model are left out of it, so the service has
never heard of them.

How a user acts on a list of k items, item by item (``Behaviour``, every number a flag):

* they look at rank r with probability ``attention(r) = 1 / log2(r + 1)`` (1 at the top, 0.29 at 10);
* they click with ``attention(r) * (click_base + click_taste * affinity)``, times ``repeat`` when
  they already clicked the item in an earlier round (having watched it, they rarely want it again),
  and never when they disliked it before;
* a click becomes a like with ``like_base + like_taste * affinity``;
* an item they did not click is disliked with ``attention(r) * dislike * (1 - affinity)``.

Every random draw is a hash of (seed, round, user, item, what is drawn), not a shared random
stream: the same user shown the same item in the same round decides the same way in every arm of
the comparison, so arms differ only through the lists the service gave them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import orjson

from app.data import sample

CLICK, LIKE, DISLIKE, ACTIVE = 1, 2, 3, 4  # streams of random draws
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _MUL1
    x = (x ^ (x >> np.uint64(27))) * _MUL2
    return x ^ (x >> np.uint64(31))


def uniforms(*keys: int | np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers, one per element of the broadcast keys, a pure function of the keys."""
    arrays = [np.asarray(k, dtype=np.int64).astype(np.uint64) for k in keys]
    h = np.zeros(np.broadcast_shapes(*(a.shape for a in arrays)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in arrays:
            h = _mix(h + _GOLDEN + a)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class Behaviour:
    """Probabilities of the simulated users' actions (see the module docstring)."""

    click_base: float = 0.02
    click_taste: float = 0.40
    like_base: float = 0.10
    like_taste: float = 0.60
    dislike: float = 0.10
    repeat: float = 0.10

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"behaviour {name} = {value}: a probability must be in [0, 1]")
        if self.click_base + self.click_taste > 1.0 or self.like_base + self.like_taste > 1.0:
            raise ValueError("click_base + click_taste and like_base + like_taste must each be at most 1")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def attention(rank: np.ndarray) -> np.ndarray:
    """Probability that a user looks at 1-based ``rank``."""
    return 1.0 / np.log2(np.asarray(rank, dtype=np.float64) + 1.0)


@dataclass
class UserState:
    """What one simulated user did in earlier rounds of one arm."""

    clicked: set[int] = field(default_factory=set)
    disliked: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Action:
    item: int  # item index
    rank: int  # 1-based
    action_type: str  # "click", "like" or "dislike"


class SimPopulation:
    """``users`` users known to the base log, then ``new_users`` unknown ones; ``items`` items."""

    def __init__(
        self, users: int, items: int, seed: int, new_users: int = 0, behaviour: Behaviour | None = None
    ) -> None:
        if users < 1 or new_users < 0:
            raise ValueError("--users must be >= 1 and --new-users >= 0")
        if items < 20:
            raise ValueError("--items must be >= 20 (the sample generator's minimum)")
        self.n_known, self.n_new, self.n_items, self.seed = users, new_users, items, seed
        self.behaviour = behaviour or Behaviour()
        self.truth = sample.population(users + new_users, items, seed)
        self.affinity = self.truth.affinity().astype(np.float64)
        self.user_ids = self.truth.user_ids
        self.item_ids = self.truth.item_ids
        self.item_index = {item_id: j for j, item_id in enumerate(self.item_ids)}

    @property
    def n_users(self) -> int:
        return self.n_known + self.n_new

    def is_new(self, user: int) -> bool:
        return user >= self.n_known

    def base_log(self) -> tuple[bytes, bytes]:
        """(interactions JSONL, catalogue JSONL): the generator's log without the new users' lines."""
        interactions, catalogue = sample.generate(self.n_users, self.n_items, self.seed)
        if self.n_new:
            known = set(self.user_ids[: self.n_known])
            lines = [ln for ln in interactions.splitlines() if orjson.loads(ln)["user_id"] in known]
            interactions = b"\n".join(lines) + b"\n"
        return interactions, catalogue

    def active(self, round_no: int, share: float) -> np.ndarray:
        """Indices of the users who open the app in this round (the same in every arm)."""
        if share >= 1.0:
            return np.arange(self.n_users)
        draw = uniforms(self.seed, round_no, np.arange(self.n_users), 0, ACTIVE)
        return np.flatnonzero(draw < share)

    def act(self, round_no: int, user: int, items: list[int], state: UserState) -> list[Action]:
        """What ``user`` does with the list ``items`` (item indices, -1 for an item not in the population)."""
        if not items:
            return []
        b = self.behaviour
        idx = np.asarray(items, dtype=np.int64)
        known = idx >= 0
        aff = np.where(known, self.affinity[user, np.maximum(idx, 0)], 0.0)
        look = attention(np.arange(1, len(idx) + 1))
        p_click = look * (b.click_base + b.click_taste * aff)
        repeat = np.array([j in state.clicked for j in items])
        banned = np.array([j in state.disliked for j in items])
        p_click = np.where(repeat, p_click * b.repeat, p_click)
        p_click = np.where(banned | ~known, 0.0, p_click)
        p_like = b.like_base + b.like_taste * aff
        p_dislike = np.where(known, look * b.dislike * (1.0 - aff), 0.0)
        keys = np.maximum(idx, 0)
        clicked = uniforms(self.seed, round_no, user, keys, CLICK) < p_click
        liked = clicked & (uniforms(self.seed, round_no, user, keys, LIKE) < p_like)
        disliked = ~clicked & ~banned & (uniforms(self.seed, round_no, user, keys, DISLIKE) < p_dislike)
        out: list[Action] = []
        for r, j in enumerate(items):
            if clicked[r]:
                out.append(Action(j, r + 1, "click"))
                state.clicked.add(j)
                if liked[r]:
                    out.append(Action(j, r + 1, "like"))
            elif disliked[r]:
                out.append(Action(j, r + 1, "dislike"))
                state.disliked.add(j)
        return out
