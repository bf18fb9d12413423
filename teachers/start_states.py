"""Start-state curriculum: begin episodes from states of earlier successful trajectories.

*Snapshot RL* (Zhao, Qian, Wang, Shan & Qin, *Snapshot Reinforcement Learning:
Leveraging Prior Trajectories for Efficiency*, 2024): resetting some episodes to states
("snapshots") taken from earlier trajectories lets the student practise the middle of a
task before it can reach it, without changing the learning algorithm. Their baseline
S3RL adds *status classification* (snapshots are clustered and clusters drawn uniformly,
so rare states are not drowned by common ones) and uses snapshots only in the early
phase of training. Here the trajectories are the student's own: a snapshot becomes
available only once the episode it was taken from has ended *successfully* (the idea of
Salimans & Chen 2018 and Florensa et al. 2017, *Reverse Curriculum Generation*, of
starting from states known to lead to success). S3RL's student trajectory truncation
(shorter horizons from snapshots) is not implemented: the env's horizon is fixed.

Plain numpy state vectors: the buffer does not know what a state means. Trainer side::

    ids, states = starts.propose(env_steps)      # before an iteration
    env.set_start_states(states, ids)            # used at those envs' next reset
    ...                                          # the iteration runs
    starts.update(outcomes.env_ids, outcomes.success, snapshot)  # snapshot: (N, D) states now

``update`` first settles the episodes that ended (in chronological order; an env's
first ended episode owns the snapshots recorded for it so far; they enter the buffer if
it succeeded and are dropped otherwise), then records ``snapshot`` for every env's
running episode.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from .sampling import rng_state, set_rng_state


class SnapshotStarts:
    def __init__(self, num_envs: int, state_dim: int, fraction: float = 0.5, stop_env_steps: int | None = None,
                 capacity: int = 4096, per_episode: int = 16, clusters: int = 8, recluster_every: int = 512,
                 seed: int = 0):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"start states: fraction must be in [0, 1], got {fraction}")
        if capacity < 1 or per_episode < 1 or clusters < 0:
            raise ValueError("start states: capacity and per_episode must be >= 1, clusters >= 0")
        self.num_envs, self.dim = int(num_envs), int(state_dim)
        self.fraction, self.stop_env_steps = float(fraction), stop_env_steps
        self.capacity, self.per_episode = int(capacity), int(per_episode)
        self.clusters, self.recluster_every = int(clusters), int(recluster_every)
        self.rng = np.random.default_rng(seed)
        self.seed = int(seed)
        # successful snapshots: a ring buffer
        self.states = np.zeros((self.capacity, self.dim))
        self.size = 0
        self.head = 0
        self.added = 0
        # per env: snapshots of the running episode, not yet known to succeed
        self.pending = np.zeros((self.num_envs, self.per_episode, self.dim))
        self.pending_n = np.zeros(self.num_envs, np.int64)
        self.seen = np.zeros(self.num_envs, np.int64)  # snapshots offered per running episode
        self._needs = np.ones(self.num_envs, bool)  # envs whose start is to be decided
        self.labels: np.ndarray | None = None  # cluster of each buffered snapshot
        self._since_cluster = 0
        self.proposed = 0
        self.settled = 0

    # ------------------------------------------------------------------ episodes
    def update(self, env_ids: np.ndarray, success: np.ndarray, snapshot: np.ndarray | None) -> None:
        ids = np.asarray(env_ids, np.int64)
        succ = np.asarray(success, bool)
        ok = (ids >= 0) & (ids < self.num_envs)
        envs, first = np.unique(ids[ok], return_index=True)
        if len(envs):
            won = envs[succ[ok][first]]
            rows = self.pending[won][np.arange(self.per_episode)[None, :] < self.pending_n[won][:, None]]
            self._add(rows)
            self.pending_n[envs] = 0  # their running episodes started after these ended
            self.seen[envs] = 0
            self._needs[envs] = True
            self.settled += len(envs)
        if snapshot is not None:
            s = np.asarray(snapshot, float)
            if s.shape != (self.num_envs, self.dim):
                raise ValueError(f"snapshot must have shape ({self.num_envs}, {self.dim}), got {s.shape}")
            # reservoir sampling per episode (Vitter's algorithm R): the kept snapshots are a
            # uniform sample of the whole episode, however long it runs
            self.seen += 1
            slot = np.where(self.pending_n < self.per_episode, self.pending_n,
                            self.rng.integers(0, self.seen))  # >= per_episode: dropped
            keep = np.flatnonzero(slot < self.per_episode)
            self.pending[keep, slot[keep]] = s[keep]
            self.pending_n = np.minimum(self.pending_n + 1, self.per_episode)

    def _add(self, rows: np.ndarray) -> None:
        k = len(rows)
        if k == 0:
            return
        rows = rows[-self.capacity:]
        idx = (self.head + np.arange(len(rows))) % self.capacity
        self.states[idx] = rows
        self.head = int((self.head + len(rows)) % self.capacity)
        self.size = min(self.size + len(rows), self.capacity)
        self.added += k
        self._since_cluster += k
        if self.labels is not None:
            self.labels[idx] = -1  # assigned at the next clustering
        if self.clusters > 1 and (self.labels is None or self._since_cluster >= self.recluster_every):
            self._cluster()

    def _cluster(self) -> None:
        """S3RL's status classification: k-means on the (standardized) buffered states."""
        self._since_cluster = 0
        x = self.states[: self.size]
        k = min(self.clusters, self.size)
        if k < 2:
            self.labels = np.zeros(self.capacity, np.int64)
            return
        z = (x - x.mean(0)) / (x.std(0) + 1e-8)
        with threadpool_limits(limits=1):  # tiny problem; a thread pool only adds latency
            km = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=self.seed + self.added).fit(z)
        self.labels = np.full(self.capacity, -1, np.int64)
        self.labels[: self.size] = km.labels_

    # ------------------------------------------------------------------ starts
    def current_fraction(self, env_steps: int) -> float:
        if self.stop_env_steps is not None and env_steps >= self.stop_env_steps:
            return 0.0
        return self.fraction

    def sample(self, n: int) -> np.ndarray:
        """``n`` buffered snapshots: a cluster uniformly, then a member uniformly."""
        if self.size == 0:
            return np.zeros((0, self.dim))
        if self.labels is None or self.clusters <= 1:
            return self.states[self.rng.integers(0, self.size, size=n)]
        lab = self.labels[: self.size]
        known = np.flatnonzero(lab >= 0)
        if len(known) == 0:
            return self.states[self.rng.integers(0, self.size, size=n)]
        groups = np.unique(lab[known])
        pick = self.rng.choice(groups, size=n)
        order = known[np.argsort(lab[known], kind="stable")]
        starts = np.searchsorted(lab[order], groups)
        counts = np.bincount(lab[known], minlength=groups.max() + 1)[groups]
        g = np.searchsorted(groups, pick)
        j = starts[g] + (self.rng.random(n) * counts[g]).astype(np.int64)
        picked: np.ndarray = self.states[order[j]]
        return picked

    def propose(self, env_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(env ids, start states) for envs whose next reset should start from a snapshot."""
        ids = np.flatnonzero(self._needs)
        self._needs[:] = False
        frac = self.current_fraction(env_steps)
        if self.size == 0 or frac <= 0 or len(ids) == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dim))
        ids = ids[self.rng.random(len(ids)) < frac]
        self.proposed += len(ids)
        return ids, self.sample(len(ids))

    # ------------------------------------------------------------------ reporting / resume
    def metrics(self) -> dict[str, float]:
        return {"start_states/buffer": float(self.size), "start_states/proposed": float(self.proposed),
                "start_states/clusters": float(0 if self.labels is None else len(np.unique(self.labels[self.labels >= 0])))}

    def state_dict(self) -> dict:
        return {"states": self.states[: self.size].tolist() if self.size < self.capacity else self.states.tolist(),
                "size": self.size, "head": self.head, "added": self.added, "proposed": self.proposed,
                "settled": self.settled, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        s = np.asarray(state["states"], float).reshape(-1, self.dim)
        self.states[: len(s)] = s
        self.size, self.head = int(state["size"]), int(state["head"])
        self.added, self.proposed, self.settled = int(state["added"]), int(state["proposed"]), int(state["settled"])
        set_rng_state(self.rng, state.get("rng"))
        # a resumed env starts fresh episodes: nothing pending, every start to decide
        self.pending_n[:] = 0
        self.seen[:] = 0
        self._needs[:] = True
        self.labels = None
        if self.clusters > 1 and self.size:
            self._cluster()
