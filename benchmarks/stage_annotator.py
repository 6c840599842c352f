"""The stage annotator of `fit`: the kNN vote over labelled training moves against the embedded 1.5B
naming the stage, on held-out calls whose stages are labelled (issue 22, item 3).

    .venv/bin/python benchmarks/stage_annotator.py --sim runs/i23/sample-fit [--max-moves 80]

The sim folder's held-out calls keep their given stage labels in annotated.jsonl; its store holds
only the training calls, so the kNN vote (what `fit` does for unlabelled turns, and what the
manager does at run time) never sees the call it tags. The 1.5B gets the taxonomy (id, name,
description of each stage), the call so far (last 6 turns) and the salesman's move, and names a
stage id (greedy; an answer that is no id counts as wrong). Accuracy with a Wilson interval, on
the same moves. Results: benchmarks/results/stage_annotator.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stage_annotator.json"
SYSTEM = "You label moves of sales calls with the stage of the call they belong to. The stages:\n{stages}\nAnswer with one stage id and nothing else."
USER = "The call so far:\n{transcript}\n\nThe caller's next move: \"{move}\"\n\nWhich stage id is this move?"


def held_out_moves(sim: Path) -> list[tuple[list, object]]:
    from grouped_sim.graphs.dynamics import script_moves
    from grouped_sim.graphs.fit import SimFolder

    folder = SimFolder(sim)
    held = set(folder.read_split().holdout)
    found = []
    for dialogue in folder.annotated_dialogues():
        if dialogue.id not in held:
            continue
        before: list = []
        for move, answers in script_moves(dialogue.turns):
            if move[0].sop_stage:
                found.append((list(before), move[-1]))
            before += move + answers
    return found


def main() -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    from grouped_sim.config import GenerationParams
    from grouped_sim.graphs.fit import SimFolder
    from grouped_sim.metrics.decisions import wilson
    from grouped_sim.models import build_chat_model
    from grouped_sim.sop_db.store import SOPStore
    from grouped_sim.transcript import transcript_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, required=True)
    parser.add_argument("--max-moves", type=int, default=80)
    args = parser.parse_args()
    folder = SimFolder(args.sim)
    taxonomy = folder.load_taxonomy()
    moves = held_out_moves(args.sim)[: args.max_moves]
    gold = [turn.sop_stage for _, turn in moves]
    store = SOPStore(folder.store, taxonomy=taxonomy)
    knn = [v.stage for v in store.tag_stages([turn.text for _, turn in moves])]
    stages = "\n".join(f"- {s.id}: {s.name}. {s.description}" for s in taxonomy.stages)
    model = build_chat_model("llamacpp:default", GenerationParams(temperature=0.0, max_new_tokens=12))
    started, llm = time.time(), []
    for before, turn in moves:
        messages = [SystemMessage(content=SYSTEM.format(stages=stages)), HumanMessage(content=USER.format(transcript=transcript_text(before[-6:]) or "(the call starts)", move=turn.text))]
        answer = str(model.invoke(messages, seed=0).content).strip().strip("`'\". ").split()[0:1]
        llm.append(answer[0] if answer and answer[0] in taxonomy.ids else f"(not an id: {answer[0] if answer else ''})")
    seconds = time.time() - started
    result = {"sim": str(args.sim), "moves": len(moves), "seconds_1_5b": round(seconds, 1)}
    for name, tags in (("knn", knn), ("llm_1_5b", llm)):
        hits = sum(a == b for a, b in zip(tags, gold))
        result[name] = {"accuracy": round(hits / len(gold), 4), "ci": wilson(hits, len(gold)), "hits": hits}
        print(f"{name}: {hits}/{len(gold)} = {hits / len(gold):.3f} {wilson(hits, len(gold))}")
    result["examples"] = [{"move": t.text[:120], "gold": g, "knn": k, "llm": m} for (_, t), g, k, m in list(zip(moves, gold, knn, llm))[:12]]
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
