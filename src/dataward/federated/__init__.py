"""Provenance across federated nodes, without the coordinator holding node data.

Each node is a workspace with its own tamper-evident log. For every round a node signs an *update
statement* (the round, the digest of its model update, the dataset version it trained on and its log's
signed checkpoint after recording the training); its peers *witness* that checkpoint (they check it
extends the last one they saw of that node by a consistency proof, then cosign it), so a node that rewinds
or forks its log is caught by the others. The coordinator registers nodes by their log keys (in its own
log: evidence, not a table), accepts a round only with every contribution signed by its node and
cosigned by enough peers, and traces an incident on the aggregated model to the node and round whose
update pushed the model toward the misbehaviour. The node, when it cooperates, traces further to its
batches. See docs/federated.md.
"""

from dataward.federated._coordinator import Coordinator, NodeRank, RoundRecord
from dataward.federated._node import Node
from dataward.federated._protocol import (
    ForkError,
    NodeIdentity,
    PeerView,
    RewindError,
    UpdateStatement,
    WitnessError,
)

__all__ = [
    "Coordinator",
    "ForkError",
    "Node",
    "NodeIdentity",
    "NodeRank",
    "PeerView",
    "RewindError",
    "RoundRecord",
    "UpdateStatement",
    "WitnessError",
]
