"""Secret-shared statistics with three real MPyC server processes, and HE aggregation.

    .venv/bin/python benchmarks/mpc.py                 # 20,000 records, 3 columns
    .venv/bin/python benchmarks/mpc.py --rows 100000 --he-values 100000
    .venv/bin/python benchmarks/mpc.py --only survey --respondents 10000 --questions 20

MPC part: Adult's age, education-num and hours-per-week (repeated to ``--rows``) are split
on the provider's side into 3 Shamir shares (t = 1), sealed into three server stores, and
each report runs in three server processes on 127.0.0.1 ports. Printed per report: the
wall time (process start-up included), the servers' time inside MPyC, the same
statistics written directly in MPyC (benchmarks/_mpc_raw.py, plain shares, no checks, no
sealing) and plaintext numpy in the same run, with ratios.

HE part: ``--providers`` providers each encrypt ``--he-values`` values under the
recipient's CKKS public context; the mediator adds them; the recipient decrypts. Printed:
time per step, ciphertext bytes per provider, and numpy's sum for comparison.

Survey part: ``--respondents`` answer ``--questions`` questions of 4 answers each; the
browser's split and seal run in Python (same field, same Shamir points, same ECDH/AES-GCM
sealing); the zone files each answer; each server opens its inbox and stores its shares;
the ``sum`` report runs in three MPyC processes; the recipient opens the counts, checked
against plaintext.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from collabzone.keys import new_master_key  # noqa: E402
from collabzone.techniques.mpc import ReportSpec, ShareStore, open_report, split_upload  # noqa: E402
from collabzone.techniques.mpc._he import RecipientKeys, aggregate, encrypt  # noqa: E402
from collabzone.techniques.mpc._survey import Question  # noqa: E402

ADULT = Path("/work/shared/data/uci_adult_full/adult.data")
BOUNDS = {"age": (0.0, 100.0), "education_num": (0.0, 20.0), "hours": (0.0, 100.0)}


def _ports() -> list[str]:
    sockets = [socket.socket() for _ in range(3)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return [arg for p in ports for arg in ("-P", p)]


def _run3(commands: list[list[str]], env: dict[str, str]) -> float:
    started = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=3600)
        if proc.returncode:
            raise SystemExit(err.decode()[-2000:])
    return time.perf_counter() - started


def bench_mpc(rows: int, tmp: Path, repeat: int = 1) -> None:
    base = np.loadtxt(ADULT, delimiter=",", usecols=(0, 4, 12))
    reps = -(-rows // len(base))
    table = np.tile(base, (reps, 1))[:rows]
    data = {"age": table[:, 0], "education_num": table[:, 1], "hours": table[:, 2]}
    key = new_master_key()
    c0, t0 = time.process_time(), time.perf_counter()
    packages = split_upload("adult", "census", data, BOUNDS, reports=["mean", "variance", "correlation"],
                            recipients=["ministry"], min_group_size=10)  # fmt: skip
    t_split, c_split = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    stores = []
    for i, package in enumerate(packages):
        store = ShareStore(tmp / f"server{i}", key)
        store.put(package)
        stores.append(store)
        for column, shares in package["shares"].items():  # the baseline's plain share files
            (tmp / f"raw{i}.{column}.bin").write_bytes(base64.b64decode(shares))
    t_seal = time.perf_counter() - t0
    print(f"MPC, {rows:,} records x 3 columns, 3 servers (t=1)")
    print(f"  provider split: {t_split:.2f} s ({c_split / (3 * rows) * 1e6:.2f} us CPU per value, "
          f"3 shares each)   servers seal: {t_seal:.2f} s (3 stores)")  # fmt: skip
    env = {**os.environ, "COLLABZONE_MASTER_KEY": key, "PYTHONPATH": str(ROOT / "src")}
    matrix = np.vstack([np.clip(v, *BOUNDS[c]) for c, v in data.items()])
    t0 = time.perf_counter()
    exact = {"mean": matrix.mean(axis=1), "variance": matrix.var(axis=1, ddof=1),
             "correlation": np.corrcoef(matrix)[np.triu_indices(3, 1)]}  # fmt: skip
    t_np = time.perf_counter() - t0
    ours = dict.fromkeys(("mpc", "load", "mpc_cpu", "load_cpu"), 0.0)
    raws = dict(ours)
    for name in ("mean", "variance", "correlation"):
        spec = ReportSpec(name, ("adult",), tuple(data), "ministry")
        (tmp / "report.json").write_text(json.dumps(spec.to_json()))
        ports = _ports()
        commands = [[sys.executable, "-m", "collabzone.techniques.mpc._process", "--store", str(s.root),
                     "--report", str(tmp / "report.json"), "--shares-to", str(tmp / f"out{i}.json"),
                     *ports, "-I", str(i)] for i, s in enumerate(stores)]  # fmt: skip
        runs, raw_runs = [], []
        for _ in range(repeat):  # alternate the two; keep each one's fastest run
            wall = _run3(commands, env)
            outputs = [json.loads((tmp / f"out{i}.json").read_text()) for i in range(3)]
            runs.append((_times([o["seconds"] for o in outputs]), wall))
            ports = _ports()
            raw_commands = [[sys.executable, str(ROOT / "benchmarks" / "_mpc_raw.py"), name,
                             str(tmp / f"rawout{i}.json"), *[str(tmp / f"raw{i}.{c}.bin") for c in data],
                             *ports, "-I", str(i)] for i in range(3)]  # fmt: skip
            raw_wall = _run3(raw_commands, env)
            raw_docs = [json.loads((tmp / f"rawout{i}.json").read_text()) for i in range(3)]
            raw_runs.append((_times(raw_docs), raw_wall))
            ports = _ports()
            commands = [c[: c.index("-P")] + ports + ["-I", str(i)] for i, c in enumerate(commands)]
        times, wall = min(runs, key=lambda r: r[0]["mpc_cpu"] + r[0]["load_cpu"])
        raw_times, raw_wall = min(raw_runs, key=lambda r: r[0]["mpc_cpu"] + r[0]["load_cpu"])
        result = open_report(outputs, "ministry")["result"]
        got = (np.array(result["matrix"])[np.triu_indices(3, 1)] if name == "correlation"
               else np.array([result[c] for c in data]))  # fmt: skip
        for key in ours:
            ours[key] += times[key]
            raws[key] += raw_times[key]
        scale = np.array([BOUNDS[c][1] - BOUNDS[c][0] for c in data])
        raw_values = np.array(raw_docs[0]["values"])
        raw_got = {"mean": raw_values * scale + [BOUNDS[c][0] for c in data],
                   "variance": raw_values * scale**2, "correlation": raw_values}[name]  # fmt: skip
        error = float(np.max(np.abs(got - exact[name]) / np.maximum(np.abs(exact[name]), 1e-9)))
        raw_error = float(
            np.max(np.abs(raw_got - exact[name]) / np.maximum(np.abs(exact[name]), 1e-9))
        )
        for label, t, w, e in (
            ("collabzone:", times, wall, error),
            ("raw MPyC:", raw_times, raw_wall, raw_error),
        ):
            print(f"  {name if label[0] == 'c' else '':<12} {label:<11} wall {w:6.2f} s | load {t['load']:5.2f} s "
                  f"(CPU {t['load_cpu']:5.2f} s) | in MPyC {t['mpc']:6.2f} s (CPU {t['mpc_cpu']:6.2f} s) "
                  f"| rel. error {e:.1e}")  # fmt: skip
    print("  mean+variance+correlation, collabzone / raw MPyC (CPU: sum over the 3 servers):")
    for label, key in (("in MPyC, wall", "mpc"), ("in MPyC, CPU", "mpc_cpu")):
        print(
            f"    {label:<22} {ours[key]:7.2f} s / {raws[key]:7.2f} s = {ours[key] / raws[key]:.2f}x"
        )
    for label, a, b in (
        ("load + MPyC, wall", "load", "mpc"),
        ("load + MPyC, CPU", "load_cpu", "mpc_cpu"),
    ):
        mine, theirs = ours[a] + ours[b], raws[a] + raws[b]
        print(f"    {label:<22} {mine:7.2f} s / {theirs:7.2f} s = {mine / theirs:.2f}x")
    print(
        f"  numpy plaintext: {t_np * 1000:.2f} ms; collabzone in MPyC (wall) / numpy = {ours['mpc'] / t_np:,.0f}x"
    )


def _times(docs: list[dict[str, float]]) -> dict[str, float]:
    """The servers' times: wall, the slowest server's; CPU, the sum over the servers."""
    return {"mpc": max(d["mpc"] for d in docs), "load": max(d["load"] for d in docs),
            "mpc_cpu": sum(d["mpc_cpu"] for d in docs), "load_cpu": sum(d["load_cpu"] for d in docs)}  # fmt: skip


def _raw_tenseal(
    public: bytes, keys: RecipientKeys, vectors: list[np.ndarray]
) -> tuple[float, float, float]:
    """The same pipeline written directly in TenSEAL: encrypt 4096-slot chunks and
    serialise them, deserialise and add in place, decrypt (seconds: per provider, sum, decrypt)."""
    import tenseal as ts

    slots = 4096
    t0 = time.process_time()
    sent = []
    for v in vectors:  # each provider loads the public context, as the mediator does
        context = ts.context_from(public)
        sent.append([ts.ckks_vector(context, v[i : i + slots].tolist()).serialize()
                     for i in range(0, len(v), slots)])  # fmt: skip
    t_enc = (time.process_time() - t0) / len(vectors)
    t0 = time.process_time()
    context = ts.context_from(public)
    totals = []
    for parts in zip(*sent, strict=True):
        total = ts.ckks_vector_from(context, parts[0])
        for part in parts[1:]:
            total += ts.ckks_vector_from(context, part)
        totals.append(total.serialize())
    t_sum = time.process_time() - t0
    t0 = time.process_time()
    for part in totals:
        ts.ckks_vector_from(keys.context, part).decrypt()
    return t_enc, t_sum, time.process_time() - t0


def bench_he(providers: int, values: int) -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.integers(0, 100, values).astype(float) for _ in range(providers)]
    keys = RecipientKeys.generate()
    public = keys.public_context()
    t0 = time.process_time()
    ciphertexts = [encrypt(public, list(v)) for v in vectors]
    t_enc = time.process_time() - t0
    t0 = time.process_time()
    total = aggregate(public, ciphertexts, min_providers=providers)
    t_agg = time.process_time() - t0
    t0 = time.process_time()
    opened = np.array(keys.decrypt(total))
    t_dec = time.process_time() - t0
    t0 = time.process_time()
    exact = np.sum(vectors, axis=0)
    t_np = time.process_time() - t0
    error = float(np.abs(opened - exact).max())
    raw_enc, raw_sum, raw_dec = _raw_tenseal(public, keys, vectors)
    ours = t_enc / providers + t_agg + t_dec
    raw = raw_enc + raw_sum + raw_dec
    print(f"HE (TenSEAL CKKS, N=8192), {providers} providers x {values:,} values (CPU seconds)")
    print(f"  encrypt {t_enc / providers:.3f} s per provider, {len(ciphertexts[0]) / 1e6:.2f} MB ciphertext "
          f"each ({len(total) / 1e6:.2f} MB total to the recipient)")  # fmt: skip
    print(
        f"  mediator sum {t_agg:.3f} s   recipient decrypt {t_dec:.3f} s   max abs error {error:.2e}"
    )
    print(
        f"  raw TenSEAL: encrypt {raw_enc:.3f} s per provider, sum {raw_sum:.3f} s, decrypt {raw_dec:.3f} s"
    )
    print(f"  one provider's encrypt + sum + decrypt: collabzone {ours:.2f} s, raw TenSEAL {raw:.2f} s "
          f"= {ours / raw:.2f}x")  # fmt: skip
    print(
        f"  numpy sum {t_np * 1000:.3f} ms; HE pipeline / numpy = {(t_enc + t_agg + t_dec) / t_np:,.0f}x"
    )


def bench_survey(respondents: int, questions: int, answers: int, tmp: Path) -> None:
    """The survey module end to end, the browser's split and seal simulated in Python."""
    from collabzone.techniques.mpc import (
        ProcessDriver,
        SurveyBox,
        SurveySpec,
        open_bundle,
        publish_server_key,
    )
    from collabzone.techniques.mpc._survey import one_hot, read_counts, seal, split_answers
    from collabzone.techniques.mpc._survey_box import open_inbox, package

    key = new_master_key()
    os.environ["COLLABZONE_MASTER_KEY"] = key
    stores = [ShareStore(tmp / f"survey-server{i}", key) for i in range(3)]
    for i, store in enumerate(stores):
        publish_server_key(tmp / "surveys", f"s{i}", store.inbox_public())
    spec = SurveySpec(
        title="benchmark",
        questions=tuple(
            Question(f"q{q}", tuple(str(a + 1) for a in range(answers))) for q in range(questions)
        ),
        recipient="ministry", dataset="members", servers=("s0", "s1", "s2"),
        invitations=respondents, threshold=1, min_respondents=10,
    )  # fmt: skip
    box, tokens = SurveyBox.create(tmp / "surveys", spec)
    keys = box.document()["keys"]
    rng = np.random.default_rng(0)
    choices = rng.integers(0, answers, (respondents, questions))
    t_browser = t_zone = 0.0
    for token, chosen in zip(tokens, choices, strict=True):
        t0 = time.perf_counter()
        parts = split_answers(one_hot(spec, [int(c) for c in chosen]), 3, 1)
        sealed = [seal(k, parts[i], box.id, i) for i, k in enumerate(keys)]
        t1 = time.perf_counter()
        box.answer(token, sealed)
        t_zone += time.perf_counter() - t1
        t_browser += t1 - t0
    t0 = time.perf_counter()
    width = len(spec.columns())
    opened = [
        open_inbox(box.inbox(i), s.inbox_key(), box.id, i, width) for i, s in enumerate(stores)
    ]
    t_open = (time.perf_counter() - t0) / 3
    common = sorted(opened[0])
    t0 = time.perf_counter()
    for i, store in enumerate(stores):
        store.put(package(spec, box.id, i, opened[i], common))
    t_put = (time.perf_counter() - t0) / 3
    report = ReportSpec("sum", (f"survey-{box.id}",), tuple(spec.columns()), "ministry")
    t0 = time.perf_counter()
    bundle = ProcessDriver([s.root for s in stores], tmp / "outbox")(report)
    t_mpc = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = open_bundle(bundle, "ministry")
    counts = read_counts(spec, result["result"], result["rows"])
    t_recipient = time.perf_counter() - t0
    exact = [np.bincount(choices[:, q], minlength=answers).tolist() for q in range(questions)]
    got = [list(q["counts"].values()) for q in counts["questions"]]
    assert got == exact, "survey counts differ from plaintext"
    print(f"Survey, {respondents:,} respondents x {questions} questions x {answers} answers, "
          f"3 servers (t=1); counts equal plaintext")  # fmt: skip
    print(
        f"  browser split+seal (Python twin): {t_browser / respondents * 1000:.2f} ms per respondent"
    )
    print(f"  zone intake (token check + 3 sealed files): {t_zone / respondents * 1000:.2f} ms per answer, "
          f"{t_zone:.1f} s in all")  # fmt: skip
    print(f"  each server: open its inbox {t_open:.1f} s, seal into its store {t_put:.1f} s")
    print(f"  report in 3 MPyC processes (wall, start-up included): {t_mpc:.1f} s; "
          f"recipient opens {t_recipient * 1000:.0f} ms")  # fmt: skip
    print(f"  report time after close (open + store + MPC + open): "
          f"{t_open + t_put + t_mpc + t_recipient:.1f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per report (fastest kept)")
    parser.add_argument("--providers", type=int, default=10)
    parser.add_argument("--he-values", type=int, default=100_000)
    parser.add_argument("--respondents", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--only", choices=["mpc", "he", "survey"])
    args = parser.parse_args()
    if args.only in (None, "mpc"):
        with tempfile.TemporaryDirectory() as tmp:
            bench_mpc(args.rows, Path(tmp), args.repeat)
    if args.only in (None, "he"):
        bench_he(args.providers, args.he_values)
    if args.only in (None, "survey"):
        with tempfile.TemporaryDirectory() as tmp:
            bench_survey(args.respondents, args.questions, 4, Path(tmp))


if __name__ == "__main__":
    main()
