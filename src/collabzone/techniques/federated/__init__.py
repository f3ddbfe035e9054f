"""Federated learning and analytics with Flower, under the zone's agreements and ledger.

See docs/federated.md. Modules: ``_spec`` (the signed job spec), ``_accounting`` (RDP via
dp-accounting), ``_models`` (the allow-listed numpy models), ``_data`` (encoding by public
domains), ``_secure_sum`` (pairwise masking), ``_federation`` (the in-process round loop),
``_analytics`` (counts, histograms, means), ``_flower`` (the real Flower apps and
processes), ``_technique`` (plan/check/release), ``cli``.
"""

from collabzone.techniques.federated._technique import Federated

__all__ = ["Federated"]
