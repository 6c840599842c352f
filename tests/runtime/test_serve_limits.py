"""`serve` under abuse: bounded input, bounded work, cancellation, shutdown, auth, OpenAI-shaped errors.

Every test here runs the real FastAPI app on a real uvicorn server on loopback, with a fake
customer model (tests/runtime/fakes.py), so nothing loads a model.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import ROOT
from tests.runtime.fakes import FakeCustomer, invoke, prompt_only_deps
from tests.runtime.test_servers import free_port, serving

HELLO = [{"role": "user", "content": "Hi, is this the owner? It's Alex from QuickBite."}]


def _service(corpus, customer: FakeCustomer | None = None, **limits):
    import grouped_sim.app.serve as serve
    from grouped_sim.graphs.plan import SimProfile

    profile = next(d for d in corpus if d.profile).profile
    _, _, deps = prompt_only_deps(customer)
    items = [SimProfile(profile=profile, domain="food-delivery", source="test")]
    if not hasattr(serve, "ServeLimits"):  # an older tree: no limits to set
        return serve.CustomerService(items, deps)
    return serve.CustomerService(items, deps, serve.ServeLimits(**limits))


def _app(service, key=None):
    from grouped_sim.app.serve import create_app

    return create_app(service, api_key=key)


def test_oversized_requests_are_refused_at_once_with_413(corpus) -> None:
    fake = FakeCustomer()
    with serving(_app(_service(corpus, fake, max_request_bytes=4096))) as url:
        big = {"model": "customer-0", "messages": [{"role": "user", "content": "x" * 1_000_000}]}
        started = time.monotonic()
        declared = httpx.post(f"{url}/v1/chat/completions", json=big, timeout=10)
        assert declared.status_code == 413 and time.monotonic() - started < 2.0
        assert declared.json()["error"]["code"] == "request_too_large" and "4096" in declared.json()["error"]["message"]

        def chunks():  # no Content-Length: counted as it arrives
            yield b'{"model": "customer-0", "messages": [{"role": "user", "content": "'
            for _ in range(64):
                yield b"y" * 1024
            yield b'"}]}'

        chunked = httpx.post(f"{url}/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"}, timeout=10)
        assert chunked.status_code == 413
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO}, timeout=10).status_code == 200
    assert fake.calls == 1  # the refused ones never reached the model


def test_prompt_tokens_and_message_count_are_bounded(corpus) -> None:
    with serving(_app(_service(corpus, max_prompt_tokens=64, max_messages=3))) as url:
        long = httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": [{"role": "user", "content": "price " * 400}]}, timeout=10)
        assert long.status_code == 400 and long.json()["error"]["code"] == "context_length_exceeded"
        many = httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO * 4}, timeout=10)
        assert many.status_code == 400 and "at most 3" in many.json()["error"]["message"]


def test_errors_are_openai_shaped_unknown_model_404_huge_seed_400(corpus) -> None:
    import openai

    with serving(_app(_service(corpus), key="k")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="gpt-4o", messages=HELLO)  # not silently the only profile
        assert missing.value.body["code"] == "model_not_found" and "customer-0" in missing.value.body["message"]
        seed = httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO, "seed": 2**70}, headers={"Authorization": "Bearer k"}, timeout=10)
        assert seed.status_code == 400 and seed.json()["error"]["param"] == "seed" and "64-bit" in seed.json()["error"]["message"]
        shape = httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": "hello"}, headers={"Authorization": "Bearer k"}, timeout=10)
        assert shape.status_code == 400 and set(shape.json()) == {"error"} and shape.json()["error"]["param"] == "messages"
        denied = httpx.get(f"{url}/v1/models", timeout=10)
        assert denied.status_code == 401 and set(denied.json()) == {"error"}
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": [{"role": "assistant", "content": "hi"}]}, headers={"Authorization": "Bearer k"}, timeout=10).status_code == 400


def test_docs_and_schema_are_behind_the_key(corpus) -> None:
    with serving(_app(_service(corpus), key="k")) as url:
        for path in ("/docs", "/openapi.json"):
            assert httpx.get(url + path, timeout=10).status_code == 401
            assert httpx.get(url + path, headers={"Authorization": "Bearer k"}, timeout=10).status_code == 200
        assert httpx.get(url + "/redoc", timeout=10).status_code == 404


def test_a_full_queue_answers_503_and_the_rest_are_served(corpus) -> None:
    slow = FakeCustomer(steps=20, step_seconds=0.02)
    results: list[int] = []
    with serving(_app(_service(corpus, slow, max_concurrent=1, max_queue=1))) as url:

        def ask() -> None:
            results.append(httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO}, timeout=30).status_code)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results)[:2] == [200, 200] and 503 in results


def test_a_client_that_leaves_cancels_its_generation(corpus) -> None:
    slow = FakeCustomer(steps=2000, step_seconds=0.01, running=threading.Event())  # 20 s unless cancelled
    with serving(_app(_service(corpus, slow))) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO}, timeout=httpx.Timeout(5, read=0.5))
        deadline = time.monotonic() + 5
        while slow.cancelled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.cancelled == 1, "the generation kept running after its client left"
        slow.steps = 1  # and the server still answers the next client
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": "customer-0", "messages": HELLO}, timeout=30).status_code == 200


SERVER = """
import sys
from tests.runtime.fakes import FakeCustomer, prompt_only_deps
from grouped_sim.app.serve import CustomerService, ServeLimits, bind, create_app, run_server
from grouped_sim.graphs.plan import load_profiles_file
items = load_profiles_file(sys.argv[1])
_, _, deps = prompt_only_deps(FakeCustomer(steps=100000, step_seconds=0.01))
limits = ServeLimits(shutdown_grace_seconds=1)
sock = bind("127.0.0.1", int(sys.argv[2]))
run_server(create_app(CustomerService(items, deps, limits)), sock, limits, on_ready=lambda: print("serving", flush=True))
"""


def test_the_first_sigterm_stops_a_server_busy_generating(tmp_path: Path, corpus, sub_env: dict) -> None:
    profiles = tmp_path / "p.jsonl"
    profiles.write_text(next(d for d in corpus if d.profile).profile.model_dump_json() + "\n", encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(profiles), str(port)], env=sub_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "serving"
        busy = threading.Thread(target=lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"messages": HELLO}, timeout=60), daemon=True)
        busy.start()
        time.sleep(1.0)  # the request is generating (for ~1000 s unless stopped)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        proc.wait(timeout=15)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _profile_file(tmp_path: Path, corpus) -> Path:
    path = tmp_path / "profile.json"
    path.write_text(next(d for d in corpus if d.profile).profile.model_dump_json(), encoding="utf-8")
    return path


class Loaded(Exception):
    """Raised instead of loading a model: the command got past its checks."""


def test_serve_refuses_a_public_host_without_a_key(tmp_path: Path, corpus, capsys, monkeypatch) -> None:
    import grouped_sim.app.build as build

    monkeypatch.delenv("GROUPED_SIM_SERVE_KEY", raising=False)
    monkeypatch.setattr(build, "build_deps", lambda *a, **k: (_ for _ in ()).throw(Loaded()))
    profile = _profile_file(tmp_path, corpus)
    port = str(free_port())
    refused = invoke(["serve", "--profile", str(profile), "--host", "0.0.0.0", "--port", port, "--mode", "prompt-only"], capsys)
    assert refused.code == 2 and "needs --api-key" in refused.output and refused.traceback is None
    allowed = invoke(["serve", "--profile", str(profile), "--host", "0.0.0.0", "--port", port, "--mode", "prompt-only", "--insecure-no-auth"], capsys)
    assert allowed.traceback is not None and "Loaded" in allowed.traceback  # went on to load the model


def test_serving_is_announced_only_once_the_port_is_bound(tmp_path: Path, corpus, capsys, monkeypatch) -> None:
    import grouped_sim.app.build as build

    monkeypatch.setattr(build, "build_deps", lambda *a, **k: prompt_only_deps()[2])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = invoke(["serve", "--profile", str(_profile_file(tmp_path, corpus)), "--port", str(port), "--mode", "prompt-only"], capsys)
    assert result.code == 2 and "cannot listen there" in result.output and "serving" not in result.output, result
