"""Shared fixtures: the shipped sample corpus, a real SOP store built from it, the embedded model.

Everything here is the real thing (real Chroma on disk, real MiniLM, real SmolLM2), built once per
test session because loading costs more than most tests.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from grouped_sim.corpus import read_corpus  # noqa: E402
from grouped_sim.data import sample_corpus_path  # noqa: E402
from grouped_sim.schemas import Dialogue  # noqa: E402


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    return sample_corpus_path()


@pytest.fixture(scope="session")
def corpus(corpus_path: Path) -> list[Dialogue]:
    return read_corpus(corpus_path)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory, corpus: list[Dialogue]) -> Path:
    """A real Chroma store built from the whole sample corpus (read-only for tests: copy before writing)."""
    from grouped_sim.sop_db.store import SOPStore

    path = tmp_path_factory.mktemp("sop") / "db"
    SOPStore(path, create=True).upsert_dialogues(corpus)
    return path


@pytest.fixture(scope="session")
def store(store_dir: Path):
    from grouped_sim.sop_db.store import SOPStore

    return SOPStore(store_dir)


@pytest.fixture(scope="session")
def embedded_chat():
    """The embedded SmolLM2 on transformers (hf:): for what is about transformers itself (loaded
    once; weights are shared by every role)."""
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model

    return build_chat_model("hf:smollm2", GenerationParams(max_new_tokens=24))


@pytest.fixture(scope="session")
def embedded_llama():
    """The same SmolLM2 on llama.cpp (llamacpp:smollm2, transcript form like hf:smollm2): for tests
    that exercise the simulator with a real small model. One llama.cpp thread: the test process
    shares 2 cores with torch's own threads (embeddings), and llama.cpp threads that wait on each
    other stall when a core is taken (an 8-token reply measured 0.1 s on 1 thread, up to 20 s on 2)."""
    from grouped_sim.config import GenerationParams, LlamaServerParams, RuntimeParams
    from grouped_sim.models import build_chat_model

    return build_chat_model("llamacpp:smollm2", GenerationParams(max_new_tokens=24), RuntimeParams(llama=LlamaServerParams(threads=1)))


def raw(dialogue: Dialogue) -> Dialogue:
    """A team's raw transcript as it arrives: no profile, no stage labels."""
    turns = [t.model_copy(update={"sop_stage": None}) for t in dialogue.turns]
    return dialogue.model_copy(update={"profile": None, "turns": turns, "meta": {}})


@pytest.fixture(scope="session")
def raw_corpus(tmp_path_factory: pytest.TempPathFactory, corpus: list[Dialogue]) -> Path:
    """The sample corpus without profiles or stage labels (38 calls, every domain and outcome)."""
    from grouped_sim.corpus import write_corpus

    path = tmp_path_factory.mktemp("raw") / "calls.jsonl"
    write_corpus(path, [raw(d) for d in corpus[::2]])
    return path


@pytest.fixture(scope="session")
def fitted_dir(tmp_path_factory: pytest.TempPathFactory, raw_corpus: Path) -> Path:
    """A sim folder fitted on `raw_corpus` (read-only for tests: copy it before damaging it)."""
    from grouped_sim.graphs.fit import FitSettings, run_fit

    out = tmp_path_factory.mktemp("fit") / "sim"
    run_fit(FitSettings(corpus=str(raw_corpus), holdout=0.25, seed=1), out)
    return out


@pytest.fixture(scope="session")
def ray_runtime(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray instance for the session (starting one takes seconds), on 127.0.0.1 as the
    CLI's own local instance is (grouped_sim/graphs/ray_executor.py import_ray): 2 CPUs, no
    dashboard. Its workers import the test doubles, so they get the repository on their path, and
    the flag file of the dying fake (the workers' environment is fixed when Ray starts)."""
    from grouped_sim.graphs.ray_executor import LOOPBACK_ENV, import_ray
    from tests.runtime.fakes import DIE_FLAG_ENV

    root = Path(__file__).resolve().parent.parent
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])), DIE_FLAG_ENV: str(tmp_path_factory.mktemp("die") / "flag")}
    before = {name: os.environ.get(name) for name in [*env, LOOPBACK_ENV]}
    os.environ.update(env)
    ray = import_ray(loopback=True)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1", f"the test Ray instance is not on loopback (ray imported before this fixture, or {LOOPBACK_ENV}=1)"
        yield ray
    finally:
        ray.shutdown()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
