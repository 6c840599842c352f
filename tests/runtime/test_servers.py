"""Integration against real servers on loopback: the customer endpoint (`serve`), the HTTP salesman
adapters, and the SOP store on a Chroma server started with `chroma run`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import HERE, SCRIPTED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """A real uvicorn server in a thread on a free loopback port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_served_customer_answers_an_openai_client(store_dir: Path, corpus, fast_config) -> None:
    import openai

    from grouped_sim.app.build import build_deps
    from grouped_sim.app.serve import CustomerService, create_app, load_served_profiles
    from grouped_sim.config import SimulatorMode
    from grouped_sim.graphs.plan import RunSettings

    profile_file = store_dir.parent / "profile.json"
    profile_file.write_text(next(d for d in corpus if d.profile).profile.model_dump_json(indent=2), encoding="utf-8")
    config = fast_config.model_copy(update={"mode": SimulatorMode.full})
    service = CustomerService(load_served_profiles(profile_file, "food-delivery"), build_deps(RunSettings(salesman=SCRIPTED, sop_db=str(store_dir)), config))
    with serving(create_app(service, api_key="s3cret")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["customer-0"]
        messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "Hi, is this the owner? It's Alex from QuickBite."}]
        raw = client.chat.completions.with_raw_response.create(model="customer-0", messages=messages, seed=11)
        first = raw.parse()
        assert first.choices[0].message.role == "assistant" and first.choices[0].message.content.strip()
        extra = raw.http_response.json()["grouped_sim"]
        assert extra["action"] in {"speak", "hang_up", "agree", "refuse", "callback"} and extra["stage"]
        again = client.chat.completions.create(model="customer-0", messages=messages, seed=11)
        assert again.choices[0].message.content == first.choices[0].message.content  # stateless and seeded
        follow = messages + [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "We charge less commission than the big apps."}]
        assert client.chat.completions.create(model="customer-0", messages=follow, seed=12).choices[0].message.content.strip()
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).chat.completions.create(model="customer-0", messages=messages)


def _agent_app(seen: list[dict]):
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/hook")
    def hook(body: dict) -> dict:
        seen.append(body)
        n = sum(1 for t in body["history"] if t["role"] == "salesman")
        return {"messages": [f"Webhook move {n}, part one.", f"Webhook move {n}, part two."]}

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        seen.append(body)
        n = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"Endpoint move {n}."}, "finish_reason": "stop"}]}

    return app


def _run(items, salesman: str, config, out: Path):
    from grouped_sim.app.build import build_deps
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunSettings

    settings = RunSettings(salesman=salesman)
    run_simulation(items, settings, config, out, deps=lambda: build_deps(settings, config))
    from grouped_sim.corpus import read_corpus

    return read_corpus(out / "dialogues.jsonl")


def test_http_callable_and_replay_adapters_drive_real_runs(tmp_path: Path, items, corpus, corpus_path: Path, fast_config) -> None:
    seen: list[dict] = []
    config = fast_config.model_copy(update={"runtime": fast_config.runtime.model_copy(update={"concurrency": 2})})
    with serving(_agent_app(seen)) as url:
        [hooked] = _run(items[:1], f"webhook:{url}/hook", config, tmp_path / "hook")
        [ended] = _run(items[:1], f"endpoint:agent@{url}/v1", config, tmp_path / "endpoint")
    salesman = [t.text for t in hooked.salesman_turns()]
    assert salesman[:2] == ["Webhook move 0, part one.", "Webhook move 0, part two."]  # several messages in one move
    assert seen[0]["dialogue_id"] == hooked.id and seen[0]["history"] == []
    assert seen[1]["history"][:2] == [{"role": "salesman", "text": salesman[0]}, {"role": "salesman", "text": salesman[1]}]
    assert [t.text for t in ended.salesman_turns()] == ["Endpoint move 0.", "Endpoint move 1."]
    chat_body = next(b for b in seen if "messages" in b and "model" in b and len(b["messages"]) > 1)
    assert chat_body["model"] == "agent" and chat_body["messages"][0]["role"] == "assistant"

    [asynced] = _run(items[1:2], f"python:{HERE / 'agents.py'}:two_messages", config, tmp_path / "async")
    assert [t.text for t in asynced.turns[:2]] == ["Sorry, line 0 broke up.", "Hi, is this the owner of the restaurant? It's Alex from QuickBite."]

    source = next(d for d in corpus if d.id == items[2].source)
    [replayed] = _run(items[2:3], f"replay:{corpus_path}", config, tmp_path / "replay")
    real_moves = [t.text for t in source.salesman_turns()]
    assert [t.text for t in replayed.salesman_turns()] == real_moves[: len(replayed.salesman_turns())]
    assert replayed.customer_turns()[0].text  # the simulated customer answered the real salesman


@pytest.fixture()
def chroma_server(store_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    chroma = Path(sys.executable).parent / "chroma"
    data = tmp_path / "served_db"
    shutil.copytree(store_dir, data)
    port = free_port()
    proc = subprocess.Popen([str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("chroma run did not come up")
    yield url, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)


def test_sop_store_on_a_chroma_server(chroma_server, store, items, fast_config) -> None:
    import asyncio

    from grouped_sim.app.build import build_deps
    from grouped_sim.config import SimulatorMode
    from grouped_sim.graphs.graph import build_graph, retrieve_chains
    from grouped_sim.graphs.plan import RunSettings
    from grouped_sim.graphs.simulation import run_dialogue
    from grouped_sim.sop_db.store import SOPStore

    url, proc = chroma_server
    remote = SOPStore(url)
    assert remote.count() == store.count()
    text = items[0].profile.as_text()
    assert [c.id for c in remote.retrieve(text, k=4)] == [c.id for c in store.retrieve(text, k=4)]
    for domain, stage in ((items[0].domain, None), (items[0].domain, "price_objection")):
        assert [c.id for c in remote.retrieve(text, k=4, domain=domain, stage=stage)] == [c.id for c in store.retrieve(text, k=4, domain=domain, stage=stage)]
    assert remote.tag_stage("We charge less commission than the big apps.").stage == store.tag_stage("We charge less commission than the big apps.").stage

    config = fast_config.model_copy(update={"mode": SimulatorMode.full})
    deps = build_deps(RunSettings(salesman=SCRIPTED, sop_db=url), config)
    assert retrieve_chains(deps, items[0].profile, items[0].domain, items[0].source)  # K_p comes from the server
    proc.terminate()
    proc.wait(timeout=20)
    # The server is gone: that dialogue fails, blamed on the store.
    down = asyncio.run(run_dialogue(build_graph(), deps, items[0], seed=1, dialogue_id="d-down", index=0, meta={}))
    assert down.termination_reason.value == "error" and down.error["who"] == "store"
