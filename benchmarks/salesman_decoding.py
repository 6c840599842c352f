"""The embedded salesman's sampling, measured on held-out contexts: which temperature and top-p.

    .venv/bin/python benchmarks/salesman_decoding.py          # about 4 minutes on 2 cores

`hf:smollm2` is the salesman of the embedded default (the agent under test when no other is given;
`make demo` uses the knn: stand-in instead). For every salesman move after the opener in the 15
"test" calls of the sample corpus (calls the customer adapter and the shipped scorers never saw),
the salesman continues the real history (its own transcript prompt, the simulator's seeds) once
per setting. Figures per setting, each with a 95 % bootstrap interval over calls:

- coherence acceptance of the move by the shipped coherence judge. The judge was trained on
  customer replies, so its validity on salesman moves is measured first, on the same contexts:
  ROC-AUC of the real move against the real move of another held-out call of the same domain;
- echo rate: moves that repeat a line already said in the call (the echo loops the issue saw at
  low temperature);
- length W1 to the real moves, in words.

Results: benchmarks/results/salesman_decoding.json.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [(0.3, 0.9), (0.5, 0.9), (0.7, 0.9), (0.7, 0.95), (1.0, 0.95)]
SEED0 = 5000


def held_out_moves() -> list[tuple[Any, list[Any], str]]:
    """(call, history, real move) for every salesman move after the opener in the test calls."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import role_split

    calls = read_corpus(sample_corpus_path())
    test = set(role_split([c.id for c in calls])["test"])
    return [(c, c.turns[:i], t.text) for c in calls if c.id in test for i, t in enumerate(c.turns) if t.role == "salesman" and i > 0]


def normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def echoes(history: list[Any], move: str) -> bool:
    """The move repeats a line already said in the call (either side), word for word."""
    said = {normalised(t.text) for t in history}
    return normalised(move) in said


def judge_validity(contexts: list[tuple[Any, list[Any], str]], judge: Any) -> dict[str, Any]:
    """ROC-AUC of the real move against another held-out call's real move, on the same context."""
    from grouped_sim.discriminator.heads import fast_auc
    from grouped_sim.transcript import transcript_text

    rng = random.Random(0)
    texts = [transcript_text(h) for _, h, _ in contexts]
    others = []
    for call, _, _ in contexts:
        pool = [m for c, _, m in contexts if c.id != call.id and c.domain == call.domain] or [m for c, _, m in contexts if c.id != call.id]
        others.append(rng.choice(pool))
    real = judge.score(texts, [m for _, _, m in contexts])
    other = judge.score(texts, others)
    return {"roc_auc_real_vs_other_call": round(fast_auc([1] * len(real) + [0] * len(other), list(real) + list(other)), 3), "pairs": len(real)}


def figures(contexts, moves: list[str], accepted: list[float]) -> dict[str, Any]:
    import numpy as np

    from grouped_sim.metrics.fidelity import wasserstein
    from grouped_sim.metrics.intervals import bootstrap_ci

    calls = list(dict.fromkeys(c.id for c, _, _ in contexts))
    index = {cid: [k for k, (c, _, _) in enumerate(contexts) if c.id == cid] for cid in calls}
    echo = [float(echoes(h, m)) for (_, h, _), m in zip(contexts, moves)]
    lengths = [len(m.split()) for m in moves]
    real_len = [len(r.split()) for _, _, r in contexts]

    def pooled(values):
        return lambda units: float(np.mean([values[k] for u in units for k in index[u]]))

    def w1(units):
        ks = [k for u in units for k in index[u]]
        return wasserstein([lengths[k] for k in ks], [real_len[k] for k in ks])

    return {
        "moves": len(moves),
        "calls": len(calls),
        "coherence_acceptance": round(float(np.mean(accepted)), 3),
        "coherence_acceptance_ci": bootstrap_ci(calls, pooled(accepted)),
        "echo_rate": round(float(np.mean(echo)), 3),
        "echo_rate_ci": bootstrap_ci(calls, pooled(echo)),
        "length_w1": round(w1(calls), 2),
        "length_w1_ci": bootstrap_ci(calls, w1),
        "mean_words": round(float(np.mean(lengths)), 1),
        "examples": moves[:8],
    }


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from grouped_sim.config import SimulationConfig
    from grouped_sim.data import JUDGE_SCORER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.graphs.salesman import ChatModelSalesman
    from grouped_sim.models import build_chat_model
    from grouped_sim.transcript import transcript_text

    contexts = held_out_moves()
    judge = CoherenceScorer(shipped_scorer_path(JUDGE_SCORER))
    texts = [transcript_text(h) for _, h, _ in contexts]
    result: dict[str, Any] = {"command": "benchmarks/salesman_decoding.py", "contexts": len(contexts), "judge": JUDGE_SCORER}
    result["judge_on_salesman_moves"] = judge_validity(contexts, judge)
    real_accepted = [float(p >= 0.5) for p in judge.score(texts, [m for _, _, m in contexts])]
    result["real moves"] = figures(contexts, [m for _, _, m in contexts], real_accepted)
    print("judge", result["judge_on_salesman_moves"], "real", {k: v for k, v in result["real moves"].items() if k != "examples"}, flush=True)
    default = SimulationConfig().salesman
    result["settings"] = []
    for temperature, top_p in SETTINGS:
        params = default.model_copy(update={"temperature": temperature, "top_p": top_p})
        salesman = ChatModelSalesman(build_chat_model("hf:smollm2", params))
        t0 = time.perf_counter()
        moves = [salesman.say(h, c.domain, SEED0 + k) for k, (c, h, _) in enumerate(contexts)]
        seconds = time.perf_counter() - t0
        accepted = [float(p >= 0.5) for p in judge.score(texts, moves)]
        row = {"temperature": temperature, "top_p": top_p, "default": (temperature, top_p) == (default.temperature, default.top_p)}
        row.update(figures(contexts, moves, accepted))
        row["seconds_per_move"] = round(seconds / len(moves), 2)
        result["settings"].append(row)
        print({k: v for k, v in row.items() if k != "examples"}, flush=True)
    out = ROOT / "benchmarks" / "results" / "salesman_decoding.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", out)


if __name__ == "__main__":
    main()
