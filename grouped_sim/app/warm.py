"""Fill the per-machine caches that every demo and every report against the sample corpus reads.

Each of these is computed on first use anyway and kept in the cache folder (GROUPED_SIM_CACHE, else
~/.cache/grouped-sim); `make install` runs them once so that the first `make demo` pays for the
simulation and the judge, not for work that is the same on every machine:

- the embedded 1.5B's vocabulary, converted for the judge's reader (about 15 s);
- SmolLM2-135M de-quantised for transformers (the old default customer, training);
- the MiniLM vectors of the shipped sample corpus: its behaviour chains and moves as `sop build`
  embeds them, and its replies as a report against it reads them (IRS, the realism scorer): about
  20 s on 2 cores.

Nothing here changes a result: a cold cache gives the same figures, later.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def warm_reader_tokenizer() -> None:
    from grouped_sim.models.llamacpp import gguf_tokenizer, resolve_gguf

    gguf_tokenizer(str(resolve_gguf("default")[0]))


def warm_small_model() -> None:
    from grouped_sim.models.materialize import materialize_plain

    materialize_plain("smollm2")


def warm_sample_vectors() -> None:
    """Embed the sample corpus through the code that reads it: a store built (then dropped) and the
    reference side of a report, with the shipped realism scorer that `report` uses by default."""
    from grouped_sim.app.scoring import scorecard_context
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import REALISM_JUDGE, sample_corpus_path, shipped_scorer_path
    from grouped_sim.discriminator.realism import load_realism_scorer
    from grouped_sim.report import compute_report
    from grouped_sim.sop_db.store import build_store
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    corpus = read_corpus(sample_corpus_path())
    taxonomy = load_taxonomy(None)
    with tempfile.TemporaryDirectory(prefix="grouped-sim-warm-") as folder:
        build_store(Path(folder) / "sop_db", corpus, taxonomy=taxonomy)
    scorer = load_realism_scorer(shipped_scorer_path(REALISM_JUDGE)).score
    compute_report(corpus[:1], taxonomy_ids=taxonomy.ids, reference=corpus, scorer=scorer, context=scorecard_context(None))


STEPS: list[tuple[str, Callable[[], None]]] = [
    ("the judge reader's tokenizer", warm_reader_tokenizer),
    ("SmolLM2-135M for transformers", warm_small_model),
    ("MiniLM vectors of the sample corpus", warm_sample_vectors),
]


def warm_caches(say: Callable[[str], None]) -> None:
    """Run every step, telling `say` what each one took."""
    for name, step in STEPS:
        started = time.perf_counter()
        step()
        say(f"{name}: ready ({time.perf_counter() - started:.1f} s)")
