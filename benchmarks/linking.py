"""Linking benchmarks: prepare (normalise + HMAC), PSI cardinality, OPRF tokenisation.

Figures are ratios against a baseline run in the same process on the same data, so they
hold on a busy machine; absolute rates are printed too. Run from the project root:

    .venv/bin/python benchmarks/linking.py                 # everything (PSI 1M x 1M: minutes)
    .venv/bin/python benchmarks/linking.py --psi-n 100000  # smaller PSI
    .venv/bin/python benchmarks/linking.py --skip-openmined

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import resource
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from collabzone.crypto.group import (
    L,
    hash_to_group,
    mul,
    random_scalar,
)
from collabzone.keys import LocalKeyring, new_master_key
from collabzone.techniques.linking import (
    LinkKey,
    OprfShareServer,
    PsiMessage,
    PsiReceiver,
    PsiSender,
    intersect,
    oprf_tokens,
    parse_spec,
    prepare,
    tokenise_hmac,
)
from collabzone.techniques.linking._psi_group import hash_to_curve, x25519

WORKERS = os.cpu_count() or 1
REPEAT = 3


def raw_emails(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    first = ["Jane", "JOHN", "ali", "Zoe", "Mei", "olu"]
    domains = ["Example.com", "gmail.com", "MAIL.co.uk", "corp.example.org"]
    return [
        f"{' ' * (i % 2)}{rng.choice(first)}.{i}@{rng.choice(domains)}{' ' * (i % 3 == 0)}"
        for i in range(n)
    ]


def bench_prepare(rows: int) -> None:
    spec = parse_spec(
        {
            "collaboration": "bench",
            "fields": {"email": {"column": "email", "normaliser": "email"}},
            "match_keys": [{"name": "email", "fields": ["email"]}],
        }
    )
    emails = raw_emails(rows)
    table = pa.table({"email": emails, "amount": list(range(rows))})
    key = LinkKey(1, os.urandom(32))
    clean = [e.strip().lower().encode() for e in emails]
    ours = baseline = ours_cpu = baseline_cpu = float("inf")
    for _ in range(REPEAT):  # best of REPEAT, alternating, so both see the same machine load
        cpu, start = time.process_time(), time.perf_counter()  # process_time: all threads
        tokenised = tokenise_hmac(table, spec, {"email": key})
        ours = min(ours, time.perf_counter() - start)
        ours_cpu = min(ours_cpu, time.process_time() - cpu)
        assert tokenised.fields["email"].valid == rows
        cpu, start = time.process_time(), time.perf_counter()
        for message in clean:
            hmac.new(key.material, message, hashlib.sha256).digest()
        baseline = min(baseline, time.perf_counter() - start)
        baseline_cpu = min(baseline_cpu, time.process_time() - cpu)
    print(
        f"prepare core (normalise + HMAC), {rows:,} e-mails, best of {REPEAT}: "
        f"{rows / ours:,.0f} rows/s wall; {ours_cpu / rows * 1e6:.2f} us CPU per row = "
        f"{rows / ours_cpu:,.0f} rows per CPU-second, x {WORKERS} cores = "
        f"{WORKERS * rows / ours_cpu:,.0f} rows/s CPU-normalised"
    )
    print(
        f"  baseline: hashlib HMAC loop over pre-normalised data: {rows / baseline:,.0f} rows/s "
        f"wall, {baseline_cpu / rows * 1e6:.2f} us CPU per row"
    )
    print(
        f"  ratio ours / baseline: {baseline / ours:.2f}x wall, "
        f"{baseline_cpu / ours_cpu:.2f}x CPU per row"
    )
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.csv"
        pacsv.write_csv(table, raw)
        ring = LocalKeyring.create_new(Path(tmp) / "ring.json", new_master_key())
        ring.create("link:bench")
        cpu, start = time.process_time(), time.perf_counter()
        prepare(raw, spec, Path(tmp) / "out.parquet", keys=ring)
        full, full_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"  whole prepare CSV -> Parquet (read, normalise, HMAC, write): {rows / full:,.0f} rows/s"
        f" wall; {full_cpu / rows * 1e6:.2f} us CPU per row = {WORKERS * rows / full_cpu:,.0f}"
        f" rows/s CPU-normalised on {WORKERS} cores"
    )


_STREAM_CHILD = """
import resource, sys, time
from pathlib import Path
from collabzone.keys import LocalKeyring
from collabzone.techniques.linking import parse_spec, prepare, read_raw
raw, ring, key, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
spec = parse_spec({"collaboration": "bench",
    "fields": {"email": {"column": "email", "normaliser": "email"}},
    "match_keys": [{"name": "email", "fields": ["email"]}]})
