"""Cryptographic building blocks shared by several techniques (not a technique itself).

* :mod:`collabzone.crypto.group`: prime-order group operations on edwards25519 (libsodium).
* :mod:`collabzone.crypto.oprf`: the 2HashDH oblivious PRF, single-key and threshold.

Techniques stay leaves: ``linking`` (OPRF tokens, PSI) and ``mpc`` (pseudonyms for a join
on a secret key) both import from here, never from each other.
"""
