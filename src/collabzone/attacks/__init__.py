"""The attack library: an analyst who asks many questions, as issue 10 found them.

Each family asks a :class:`Target` (a real zone through :class:`ZoneTarget`, or any
object with ``ask``) governed SQL questions and combines every answer, refusal, count of
what was left out and response time, as DESIGN.md's threat model says an attacker does:

============== =========================================================================
differencing   pairs, range splits, inclusion-exclusion over three releases, a GROUP BY
               plus its total (channel 1)
tracker        Denning's general tracker, padding and three-set trackers (channel 1)
oracle         a refusal or a withheld answer read as "the victim is in the set" (2)
threshold      the minimum itself as an oracle, padded with k - 1 people the attacker
               knows (2)
suppressed     exact counts of suppressed cells in the payload or receipt (3)
reconstruction Dinur-Nissim: random subset sums, a linear program for every bit (1)
join           an attacker-owned join side multiplying one person, exact and DP (4)
timing         response times with and without a person, KS test (5)
values         sums beyond the declared bounds, answers that change with wording (6)
mpc            issue 15: differencing two secret-shared reports (a union with a one-record
               dataset; a join on two attacker-owned pseudonym lists)
rule_paths     issue 20's broken paths: a list of a dataset joined with itself, a list
               through an unlisted join key, a template reading another owner's columns
he             issue 15: the recipient padding a victim's encrypted vector with its own
               zeros; the mediator decrypting a stored total with the public context
lookalike      issue 17: a partner reads a delivered look-alike audience to tell which of
               its customers are in the bank's seed set (absence as membership)
dp_release     issue 11: a DP MAX / MIN / MEDIAN asked again and again to read a planted
               outlier (:func:`order_statistic`); SELECT DISTINCT asked again and again
               to see a one-person segment (:func:`distinct_segment`)
mia            issue 14: loss-threshold membership inference against a released model
               (:func:`loss_threshold_advantage`, :func:`dp_advantage_bound`)
============== =========================================================================

Attacks are pure except for their questions; they never see the data. What they infer
(certain :class:`Claim` s, best :class:`Guess` es) is judged by the caller against the
ground truth with :func:`judge`: *isolated* counts the right inferences about fewer than
``min_group_size`` people. :func:`run_campaign` runs every family as one attacker; the
``rule_paths`` attacks (:func:`list_self_join`, :func:`list_unlisted_key`,
:func:`template_cross_owner`) need a multi-party zone and are run on their own, as is
:func:`seed_membership` (it reads audiences, not SQL answers), and the ``dp_release``
families (the caller plants the outlier or the one-person segment they look for).

Example:
    >>> from collabzone.attacks import ATTACKS, dp_accuracy_bound
    >>> sorted(ATTACKS)[:3]
    ['differencing', 'join', 'oracle']
    >>> round(dp_accuracy_bound(0.5), 3)
    0.622
"""

from collabzone.attacks._algebra import System
from collabzone.attacks._campaign import ATTACKS, Attack, CampaignReport, run_campaign
from collabzone.attacks._differencing import differencing
from collabzone.attacks._dp_release import distinct_segment, order_statistic, outlier_revealed
from collabzone.attacks._he import he_differencing, he_mediator_decrypt, he_self_padding
from collabzone.attacks._join import PROBE_COLUMNS, join_amplification, probe_table
from collabzone.attacks._judge import TableTruth, Truth, Verdict, dp_accuracy_bound, judge
from collabzone.attacks._lookalike import MembershipResult, seed_membership
from collabzone.attacks._mia import dp_advantage_bound, loss_threshold_advantage
from collabzone.attacks._mpc import mpc_join_differencing, mpc_union_differencing
from collabzone.attacks._oracle import oracle
from collabzone.attacks._paths import (
    SpecQuestion,
    list_self_join,
    list_unlisted_key,
    template_cross_owner,
)
from collabzone.attacks._reconstruct import reconstruct, subset_where
from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Person, Scenario
from collabzone.attacks._suppressed import suppressed
from collabzone.attacks._target import Answer, Question, Target, Uploader, ZoneTarget
from collabzone.attacks._threshold import threshold
from collabzone.attacks._timing import ks_test, timing, worlds
from collabzone.attacks._tracker import tracker
from collabzone.attacks._values import values

__all__ = [
    "ATTACKS",
    "PROBE_COLUMNS",
    "Answer",
    "Attack",
    "AttackResult",
    "CampaignReport",
    "Claim",
    "Guess",
    "Log",
    "MembershipResult",
    "Person",
    "Question",
    "Scenario",
    "SpecQuestion",
    "System",
    "TableTruth",
    "Target",
    "Truth",
    "Uploader",
    "Verdict",
    "ZoneTarget",
    "differencing",
    "distinct_segment",
    "dp_accuracy_bound",
    "dp_advantage_bound",
    "he_differencing",
    "he_mediator_decrypt",
    "he_self_padding",
    "join_amplification",
    "judge",
    "ks_test",
    "list_self_join",
    "list_unlisted_key",
    "loss_threshold_advantage",
    "mpc_join_differencing",
    "mpc_union_differencing",
    "oracle",
    "order_statistic",
    "outlier_revealed",
    "probe_table",
    "reconstruct",
    "run_campaign",
    "seed_membership",
    "subset_where",
    "suppressed",
    "template_cross_owner",
    "threshold",
    "timing",
    "tracker",
    "values",
    "worlds",
]