cpu, start = time.process_time(), time.perf_counter()
if mode == "whole":
    rows = read_raw(raw, ["email"]).num_rows
else:
    rows = prepare(raw, spec, raw.with_suffix(".out.parquet"), keys=LocalKeyring(ring, key)).rows
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(rows, wall, cpu, peak)
"""


def _write_raw(path: Path, rows: int) -> None:
    """A raw CSV of ``rows`` e-mails and amounts, written in batches (constant memory)."""
    schema = pa.schema([("email", pa.string()), ("amount", pa.int64())])
    with pacsv.CSVWriter(path, schema) as writer:
        for lo in range(0, rows, 500_000):
            hi = min(lo + 500_000, rows)
            writer.write_table(
                pa.table({"email": raw_emails(hi - lo, seed=lo), "amount": range(lo, hi)}, schema)
            )


def bench_prepare_stream(sizes: list[int]) -> None:
    """Streamed ``prepare`` (CSV -> Parquet) in a fresh process per file size: rate, peak RSS;
    and the peak RSS of reading the same file whole (what ``prepare`` did before)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        master = new_master_key()
        ring = Path(tmp) / "ring.json"
        LocalKeyring.create_new(ring, master).create("link:bench")
        for rows in sizes:
            raw = Path(tmp) / f"raw{rows}.csv"
            _write_raw(raw, rows)
            size_mb = raw.stat().st_size / 2**20
            for mode in ("stream", "whole"):
                args = [str(raw), str(ring), master, mode]
                out = (
                    subprocess.run(
                        [sys.executable, "-c", _STREAM_CHILD, *args],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.splitlines()[-1]
                    .split()
                )
                done, wall, cpu, peak = int(out[0]), float(out[1]), float(out[2]), float(out[3])
                assert done == rows
                what = "streamed prepare" if mode == "stream" else "whole-file read only"
                print(
                    f"{what}, {rows:,} rows ({size_mb:,.0f} MB CSV): {rows / wall:,.0f} rows/s "
                    f"wall, {cpu:.1f} s CPU (all threads), peak RSS {peak:,.0f} MiB"
                )
            raw.unlink()


def _emails(lo: int, hi: int, progress: bool = False) -> Iterator[list[bytes]]:
    """``customer<i>@example.com`` for ``lo <= i < hi``, generated batch by batch."""
    step = 100_000
    for a in range(lo, hi, step):
        if progress and a % 1_000_000 == 0 and a > lo:
            _log(f"{a - lo:,} items read")
        yield [f"customer{i}@example.com".encode() for i in range(a, min(a + step, hi))]


def _log(what: str) -> None:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  [{time.strftime('%H:%M:%S')}] {what} (peak RSS so far {rss:,.0f} MiB)", flush=True)


def _relay(message: PsiMessage) -> PsiMessage:
    _log(f"{message.step}: {len(message.points):,} points")
    return message


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the worker processes)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak_mib() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished child, MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, kids / 1024


