"""Federated learning and analytics with Flower, under the zone's agreements and ledger.

See docs/federated.md. Modules: ``_spec`` (the signed job spec), ``_accounting`` (RDP via
dp-accounting), ``_models`` (the allow-listed numpy models), ``_data`` (encoding by public
domains), ``_secure_sum`` (pairwise masking), ``_federation`` (the in-process round loop),
``_analytics`` (counts, histograms, means), ``_flower`` (the real Flower apps and
processes), ``_technique`` (plan/check/release), ``cli``.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collabzone.techniques.federated._technique import Federated


def __getattr__(name: str) -> Any:
    """``Federated`` on first use: its accounting imports dp-accounting and SciPy (a second
    of start-up), which the CLI should not pay to list its commands."""
    if name == "Federated":
        from collabzone.techniques.federated._technique import Federated

        return Federated
    if name == "demo_job":
        from collabzone.techniques.federated._demo import demo_job

        return demo_job
    raise AttributeError(name)


__all__ = ["Federated", "demo_job"]
