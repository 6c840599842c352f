"""Stage annotation of a corpus the tagger never saw: 15 held-out sample dialogues, labels stripped."""

from __future__ import annotations

from collections import Counter

from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.tagger import KnnStageTagger, apply_labels, find_stage
from grouped_sim.sop_db.taxonomy import load_taxonomy


def _strip(dialogue: Dialogue) -> Dialogue:
    return dialogue.model_copy(update={"turns": [t.model_copy(update={"sop_stage": None}) for t in dialogue.turns]})


def test_knn_tagger_agrees_with_held_out_labels_well_above_the_majority_baseline(corpus: list[Dialogue]) -> None:
    held = corpus[::5][:15]
    held_ids = {d.id for d in held}
    train = [d for d in corpus if d.id not in held_ids]
    tagger = KnnStageTagger.from_dialogues(train, k=3)
    gold, predicted = [], []
    for dialogue in held:
        stripped = _strip(dialogue)
        labelled = apply_labels(stripped, tagger.label_dialogue(stripped))
        assert all(t.sop_stage for t in labelled.turns), "every turn gets a stage"
        assert all(t.meta["stage_source"] == "knn" for t in labelled.turns)
        gold += [t.sop_stage for t in dialogue.turns]
        predicted += [t.sop_stage for t in labelled.turns]
    agreement = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    majority = Counter(t.sop_stage for d in train for t in d.turns).most_common(1)[0][0]
    baseline = sum(g == majority for g in gold) / len(gold)
    print(f"kNN stage agreement on {len(gold)} held-out turns: {agreement:.1%} (majority-class baseline {baseline:.1%})")
    assert agreement >= 0.4
    assert agreement >= baseline + 0.2


def test_existing_labels_are_kept_unless_relabel(corpus: list[Dialogue]) -> None:
    tagger = KnnStageTagger.from_dialogues(corpus[10:20], k=3)
    dialogue = corpus[0]
    labels = tagger.label_dialogue(dialogue)
    kept = apply_labels(dialogue, labels)
    assert [t.sop_stage for t in kept.turns] == [t.sop_stage for t in dialogue.turns]
    relabelled = apply_labels(dialogue, labels, relabel=True)
    assert [t.sop_stage for t in relabelled.turns] == [label.stage for label in labels]


def test_find_stage_reads_ids_and_names_from_free_text() -> None:
    taxonomy = load_taxonomy()
    assert find_stage("Stage: price_objection.", taxonomy) == "price_objection"
    assert find_stage("I think this is the Closing ask", taxonomy) == "closing_ask"
    assert find_stage("no idea", taxonomy) is None
