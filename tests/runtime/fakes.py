"""Test doubles that load no model: a customer model that answers at once (or slowly, token by
token, stopping when its caller cancels), and an in-process runner of the real CLI."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from grouped_sim.models.base import LocalChatModel

try:
    from grouped_sim.models.cancel import check_cancelled
except ImportError:  # an older tree without cancellation: lets these tests show what it did

    def check_cancelled() -> None:
        return None


class FakeCustomer(LocalChatModel):
    """Says `reply`; with `steps` > 1 it "generates" one step every `step_seconds`, checking for
    cancellation at each step as the real models do at each token."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    reply: str = "Who is this? I'm busy right now."
    steps: int = 1
    step_seconds: float = 0.0
    calls: int = 0
    cancelled: int = 0
    running: Any = None  # a threading.Event set while a generation runs

    @property
    def _llm_type(self) -> str:
        return "fake-customer"

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        self.calls += 1
        if self.running is not None:
            self.running.set()
        try:
            for _ in range(self.steps):
                try:
                    check_cancelled()
                except Exception:
                    self.cancelled += 1
                    raise
                time.sleep(self.step_seconds)
        finally:
            if self.running is not None:
                self.running.clear()
        return [self.reply for _ in prompts]


def prompt_only_deps(customer: LocalChatModel | None = None, salesman_spec: str | None = None) -> Any:
    """Participants of a prompt-only run with a fake customer (and a scripted salesman): no model loads."""
    from grouped_sim.app.build import build_deps
    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.plan import RunSettings

    from tests.runtime.conftest import SCRIPTED, fast_config_dict

    config = SimulationConfig.model_validate({**fast_config_dict(), "mode": "prompt-only"})
    settings = RunSettings(salesman=salesman_spec or SCRIPTED, customer="hf:smollm2")
    return settings, config, build_deps(settings, config, customer=customer or FakeCustomer())


@dataclass
class Result:
    code: int
    output: str  # stdout and stderr, whitespace collapsed
    traceback: str | None


_CLI_LOCK = threading.Lock()


def invoke(args: list[str], capsys: Any) -> Result:
    """Run the real console entry point in this process (no interpreter start, no model load)."""
    from grouped_sim.cli.app import main

    code, trace = 0, None
    with _CLI_LOCK:
        argv = sys.argv
        sys.argv = ["grouped-sim", *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # anything else escaped main(): the user would see a traceback
            code, trace = 1, traceback.format_exc()
        finally:
            sys.argv = argv
    captured = capsys.readouterr()
    return Result(code=code, output=" ".join((captured.out + captured.err).split()), traceback=trace)


def with_fake_customer(real: Any) -> Any:
    """`build_deps` as the CLI calls it, but every run gets a FakeCustomer: no weights load."""
    import inspect

    takes_items = "items" in inspect.signature(real).parameters

    def build(settings: Any, config: Any, salesman: Any = None, customer: Any = None, items: Any = ()) -> Any:
        extra = {"items": items} if takes_items else {}
        return real(settings, config, salesman=salesman, customer=FakeCustomer(), **extra)

    return build


SEEDED_REPLIES = [
    "Who is this? I'm busy right now.",
    "We already use another app, thanks.",
    "How much is the commission, exactly?",
    "Send me an email, I'll look later.",
    "Not interested, sorry.",
    "Hm, go on, I have a minute.",
]


class SeededCustomer(FakeCustomer):
    """A deterministic stand-in for a sampling model: the reply is a function of the prompt and the
    seed, so two runs agree only where every call got the same prompt and the same seed."""

    @property
    def _llm_type(self) -> str:
        return "seeded-fake-customer"

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        import hashlib

        super().generate_texts(prompts, stop, seed, max_new_tokens)  # counts the call, sleeps its steps
        picks = [int(hashlib.sha256(f"{seed}|{prompt}".encode()).hexdigest()[:8], 16) for prompt in prompts]
        return [SEEDED_REPLIES[p % len(SEEDED_REPLIES)] for p in picks]


def build_seeded(settings: Any, config: Any, items: Any = ()) -> Any:
    """`build_deps` with the seeded fake customer: a module-level function, so a Ray worker can
    import it and build the participants itself (the recipe of graphs/ray_executor.py)."""
    from grouped_sim.app.build import build_deps

    return build_deps(settings, config, customer=SeededCustomer(), items=items)


def build_slow_seeded(settings: Any, config: Any, items: Any = ()) -> Any:
    """The same, 0.3 s a customer call: dialogues stay in flight long enough to kill a worker under them."""
    from grouped_sim.app.build import build_deps

    return build_deps(settings, config, customer=SeededCustomer(steps=3, step_seconds=0.1), items=items)


def build_refusing(settings: Any, config: Any, items: Any = ()) -> Any:
    """A build that fails as a bad store path does: with an InputError."""
    from grouped_sim.errors import InputError

    raise InputError("/nowhere/sop_db: no SOP store here (a test's refusing build)")


DIE_FLAG_ENV = "GS_TEST_DIE_FLAG"


class DyingCustomer(SeededCustomer):
    """The seeded fake, whose worker process dies (SIGKILL, as the OOM killer or a crash in native
    code would) in the middle of a dialogue, once: the first call after the process's first one
    that finds the flag file named by $GS_TEST_DIE_FLAG renames it (one process wins), writes its
    pid there and kills itself. A retry finds no flag and goes on."""

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        if self.calls >= 1:
            die_if_flagged()
        return super().generate_texts(prompts, stop, seed, max_new_tokens)


def die_if_flagged() -> None:
    """Kill this process (SIGKILL, as a node or OOM kill would) if it is the first to take the flag
    file named by $GS_TEST_DIE_FLAG: it renames the file (one process wins) and writes its pid
    there first, so a test can name the dead worker. Without the flag, or once taken: nothing."""
    flag = os.environ.get(DIE_FLAG_ENV)
    if not flag:
        return
    try:
        os.rename(flag, flag + ".taken")
    except FileNotFoundError:
        return
    with open(flag + ".taken", "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def build_dying_seeded(settings: Any, config: Any, items: Any = ()) -> Any:
    """`build_deps` with the dying fake customer (0.1 s a call; see DyingCustomer)."""
    from grouped_sim.app.build import build_deps

    return build_deps(settings, config, customer=DyingCustomer(step_seconds=0.1), items=items)


class DyingSquares(BaseModel):
    """A `ray_map` recipe (graphs/ray_map.py) whose "model" squares numbers, 0.05 s a chunk. With
    `die` and the flag file of DIE_FLAG_ENV armed, the first worker to take it kills itself on
    its second chunk (SIGKILL, as a node or OOM kill would), so that chunk is in flight when it dies."""

    die: bool = False

    def mapper(self) -> Any:
        calls = [0]

        def square(chunk: list[int]) -> list[tuple[int, int]]:
            calls[0] += 1
            if self.die and calls[0] >= 2:
                die_if_flagged()
            time.sleep(0.05)
            return [(x * x, os.getpid()) for x in chunk]

        return square
