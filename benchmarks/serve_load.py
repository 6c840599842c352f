"""Load test of `grouped-sim serve` on loopback: N concurrent clients plus one oversized request.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve_load.py [--clients 50] [--max-concurrent 8] [--tokens 8] [--limit-seconds 300]

Starts the real server (`grouped-sim serve`, the embedded SmolLM2 customer with its shipped
adapter) as a subprocess on a free loopback port, with a FAST customer: prompt-only mode (no
manager, no store) and a tiny token budget (`--tokens` new tokens per reply). Once it says it is
serving, all clients send one chat-completions request each at the same moment, and one more
client sends a 1 MB message. Records every latency, the status codes, how fast the oversized
request was refused, and how long the server takes to stop on one SIGTERM. Bounded: every request
has a timeout, the whole test stops after --limit-seconds, and the server is always stopped.

Results: benchmarks/results/serve_load.json (latency percentiles of the normal requests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent

SALESMAN_LINES = [
    "Hi, is this the owner of the restaurant? It's Alex from QuickBite.",
    "We take a lower commission than the big apps, would that help you?",
    "Could I send you the details by email?",
    "We can also help with delivery drivers on busy nights.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def load(url: str, clients: int, timeout: float) -> dict:
    import httpx

    async def normal(i: int, client: httpx.AsyncClient) -> tuple[int, float]:
        body = {"model": "customer-0", "seed": i, "messages": [{"role": "user", "content": SALESMAN_LINES[i % len(SALESMAN_LINES)]}]}
        started = time.monotonic()
        try:
            response = await client.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)
            return response.status_code, time.monotonic() - started
        except httpx.HTTPError:
            return -1, time.monotonic() - started

    async def oversized(client: httpx.AsyncClient) -> tuple[int, float, str]:
        await asyncio.sleep(0.2)  # while the others are queued and generating
        body = {"model": "customer-0", "messages": [{"role": "user", "content": "x" * 1_000_000}]}
        started = time.monotonic()
        try:
            response = await client.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)
            return response.status_code, time.monotonic() - started, response.text[:200]
        except httpx.HTTPError as exc:
            return -1, time.monotonic() - started, repr(exc)

    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as client:
        started = time.monotonic()
        results = await asyncio.gather(*(normal(i, client) for i in range(clients)), oversized(client))
        wall = time.monotonic() - started
    *normals, big = results
    ok = [latency for status, latency in normals if status == 200]
    statuses: dict[str, int] = {}
    for status, _ in normals:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "clients": clients,
        "statuses": statuses,
        "latency_s": {
            "p50": round(percentile(ok, 50), 2) if ok else None,
            "p95": round(percentile(ok, 95), 2) if ok else None,
            "max": round(max(ok), 2) if ok else None,
            "mean": round(statistics.mean(ok), 2) if ok else None,
        },
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 2) if wall else None,
        "oversized": {"status": big[0], "seconds": round(big[1], 3), "body": big[2]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-concurrent", type=int, default=8)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=8, help="new tokens per customer reply (the fast customer)")
    parser.add_argument("--customer", default="hf:smollm2+customer-sft")
    parser.add_argument("--limit-seconds", type=float, default=300.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gs-load-"))
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path

    profile = next(d for d in read_corpus(sample_corpus_path()) if d.profile).profile
    (work / "profile.json").write_text(profile.model_dump_json(), encoding="utf-8")
    (work / "fast.yaml").write_text(f"customer: {{max_new_tokens: {args.tokens}}}\nrole_guard_retries: 0\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from grouped_sim.cli.app import main; main()", "serve", "--profile", str(work / "profile.json"), "--mode", "prompt-only",
               "--customer", args.customer, "--config", str(work / "fast.yaml"), "--port", str(port), "--max-concurrent", str(args.max_concurrent), "--max-queue", str(args.max_queue)]
    started = time.monotonic()
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result: dict = {"config": {k: v for k, v in vars(args).items()}, "fast_customer": f"prompt-only mode, {args.tokens} new tokens per reply, {args.customer}"}
    try:
        ready = None
        while time.monotonic() - started < args.limit_seconds:
            text = server.stdout.readline()  # type: ignore[union-attr]
            if not text:
                break
            if "serving" in text:
                ready = time.monotonic() - started
                break
        if ready is None:
            raise SystemExit(f"the server did not come up: exit {server.poll()}")
        result["startup_s"] = round(ready, 1)
        url = f"http://127.0.0.1:{port}"
        remaining = max(10.0, args.limit_seconds - (time.monotonic() - started))
        result["load"] = asyncio.run(asyncio.wait_for(load(url, args.clients, timeout=remaining), remaining))
        stop = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        result["sigterm_to_exit_s"] = round(time.monotonic() - stop, 2)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    result["machine"] = {"cpus": os.cpu_count(), "load_avg": [round(x, 1) for x in os.getloadavg()], "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
