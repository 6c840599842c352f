"""Best-of-N with the pattern reward, measured on held-out contexts: which N, which picker.

    .venv/bin/python benchmarks/best_of.py --threads 1          # the whole table, about 15 min on 2 shared cores
    .venv/bin/python benchmarks/best_of.py --timing-contexts 0  # quality only
    .venv/bin/python benchmarks/best_of.py --cache runs/best-of-bench/candidates.jsonl  # keep the candidates between runs

Contexts: every customer reply after a salesman move in the 15 "test" calls of `role_split` (seed
0), which neither the shipped customer adapter nor any of the four shipped scorers saw. For context
k the shipped customer (SmolLM2 + adapter, the simulator's transcript prompt, no retrieved examples,
T 0.95 / top-p 0.95) answers the real history through `generate_reply` (role guard, one retry) with
seed 1000 + 64 k (no two contexts share a seed), best of N, for N in --ns, picked by:

- coherence: the shipped coherence PICKER (P it answers this call), as `best_of` did before;
- realism: the shipped realism PICKER (P a real customer said it rather than our customer model);
- both: coherence_weight * coherence + realism_weight * realism (--weights, default the config's
  1 : 0.6, which gives both the same pull: benchmarks/results/realism.json, "picker_spread").

Every reply is graded by the JUDGES: the shipped coherence judge and realism judge, trained on
the "judge" calls, disjoint from the "picker" calls the pickers were trained on (and from the test
calls): a picker never grades its own choice. Figures, each with a 95 % bootstrap interval over the
15 calls (a call's replies move together): coherence acceptance (judge P >= 0.5) and mean P;
realism mean P(real) and acceptance; reply length (words) Wasserstein distance to the real replies
of the same contexts; and the gain over N = 1 of the same contexts (paired).

Candidate i of a best-of-N call is sampled with seed + i whatever N is (`generate_texts`: a row's
text does not depend on its batch), so the N candidates are the first N of the largest N's: each
context's candidates are drawn once, for the largest N (with the seeds a retry would use), and the
smaller N and every picker read them from memory (a retry's candidates are drawn when first asked). Seconds per turn are measured apart, on the
first --timing-contexts contexts with real calls and nothing cached (generation and picking with
the `both` picker, the dearest), interleaving the N so drift in machine load hits them alike.

Results: benchmarks/results/best_of.json (and a markdown table on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SEED0 = 1000
SEED_STRIDE = 64  # context k samples with SEED0 + 64 k: no two contexts share a seed, even a retry's (N <= 16)
RETRIES = 1


def context_seed(k: int) -> int:
    """Seeds of neighbouring contexts never overlap: with seed + k, context k + 1's first candidate
    would reuse context k's second seed, and two turns of one call (near-identical prompts) would
    get near-identical candidates. The simulator's per-turn seeds are hashed (graphs.graph.turn_seed)."""
    return SEED0 + SEED_STRIDE * k


def held_out_contexts() -> list[tuple[Any, list[Any], str]]:
    """(call, history, real reply) for every reply after a salesman move in the test calls."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import reply_turns, role_split

    calls = read_corpus(sample_corpus_path())
    test = set(role_split([c.id for c in calls])["test"])
    return [(c, c.turns[:i], c.turns[i].text) for c in calls if c.id in test for i in reply_turns(c)]


def prompt_of(call: Any, history: list[Any]) -> Any:
    from grouped_sim.graphs.customer import CustomerPrompt
    from grouped_sim.schemas import Profile

    profile = (call.profile or Profile(summary="a customer")).model_copy(update={"buy_propensity": None})
    return CustomerPrompt(profile=profile, domain=call.domain, history=list(history))


class Remembered:
    """The real model behind a memory of its rows by (prompt, seed): a best-of-N call asks for
    rows seed .. seed + N - 1 of one prompt, and a row's text does not depend on its batch."""

    def __init__(self, model: Any, cache: Path | None) -> None:
        self.model, self.path, self.rows = model, cache, {}
        if cache is not None and cache.is_file():
            for line in cache.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.rows[(row["prompt"], row["seed"])] = row["text"]

    def ensure(self, prompt: str, seed: int, n: int, stop: list[str], budget: int | None) -> None:
        if all((prompt, seed + i) in self.rows for i in range(n)):
            return
        texts = self.model.generate_texts([prompt] * n, stop=stop, seed=seed, max_new_tokens=budget)
        new = {(prompt, seed + i): t for i, t in enumerate(texts)}
        self.rows.update(new)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.writelines(json.dumps({"prompt": p, "seed": s, "text": t}) + "\n" for (p, s), t in new.items())

    def as_model(self) -> Any:
        from grouped_sim.models.base import LocalChatModel

        memory = self

        class FromMemory(LocalChatModel):
            @property
            def _llm_type(self) -> str:
                return "remembered"

            def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
                memory.ensure(prompts[0], seed or 0, len(prompts), stop or [], max_new_tokens)  # a retry's seeds: drawn when first asked
                return [memory.rows[(p, (seed or 0) + i)] for i, p in enumerate(prompts)]

        return FromMemory()


