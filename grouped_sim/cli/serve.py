"""`grouped-sim serve`: the simulated customer as an OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, label, run_config
from grouped_sim.config import DEFAULT_CUSTOMER_SPEC


def serve(
    profile: Annotated[Optional[Path], typer.Option("--profile", help="JSON file with one profile, or JSONL with several (model ids customer-0, customer-1, ...). Default with --sim: the sim folder's training customers.")] = None,
    sim: Annotated[Optional[Path], typer.Option("--sim", help="A sim folder from `grouped-sim fit`: its store, taxonomy, fitted dynamics (and customers, without --profile).")] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind. Loopback by default; anything else needs --api-key (or --insecure-no-auth).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8011,
    customer: Annotated[str, typer.Option("--customer", help="Model spec of the customer model (default: the embedded 1.5B on llama.cpp, llamacpp:default).")] = DEFAULT_CUSTOMER_SPEC,
    manager: Annotated[str, typer.Option("--manager", help="'light' (fitted dynamics with --sim, else the hand-set rules), 'prior', or a model spec for an LLM manager.")] = "light",
    sop_db: Annotated[Optional[str], typer.Option("--sop-db", help="SOP store folder or Chroma server URL (needed unless --mode prompt-only).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="full | no-sop | prompt-only.")] = "full",
    domain: Annotated[Optional[str], typer.Option("--domain", help="Domain of the call when the profile does not say.")] = None,
    api_key: Annotated[
        Optional[str], typer.Option("--api-key", help="Require 'Authorization: Bearer KEY' (the API and /docs). Default: $GROUPED_SIM_SERVE_KEY, or no key.")
    ] = None,
    insecure_no_auth: Annotated[
        bool, typer.Option("--insecure-no-auth", help="Serve beyond loopback WITHOUT a key (anyone who can reach the port can use it).")
    ] = False,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="YAML with SimulationConfig fields.")] = None,
    max_request_bytes: Annotated[int, typer.Option("--max-request-bytes", min=1024, help="Largest request body; larger is refused with 413.")] = 64 * 1024,
    max_prompt_tokens: Annotated[int, typer.Option("--max-prompt-tokens", min=16, help="Largest call (all message text) in the customer model's tokens; larger is a 400.")] = 1024,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1, max=256, help="Generations at once (parallel slots of a llama.cpp model, which batches them; give it runtime.llama.slots as many).")] = 4,
    max_queue: Annotated[int, typer.Option("--max-queue", min=0, help="Requests waiting for a generation; beyond that the server answers 503.")] = 64,
) -> None:
    """Serve the simulated customer at http://HOST:PORT/v1/chat/completions for any agent framework.

    Send the call so far as chat messages: your agent's lines as role 'user', the customer's earlier
    replies as role 'assistant'. The answer is the customer's next line; `finish_reason` is
    'end_call' when the customer hangs up, agrees, refuses or asks for a callback. Binding beyond
    loopback needs --api-key (or --insecure-no-auth). Ctrl-C or one SIGTERM stops the server.
    """
    from grouped_sim.app.build import build_deps
    from grouped_sim.app.serve import CustomerService, ServeLimits, bind, create_app, is_loopback, load_served_profiles, run_server
    from grouped_sim.errors import InputError
    from grouped_sim.graphs.fit import SimFolder, sim_profiles
    from grouped_sim.graphs.plan import RunSettings
    from grouped_sim.graphs.salesman import SyncSalesman

    key = api_key or os.environ.get("GROUPED_SIM_SERVE_KEY") or None
    if not is_loopback(host) and key is None and not insecure_no_auth:
        raise InputError(f"--host {host}: serving beyond loopback needs --api-key KEY (or $GROUPED_SIM_SERVE_KEY); pass --insecure-no-auth to serve without one anyway")
    limits = ServeLimits(max_request_bytes=max_request_bytes, max_prompt_tokens=max_prompt_tokens, max_concurrent=max_concurrent, max_queue=max_queue)
    config = run_config(config_file, mode)
    folder = SimFolder(sim.resolve()) if sim is not None else None
    if folder is not None:
        folder.check()
    if profile is None and folder is None:
        raise InputError("give --profile FILE (or --sim DIR to serve a fitted folder's customers)")
    items = load_served_profiles(profile, domain) if profile is not None else sim_profiles(folder, len(folder.load_profiles("train")), config.seed)  # type: ignore[union-attr]
    sock = bind(host, port)  # before the model loads: a port in use fails in a second
    if key is None and not is_loopback(host):
        label(console, "warning:", "yellow", f"serving on {host} without an API key (--insecure-no-auth)")
    settings = RunSettings(customer=customer, manager=manager, sop_db=sop_db, sim=str(folder.root) if folder else None, sim_digest=folder.digest() if folder else None)
    console.print(f"loading the customer model ({customer}) ...")
    caller = SyncSalesman("caller", lambda call: [])  # the client is the salesman: the graph's own never speaks
    deps = build_deps(settings, config, salesman=caller, items=items)
    service = CustomerService(items, deps, limits)
    ready = f"serving {len(items)} profile(s) at http://{host}:{port}/v1 (models: {', '.join(service.model_ids())})"
    run_server(create_app(service, key), sock, limits, on_ready=lambda: console.print(ready))
