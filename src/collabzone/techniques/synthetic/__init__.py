"""Differentially private synthetic data (MST) with fidelity and privacy reports."""

from collabzone.techniques.synthetic.technique import Synthetic

__all__ = ["Synthetic"]
