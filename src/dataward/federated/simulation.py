"""Simulate a federation on one machine: N node workspaces, one poisoned, FedAvg rounds, one incident.

The model is multinomial logistic regression trained by full-batch gradient steps (weights and bias as one
(d+1, k) array), so an update is plain numbers and attribution is exact arithmetic. Data: scikit-learn's
bundled digits or breast-cancer sets, split across nodes with Dirichlet label skew (non-IID). The poisoned
node adds a backdoor: a few features set to a high value and the label set to a target class. The incident:
triggered test inputs that the aggregated model puts in the target class.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dataward.federated._model import Array, Labels, local_update
from dataward.federated.coordinator import Coordinator, encode_update, trace_batches
from dataward.federated.node import Node
from dataward.model.roles import Grant, Role
from dataward.store.keyring import FileKeyring
from dataward.workspace import Workspace


def predict(w: Array, x: Array) -> Labels:
    out: Labels = np.argmax(x @ w[:-1] + w[-1], axis=1).astype(np.int64)
    return out


def load(name: str) -> tuple[Array, Labels]:
    from sklearn import datasets

    if name == "digits":
        d = datasets.load_digits()
        return d.data / 16.0, d.target.astype(np.int64)
    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
        x = (d.data - d.data.mean(axis=0)) / d.data.std(axis=0)
        return x, d.target.astype(np.int64)
    raise ValueError(f"unknown data set {name!r}")


@dataclass
class Scenario:
    dataset: str = "digits"
    n_nodes: int = 5
    rounds: int = 4
    seed: int = 0
    poison_share: float = 0.3  # of the poisoned node's records
    trigger_features: int = 4
    witnesses_per_node: int = 2
    dirichlet_alpha: float = 0.5


@dataclass
class Outcome:
    scenario: Scenario
    poisoned: str
    attack_took: bool
    incident_examples: int
    rank_of_poisoned: int | None  # 1 = ranked first
    poisoned_batch_first: bool | None  # node-side trace, on the poisoned node
    seconds_per_round: float
    ranking: list[tuple[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.scenario.dataset,
            "nodes": self.scenario.n_nodes,
            "seed": self.scenario.seed,
            "poisoned": self.poisoned,
            "attack_took": self.attack_took,
            "incident_examples": self.incident_examples,
            "rank_of_poisoned": self.rank_of_poisoned,
            "poisoned_batch_first": self.poisoned_batch_first,
            "seconds_per_round": round(self.seconds_per_round, 4),
        }


def _partition(y: Labels, n: int, alpha: float, rng: np.random.Generator) -> list[npt.NDArray[np.int64]]:
    parts: list[list[int]] = [[] for _ in range(n)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        shares = rng.dirichlet([alpha] * n)
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for i, chunk in enumerate(np.split(idx, cuts)):
            parts[i].extend(chunk.tolist())
    return [np.asarray(sorted(p), dtype=np.int64) for p in parts]


def run(sc: Scenario, root: Path | None = None) -> Outcome:
    """Run one scenario end to end with real workspaces, logs, signatures and witnesses."""
    rng = np.random.default_rng(sc.seed)
    x, y = load(sc.dataset)
    k = int(y.max()) + 1
    test = rng.random(len(y)) < 0.25
    xt, yt, xs, ys = x[~test], y[~test], x[test], y[test]
    parts = _partition(yt, sc.n_nodes, sc.dirichlet_alpha, rng)
    trigger = rng.choice(x.shape[1], size=sc.trigger_features, replace=False)
    # the trigger value sits just past each feature's observed maximum (a patch, in pixel terms)
    high = x[:, trigger].max(axis=0) + x[:, trigger].std(axis=0)
    target = int(rng.integers(k))
    bad_node = int(rng.integers(sc.n_nodes))
    node_data: list[dict[str, tuple[Array, Labels]]] = []
    for i, p in enumerate(parts):
        xi, yi = xt[p], yt[p]
        batches = {f"n{i}-b{j}": (xi[j::4], yi[j::4]) for j in range(4)}
        if i == bad_node:
            m = max(4, int(sc.poison_share * len(xi)))
            src = rng.choice(len(xi), size=m)
            xp = xi[src].copy()
            xp[:, trigger] = high
            batches[f"n{i}-b3"] = (np.vstack([batches[f"n{i}-b3"][0], xp]),
                                   np.concatenate([batches[f"n{i}-b3"][1], np.full(m, target)]))
        node_data.append(batches)
    with tempfile.TemporaryDirectory(prefix="dataward-fed-", dir=root) as tmp_s:
        tmp = Path(tmp_s)
        # every operator has a keyring of their own, outside the workspaces
        ring = FileKeyring(tmp / "keyring-coord")
        coord_ws = Workspace.init(tmp / "coordinator", admin="coord", keyring=ring)
        try:
            admin = coord_ws.actor("coord", keyring=ring)
            from dataward import principals

            principals.grant_roles(coord_ws, admin, "coord", [Grant(Role.TRAINER)])
            coord = Coordinator(coord_ws, admin, witness_threshold=min(1, sc.n_nodes - 1))
            nodes = [
                Node(Workspace.init(tmp / f"node{i}", admin=f"op{i}", keyring=FileKeyring(tmp / f"keyring-op{i}")),
                     f"node{i}")
                for i in range(sc.n_nodes)
            ]
            for n in nodes:
                coord.register(n.identity)
            w = np.zeros((x.shape[1] + 1, k))
            t0 = time.perf_counter()
            model_sha = ""
            for r in range(sc.rounds):
                base_sha = hashlib.sha256(encode_update(w)).hexdigest()
                contributions = []
                updates = []
                for i, n in enumerate(nodes):
                    xi = np.vstack([b[0] for b in node_data[i].values()])
                    yi = np.concatenate([b[1] for b in node_data[i].values()])
                    u = local_update(w, xi, yi)
                    ub = encode_update(u)
                    env = n.sign_update(r, ub, base_sha, {f"local@{r + 1}": hashlib.sha256(xi.tobytes()).hexdigest()})
                    note = n.checkpoint()
                    for j in range(1, min(sc.witnesses_per_node, sc.n_nodes - 1) + 1):
                        note = nodes[(i + j) % sc.n_nodes].witness_peer(n, note)
                    contributions.append((env, note, ub))
                    updates.append((len(yi), u))
                total = sum(s for s, _ in updates)
                w = w + sum(s * u for s, u in updates) / total
                model = encode_update(w)
                model_sha = coord.record_round(r, contributions, base_model_sha256=base_sha, model=model).model_sha256
            per_round = (time.perf_counter() - t0) / sc.rounds
            xs_trig = xs[ys != target].copy()
            xs_trig[:, trigger] = high
            hit = predict(w, xs_trig) == target
            clean_hit = predict(w, xs[ys != target]) == target
            examples = xs_trig[hit & ~clean_hit]
            took = len(examples) >= 5
            ranking: list[tuple[str, float]] = []
            rank = None
            batch_first = None
            if took:
                ranks = coord.trace(model_sha, examples, [target] * len(examples))
                ranking = [(r_.node, r_.score) for r_ in ranks]
                rank = 1 + [r_.node for r_ in ranks].index(f"node{bad_node}")
                local = trace_batches(np.zeros_like(w), node_data[bad_node], examples, [target] * len(examples))
                batch_first = local[0][0] == f"n{bad_node}-b3"
            return Outcome(sc, f"node{bad_node}", took, len(examples), rank, batch_first, per_round, ranking)
        finally:
            coord_ws.engine.dispose()
            for n in locals().get("nodes", []):
                n.ws.engine.dispose()
