"""The agreement rules the federated technique understands.

An owner shares a dataset for federated use by an agreement (technique ``federated``)
whose rules say which columns a job may read at the node (``columns``, per dataset), which
model families may be trained, how many rounds, how much client-level epsilon, how many
clients must take part (so no aggregate is one owner's update), and whether secure
aggregation is required.
"""

from __future__ import annotations

from collabzone.techniques.base import Merge, RuleSpec
from collabzone.techniques.federated._models import FAMILIES

MIN_CLIENTS_FLOOR = 2
"""No agreement may let an aggregate come from fewer than two owners."""

RULE_SPECS: tuple[RuleSpec, ...] = (
    RuleSpec(
        "columns",
        Merge.PER_DATASET,
        "the columns of this dataset a federated job may read at the node",
        (list, tuple),
    ),
    RuleSpec(
        "model_families",
        Merge.SUBSET,
        f"model families a job may train ({', '.join(FAMILIES)})",
        (list, tuple),
    ),
    RuleSpec("max_rounds", Merge.AT_MOST, "most training rounds in one job", int),
    RuleSpec("max_epsilon", Merge.AT_MOST, "most client-level epsilon one job may spend", float),
    RuleSpec(
        "min_clients",
        Merge.AT_LEAST,
        "fewest owners whose updates go into any aggregate",
        int,
        floor=MIN_CLIENTS_FLOOR,
    ),
    RuleSpec(
        "secure_aggregation",
        Merge.ANY,
        "require Flower's SecAgg+ (the zone sees only sums of updates)",
        bool,
    ),
)