def bench_psi(n: int, openmined: bool) -> None:
    """PSI cardinality, n x n with half overlapping; items streamed in batches."""
    big = n >= 5_000_000
    sender = PsiSender.from_batches(lambda: _emails(0, n, big), workers=WORKERS)
    receiver = PsiReceiver.from_batches(lambda: _emails(n // 2, n + n // 2, big), workers=WORKERS)
    cpu, start = _cpu(), time.perf_counter()
    result = intersect(sender, receiver, _relay if big else lambda m: m)
    ours, ours_cpu = time.perf_counter() - start, _cpu() - cpu
    assert result.cardinality == n - n // 2
    own, kid = _peak_mib()
    print(
        f"PSI cardinality {n:,} x {n:,} (ours, X25519, {WORKERS} processes, streamed): "
        f"{ours:.1f} s wall, {ours_cpu:.1f} s CPU; peak RSS {own:,.0f} MiB "
        f"(+ worker {kid:,.0f} MiB)"
    )
    sample = list(next(_emails(0, 20_000)))
    scalar = os.urandom(32)
    start = time.process_time()
    x25519(scalar, hash_to_curve(sample, b"bench"))
    per_item = (time.process_time() - start) / len(sample)
    print(f"  hash + X25519 here now: {per_item * 1e6:.1f} us CPU per item, one process")
    if not openmined:
        return
    import private_set_intersection.python as psi

    xs = [v.decode() for batch in _emails(0, n) for v in batch]
    ys = [v.decode() for batch in _emails(n // 2, n + n // 2) for v in batch]
    cpu, start = _cpu(), time.perf_counter()
    client = psi.client.CreateWithNewKey(False)
    server = psi.server.CreateWithNewKey(False)
    setup = server.CreateSetupMessage(1e-9, len(ys), xs)
    response = server.ProcessRequest(client.CreateRequest(ys))
    theirs_count = client.GetIntersectionSize(setup, response)
    theirs, theirs_cpu = time.perf_counter() - start, _cpu() - cpu
    assert theirs_count == result.cardinality
    print(
        f"  openmined-psi 2.0.6 on the same data (P-256, one thread, cardinality only): "
        f"{theirs:.1f} s wall, {theirs_cpu:.1f} s CPU"
    )
    print(
        f"  ratio openmined / ours: {theirs / ours:.2f}x wall, "
        f"{theirs_cpu / ours_cpu:.2f}x CPU (ours on {WORKERS} processes)"
    )


def _fake_hash(scalar: bytes, items: Sequence[bytes]) -> bytes:
    """Stand-in for hash-and-mask: SHA-256 of the item, XOR the scalar (commutes, like X25519)."""
    digests = b"".join(hashlib.sha256(item).digest() for item in items)
    return _fake_mask(scalar, digests)


def _fake_mask(scalar: bytes, blob: bytes) -> bytes:
    key = np.frombuffer(scalar, np.uint8)
    return (np.frombuffer(blob, np.uint8).reshape(-1, 32) ^ key).tobytes()


def bench_psi_memory(n: int) -> None:
    """Peak memory of the PSI data path at n x n: the real streaming, sorting and matching
    code, with the group operations replaced by a cheap commuting stand-in (XOR), so the
    run takes minutes instead of the ~1,600 CPU-s of real X25519 at 10M."""
    from collabzone.techniques.linking import _psi

    _psi._hash_and_mask, _psi._mask = _fake_hash, _fake_mask  # type: ignore[assignment]
    sender = PsiSender.from_batches(lambda: _emails(0, n, True), workers=WORKERS)
    receiver = PsiReceiver.from_batches(lambda: _emails(n // 2, n + n // 2, True), workers=WORKERS)
    start = time.perf_counter()
    result = intersect(sender, receiver, _relay)
    assert result.cardinality == n - n // 2
    own, kid = _peak_mib()
    print(
        f"PSI data path {n:,} x {n:,} (group operations stubbed): {time.perf_counter() - start:.0f}"
        f" s; peak RSS {own:,.0f} MiB main process, {kid:,.0f} MiB largest worker"
    )


def _oprf_chunk(args: tuple[int, list[bytes]]) -> int:
    k, values = args
    return len(oprf_tokens("email", values, OprfShareServer(1, k).evaluate))


def _mul_chunk(args: tuple[int, bytes, int]) -> int:
    k, point, count = args
    for _ in range(count):
        mul(point, k)
    return count


def bench_oprf(n: int) -> None:
    k = random_scalar(os.urandom)
    values = [f"customer{i}@example.com".encode() for i in range(n)]
    size = -(-n // (WORKERS * 4))
    chunks = [(k, values[i : i + size]) for i in range(0, n, size)]
    with ProcessPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        done = sum(pool.map(_oprf_chunk, chunks))
        ours = time.perf_counter() - start
        point = hash_to_group(b"x", b"bench")
        start = time.perf_counter()
        mults = sum(pool.map(_mul_chunk, [(k, point, n // WORKERS)] * WORKERS))
        raw = time.perf_counter() - start
    assert done == n and 0 < k < L
    print(f"OPRF tokenisation, {n:,} records, {WORKERS} processes: {n / ours:,.0f} records/s")
    print(f"  raw ed25519 scalar multiplications: {mults / raw:,.0f} /s")
    print(f"  ratio records / multiplications: {(n / ours) / (mults / raw):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--psi-n", type=int, default=1_000_000)
    parser.add_argument("--oprf-n", type=int, default=20_000)
    parser.add_argument("--skip-openmined", action="store_true")
    parser.add_argument("--only", choices=["prepare", "stream", "psi", "psi-memory", "oprf"])
    parser.add_argument("--stream-rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    args = parser.parse_args()
    print(f"cores: {WORKERS}")
    if args.only in (None, "prepare"):
        bench_prepare(args.rows)
    if args.only in (None, "stream"):
        bench_prepare_stream(args.stream_rows)
    if args.only in (None, "oprf"):
        bench_oprf(args.oprf_n)
    if args.only == "psi-memory":
        bench_psi_memory(args.psi_n)
    if args.only in (None, "psi"):
        bench_psi(args.psi_n, not args.skip_openmined)


if __name__ == "__main__":
    main()