def pickers(weights: tuple[float, float]) -> dict[str, Any]:
    from grouped_sim.app.build import build_picker
    from grouped_sim.config import BestOfParams

    return {
        "coherence": build_picker(BestOfParams(n=2, coherence_weight=1.0, realism_weight=0.0), None),
        "realism": build_picker(BestOfParams(n=2, coherence_weight=0.0, realism_weight=1.0), None),
        "both": build_picker(BestOfParams(n=2, coherence_weight=weights[0], realism_weight=weights[1]), None),
    }


def draw_all(contexts, memory: Remembered, n_max: int) -> None:
    """Every context's candidates for the largest N, one batched call per context."""
    from grouped_sim.graphs.customer import render

    started = time.monotonic()
    for k, (call, history, _) in enumerate(contexts):
        messages, kwargs = render(memory.model, prompt_of(call, history))
        memory.ensure(str(messages[0].content), context_seed(k), n_max, kwargs["stop"], None)
        print(f"\r  candidates: {k + 1}/{len(contexts)} contexts ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def replies_for(contexts, model: Any, n: int, pick: Any) -> tuple[list[str], int, float]:
    """The said reply of each context, how many fell back to a stock line, and seconds spent picking."""
    from grouped_sim.graphs.customer import generate_reply
    from grouped_sim.schemas import CustomerAction

    out, fallbacks, started = [], 0, time.perf_counter()
    for k, (call, history, _) in enumerate(contexts):
        reply = generate_reply(model, prompt_of(call, history), CustomerAction.speak, seed=context_seed(k), retries=RETRIES, n=n, pick=pick if n > 1 else None)
        out.append(reply.text)
        fallbacks += reply.fallback
    return out, fallbacks, time.perf_counter() - started


def grade(contexts, replies: list[str], judges: dict[str, Any]) -> dict[str, list[float]]:
    from grouped_sim.transcript import transcript_text

    texts = [transcript_text(h) for _, h, _ in contexts]
    return {name: list(judge.score(texts, replies)) for name, judge in judges.items()}


def figures(contexts, replies: list[str], scores: dict[str, list[float]], base: dict[str, Any] | None) -> dict[str, Any]:
    """Each figure with its interval over calls; with `base` (N = 1 of the same contexts) the paired gains."""
    import numpy as np

    from grouped_sim.metrics.fidelity import wasserstein
    from grouped_sim.metrics.intervals import bootstrap_ci

    calls = list(dict.fromkeys(c.id for c, _, _ in contexts))
    index = {cid: [k for k, (c, _, _) in enumerate(contexts) if c.id == cid] for cid in calls}
    real_len = [len(r.split()) for _, _, r in contexts]
    per = {
        "coherence_acceptance": [float(p >= 0.5) for p in scores["coherence"]],
        "coherence_mean_p": scores["coherence"],
        "realism_mean_p": scores["realism"],
        "realism_acceptance": [float(p >= 0.5) for p in scores["realism"]],
    }
    lengths = [len(r.split()) for r in replies]

    def pooled(values: list[float]):
        return lambda units: float(np.mean([values[k] for u in units for k in index[u]]))

    def w1(units) -> float:
        ks = [k for u in units for k in index[u]]
        return wasserstein([lengths[k] for k in ks], [real_len[k] for k in ks])

    out: dict[str, Any] = {"replies": len(replies), "calls": len(calls), "mean_words": round(float(np.mean(lengths)), 2)}
    for name, values in per.items():
        out[name] = round(float(np.mean(values)), 3)
        out[f"{name}_ci"] = bootstrap_ci(calls, pooled(values))
        if base is not None:
            diff = [a - b for a, b in zip(values, base["per"][name])]
            out[f"{name}_gain_vs_n1"] = round(float(np.mean(diff)), 3)
            out[f"{name}_gain_vs_n1_ci"] = bootstrap_ci(calls, pooled(diff))
    out["length_w1"] = round(w1(calls), 2)
    out["length_w1_ci"] = bootstrap_ci(calls, w1)
    out["per"] = per
    return out


def timing(contexts, model: Any, ns: list[int], pick: Any) -> dict[str, Any]:
    """Seconds per customer turn for each N, real calls, N interleaved per context."""
    import numpy as np

    from grouped_sim.graphs.customer import generate_reply
    from grouped_sim.metrics.intervals import bootstrap_ci
    from grouped_sim.schemas import CustomerAction

    seconds: dict[int, list[float]] = {n: [] for n in ns}
    rng = random.Random(0)
    loads = [Path("/proc/loadavg").read_text().split()[0]]
    for k, (call, history, _) in enumerate(contexts):
        for n in rng.sample(ns, len(ns)):
            t0 = time.perf_counter()
            generate_reply(model, prompt_of(call, history), CustomerAction.speak, seed=context_seed(k) + 50_000, retries=RETRIES, n=n, pick=pick if n > 1 else None)
            seconds[n].append(time.perf_counter() - t0)
        loads.append(Path("/proc/loadavg").read_text().split()[0])
        print(f"\r  timing: {k + 1}/{len(contexts)} contexts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {
        "contexts": len(contexts),
        "loadavg_1min": loads,
        "by_n": {str(n): {"seconds_per_turn": round(float(np.mean(v)), 2), "ci": bootstrap_ci(v, lambda u: float(np.mean(u)))} for n, v in seconds.items()},
    }


def markdown(rows: list[dict[str, Any]], real: dict[str, Any], times: dict[str, Any] | None) -> str:
    def ci(row: dict[str, Any], key: str) -> str:
        c = row.get(f"{key}_ci")
        return f"{row[key]:.2f} [{c[0]:.2f}, {c[1]:.2f}]" if c else f"{row[key]:.2f}"

    lines = [
        "| best of | picker | s / turn | coherence acceptance (judge) | realism P(real) (judge) | length W1 to real | words | replies (calls) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = (times or {}).get("by_n", {}).get(str(row["n"]))
        sec = f"{t['seconds_per_turn']:.2f} [{t['ci'][0]:.2f}, {t['ci'][1]:.2f}]" if t else "n/a"
        lines.append(f"| {row['n']} | {row['picker']} | {sec} | {ci(row, 'coherence_acceptance')} | {ci(row, 'realism_mean_p')} | {ci(row, 'length_w1')} | {row['mean_words']:.1f} | {row['replies']} ({row['calls']}) |")
    lines.append(f"| real replies | | | {ci(real, 'coherence_acceptance')} | {ci(real, 'realism_mean_p')} | 0 | {real['mean_words']:.1f} | {real['replies']} ({real['calls']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", default="1,2,4,8")
    parser.add_argument("--weights", default=None, help="coherence_weight,realism_weight of the 'both' picker (default: the config's, 1,0.6)")
    parser.add_argument("--timing-contexts", type=int, default=24, help="contexts timed with real calls (0: skip timing)")
    parser.add_argument("--cache", type=Path, default=None, help="JSONL memory of candidates, kept between runs (default: draw afresh)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "best_of.json")
    args = parser.parse_args()

    import torch

    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, SimulationConfig
    from grouped_sim.data import JUDGE_SCORER, REALISM_JUDGE, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.discriminator.realism import RealismScorer
    from grouped_sim.models import build_chat_model

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.monotonic()
    ns = sorted(int(x) for x in args.ns.split(","))
    from grouped_sim.config import BestOfParams

    default = BestOfParams()
    weights = tuple(float(x) for x in args.weights.split(",")) if args.weights else (default.coherence_weight, default.realism_weight)
    contexts = held_out_contexts()
    model = build_chat_model(DEFAULT_CUSTOMER_SPEC, SimulationConfig().customer)
    judges = {"coherence": CoherenceScorer(shipped_scorer_path(JUDGE_SCORER)), "realism": RealismScorer(shipped_scorer_path(REALISM_JUDGE))}
    memory = Remembered(model, args.cache)
    draw_all(contexts, memory, max(ns))
    remembered = memory.as_model()
    real = figures(contexts, [r for _, _, r in contexts], grade(contexts, [r for _, _, r in contexts], judges), None)
    rows, base = [], None
    for n in ns:
        for name, pick in pickers(weights).items():
            if n == 1 and name != "coherence":
                continue  # one candidate: nothing to pick, every picker says the same
            replies, fallbacks, pick_seconds = replies_for(contexts, remembered, n, pick)
            row = {"n": n, "picker": "none (plain sampling)" if n == 1 else name, "fallbacks": fallbacks,
                   "pick_ms_per_turn": round(1000 * pick_seconds / len(contexts), 1), **figures(contexts, replies, grade(contexts, replies, judges), base)}
            row["examples"] = replies[:8]
            base = base or row
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("per", "examples")}), flush=True)
    times = timing(contexts[: args.timing_contexts], model, ns, pickers(weights)["both"]) if args.timing_contexts else None
    result = {
        "command": "benchmarks/best_of.py " + " ".join(sys.argv[1:]),
        "contexts": len(contexts),
        "calls": len({c.id for c, _, _ in contexts}),
        "seeds": f"context k: {SEED0} + {SEED_STRIDE} k (a retry: + N); timing: the same + 50000",
        "pickers": {"coherence": "shipped coherence-picker", "realism": "shipped realism-picker", "both": f"{weights[0]} * coherence-picker + {weights[1]} * realism-picker"},
        "judges": "shipped coherence-judge and realism-judge: trained on the 30 'judge' calls; the pickers on the 30 'picker' calls; the contexts are the 15 'test' calls",
        "torch_threads": torch.get_num_threads(),
        "real": {k: v for k, v in real.items() if k != "per"},
        "rows": [{k: v for k, v in row.items() if k != "per"} for row in rows],
        "timing": times,
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(rows, real, times))
    print(f"wrote {args.out} ({result['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
