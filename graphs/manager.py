"""The manager: the hierarchical controller between the salesman and the customer model.

Each turn it (a) tags the stage of the salesman's move, (b) updates the latent customer state
S_t, (c) picks reference lines of similar real customers at that stage, and (d) writes short
guidance. The light manager does this with explicit rules (below, tested one by one) and runs
anywhere; the LLM manager asks a chat model for the same decision and falls back to the rules
when the model's answer does not parse.

Rules of the light manager, per salesman move tagged with stage s:
- patience falls by `patience_decay` (scaled by the archetype's impatience), more when the
  salesman pushes twice in a row (pitch/closing ask after pitch/closing ask) or talks at length;
- stage effects move interest and trust (discovery builds trust, a pitch raises interest in
  proportion to buy propensity, objection stages open an objection of that kind);
- an open objection the salesman addresses again is resolved with a chance that grows with buy
  propensity (trust and interest rise), otherwise it costs patience;
- decisions: patience under `hang_up_below` hangs up; at a closing ask or follow-up the customer
  agrees when interest and trust are high and nothing is open, asks for a callback when mildly
  interested, refuses (or hangs up when impatient) otherwise; a second closing ask is refused.
Small seeded noise on every delta keeps two customers with the same profile apart.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from grouped_sim.config import ManagerParams
from grouped_sim.prompts import prompt
from grouped_sim.schemas import CustomerAction, CustomerState, Intent, Profile, Turn
from grouped_sim.sop_db.store import BehaviourChain, SOPStore, StageVote
from grouped_sim.sop_db.taxonomy import Taxonomy, load_taxonomy

OBJECTION_STAGES = {
    "price_objection": "price",
    "trust_objection": "trust",
    "timing_objection": "timing",
    "competitor_comparison": "competitor",
}
PUSH_STAGES = {"pitch", "closing_ask"}
DECISION_STAGES = {"closing_ask", "follow_up"}
LONG_MOVE_WORDS = 45

# Starting state and impatience (multiplier on patience decay) per archetype.
ARCHETYPE_START: dict[str, tuple[float, float, float, float]] = {
    #                      interest, trust, patience, impatience
    "price-sensitive": (0.35, 0.30, 0.65, 1.0),
    "resistance-heavy": (0.10, 0.10, 0.45, 1.6),
    "status-quo": (0.15, 0.35, 0.60, 1.0),
    "rational-skeptical": (0.30, 0.15, 0.75, 0.8),
    "competition-anxious": (0.35, 0.30, 0.65, 0.9),
}
DEFAULT_START = (0.30, 0.30, 0.65, 1.0)

# Stage effects on (interest, trust, patience); a pitch's interest gain is scaled by propensity below.
STAGE_EFFECTS: dict[str, tuple[float, float, float]] = {
    "opening": (0.0, 0.0, 0.0),
    "identity_permission": (0.0, 0.0, -0.02),
    "needs_discovery": (0.03, 0.05, -0.02),
    "pitch": (0.0, 0.0, -0.03),
    "product_question": (0.05, 0.03, 0.0),
    "price_objection": (-0.03, 0.0, -0.02),
    "trust_objection": (0.0, -0.05, -0.02),
    "timing_objection": (0.0, 0.0, -0.10),
    "competitor_comparison": (0.02, 0.0, -0.02),
    "closing_ask": (0.0, 0.0, -0.05),
    "follow_up": (0.0, 0.02, 0.0),
    "goodbye": (0.0, 0.0, -0.1),
}


class ManagerUpdate(BaseModel):
    """What the manager hands the customer node for one turn."""

    stage: str
    stage_confidence: float = 0.0
    state: CustomerState
    action: CustomerAction = CustomerAction.speak
    guidance: str = ""
    examples: list[str] = Field(default_factory=list, description="real customer lines for this stage")
    retrieved: list[str] = Field(default_factory=list, description="ids of the chains the examples came from")
    source: str = "light"


class Manager(Protocol):
    def initial_state(self, profile: Profile) -> CustomerState: ...

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate: ...


def _clip(value: float) -> float:
    return max(0.0, min(1.0, value))


def intent_of(state: CustomerState, action: CustomerAction) -> Intent:
    """Intent follows the action when there is one, else the mean of interest and trust."""
    if action is CustomerAction.agree:
        return Intent.accept
    if action in (CustomerAction.hang_up, CustomerAction.refuse):
        return Intent.reject
    score = (state.interest + state.trust) / 2
    if score >= 0.7:
        return Intent.accept
    if score >= 0.45:
        return Intent.consider
    if score >= 0.28:
        return Intent.neutral
    if score >= 0.15:
        return Intent.resist
    return Intent.reject


def compose_guidance(state: CustomerState, action: CustomerAction, stage: str) -> str:
    """Short guidance in plain words; the pieces come from data/prompts/manager.yaml."""
    g = prompt("manager")["guidance"]
    parts: list[str] = []
    if action is not CustomerAction.speak:
        parts.append(g[f"action_{action.value}"])
    if state.patience < 0.3:
        parts.append(g["patience_low"])
    elif state.patience < 0.5:
        parts.append(g["patience_mid"])
    if state.interest < 0.25:
        parts.append(g["interest_low"])
    elif state.interest > 0.6:
        parts.append(g["interest_high"])
    if state.trust < 0.2:
        parts.append(g["trust_low"])
    for objection in state.open_objections[:2]:
        parts.append(g["objection"].format(objection=objection))
    parts.append(g["stage"].format(stage=stage.replace("_", " ")))
    return "; ".join(parts)


# When the customer is about to end the call, the useful references are how real customers ended
# theirs: the stage whose lines to show and the outcomes of the calls to take them from.
ENDING_EXAMPLES: dict[CustomerAction, tuple[str, set[str]]] = {
    CustomerAction.hang_up: ("goodbye", {"hung_up", "refused"}),
    CustomerAction.refuse: ("goodbye", {"refused", "hung_up"}),
    CustomerAction.agree: ("closing_ask", {"agreed"}),
    CustomerAction.callback: ("follow_up", {"callback"}),
}


def pick_examples(
    stage: str, chains: list[BehaviourChain], vote: StageVote | None, limit: int = 3, action: CustomerAction = CustomerAction.speak
) -> tuple[list[str], list[str]]:
    """Real customer lines for this moment: first from the profile's own chains K_p, then from the tagger's neighbours.

    For an ending action the lines come from how similar real calls with that outcome ended.
    """
    lines: list[str] = []
    used: list[str] = []
    outcomes: set[str] | None = None
    if action in ENDING_EXAMPLES:
        stage, outcomes = ENDING_EXAMPLES[action]
        vote = None
    for chain in chains:
        if outcomes is not None and chain.outcome not in outcomes:
            continue
        for line in chain.customer_lines_at(stage):
            if line not in lines:
                lines.append(line)
                if chain.id not in used:
                    used.append(chain.id)
            if len(lines) >= limit:
                return lines, used
    if vote is not None:
        for line in vote.replies:
            if line not in lines:
                lines.append(line)
            if len(lines) >= limit:
                break
    return lines, used


class LightManager:
    """Rule-based manager: embedding stage tagging plus explicit state updates."""

    def __init__(self, store: SOPStore | None, params: ManagerParams | None = None, taxonomy: Taxonomy | None = None) -> None:
        self.store = store
        self.params = params or ManagerParams()
        self.taxonomy = taxonomy or (store.taxonomy if store else load_taxonomy())

    def initial_state(self, profile: Profile) -> CustomerState:
        interest, trust, patience, _ = ARCHETYPE_START.get(profile.archetype or "", DEFAULT_START)
        if profile.buy_propensity is not None:
            interest = _clip(0.5 * interest + 0.5 * profile.buy_propensity)
        state = CustomerState(interest=interest, trust=trust, patience=patience)
        state.intent = intent_of(state, CustomerAction.speak)
        return state

    def tag(self, salesman_text: str) -> StageVote:
        if self.store is None:
            return StageVote(stage=self.taxonomy.ids[0], confidence=0.0)
        return self.store.tag_stage(salesman_text, k=self.params.stage_neighbours)

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate:
        move = history[-1].text if history and history[-1].role == "salesman" else ""
        vote = self.tag(move)
        previous_stages = [t.sop_stage for t in history[:-1] if t.role == "salesman" and t.sop_stage]
        vote = self.settle(vote, previous_stages)
        new_state, action = self.apply_rules(profile, state, vote.stage, move, previous_stages, random.Random(seed))
        examples, used = pick_examples(vote.stage, chains, vote, action=action) if use_sop else ([], [])
        return ManagerUpdate(
            stage=vote.stage,
            stage_confidence=vote.confidence,
            state=new_state,
            action=action,
            guidance=compose_guidance(new_state, action, vote.stage),
            examples=examples,
            retrieved=used,
        )

    def settle(self, vote: StageVote, previous_stages: list[str]) -> StageVote:
        """A weakly supported tag must not end a call: an unsure 'goodbye' or 'closing ask' keeps the
        previous stage (or 'pitch'), because a misread decision point ends calls nobody ended."""
        if vote.stage in DECISION_STAGES | {"goodbye"} and vote.confidence < self.params.min_stage_confidence:
            fallback = previous_stages[-1] if previous_stages and previous_stages[-1] not in DECISION_STAGES | {"goodbye"} else "pitch"
            return vote.model_copy(update={"stage": fallback})
        return vote

    def apply_rules(
        self, profile: Profile, state: CustomerState, stage: str, move: str, previous_stages: list[str], rng: random.Random
    ) -> tuple[CustomerState, CustomerAction]:
        """The state transition and decision for one salesman move (pure given the rng)."""
        p = self.params
        propensity = profile.buy_propensity if profile.buy_propensity is not None else 0.3
        impatience = ARCHETYPE_START.get(profile.archetype or "", DEFAULT_START)[3]

        def noise() -> float:
            return rng.gauss(0.0, 0.02)

        d_interest, d_trust, d_patience = STAGE_EFFECTS.get(stage, (0.0, 0.0, 0.0))
        if stage == "pitch":
            d_interest += 0.15 * propensity - 0.03
        d_patience -= p.patience_decay * impatience
        last = previous_stages[-1] if previous_stages else None
        if stage in PUSH_STAGES and last in PUSH_STAGES:
            d_patience -= p.pushy_penalty * impatience
        if len(move.split()) > LONG_MOVE_WORDS:
            d_patience -= 0.05

        objections = list(state.open_objections)
        kind = OBJECTION_STAGES.get(stage)
        if kind is not None:
            if kind in objections:
                if rng.random() < 0.3 + 0.4 * propensity:
                    objections.remove(kind)
                    d_trust += 0.08
                    d_interest += 0.05
                else:
                    d_patience -= 0.05
            else:
                objections.append(kind)

        new = CustomerState(
            interest=_clip(state.interest + d_interest + noise()),
            trust=_clip(state.trust + d_trust + noise()),
            patience=_clip(state.patience + d_patience + noise()),
            open_objections=objections,
        )
        action = self.decide(new, stage, previous_stages)
        new.intent = intent_of(new, action)
        return new, action

    def decide(self, state: CustomerState, stage: str, previous_stages: list[str]) -> CustomerAction:
        p = self.params
        if state.patience <= p.hang_up_below:
            return CustomerAction.hang_up
        if stage == "goodbye":
            return CustomerAction.refuse if state.interest < 0.5 else CustomerAction.callback
        if stage in DECISION_STAGES:
            if state.interest >= p.agree_above and state.trust >= p.agree_above - 0.25 and not state.open_objections:
                return CustomerAction.agree
            if state.interest >= 0.45 or (stage == "follow_up" and state.interest >= 0.3):
                return CustomerAction.callback
            if state.patience < 0.35:
                return CustomerAction.hang_up
            if previous_stages.count("closing_ask") >= 1:
                return CustomerAction.refuse
        return CustomerAction.speak


class LLMManagerAnswer(BaseModel):
    """The structured answer asked of an LLM manager."""

    stage: str
    interest: float = Field(ge=0.0, le=1.0)
    trust: float = Field(ge=0.0, le=1.0)
    patience: float = Field(ge=0.0, le=1.0)
    open_objections: list[str] = Field(default_factory=list)
    action: CustomerAction = CustomerAction.speak
    guidance: str = ""


_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)


def parse_manager_answer(text: str, taxonomy: Taxonomy) -> LLMManagerAnswer:
    """Pull the first JSON object out of a model answer and validate it against the taxonomy."""
    match = _JSON_RE.search(text)
    if not match:
        raise ValueError("no JSON object in the manager's answer")
    answer = LLMManagerAnswer.model_validate(json.loads(match.group(0)))
    if answer.stage not in taxonomy.ids:
        raise ValueError(f"unknown stage {answer.stage!r}")
    return answer


class LLMManager:
    """A chat model makes the manager's decision; the light rules stand in when its answer is unusable."""

    def __init__(self, model: BaseChatModel, store: SOPStore | None, params: ManagerParams | None = None, retries: int = 2) -> None:
        self.model = model
        self.fallback = LightManager(store, params)
        self.taxonomy = self.fallback.taxonomy
        self.retries = retries

    def initial_state(self, profile: Profile) -> CustomerState:
        return self.fallback.initial_state(profile)

    def _messages(self, profile: Profile, history: list[Turn], state: CustomerState, examples: list[str]) -> list[Any]:
        cfg = prompt("manager")["llm"]
        transcript = "\n".join(f"{t.role.capitalize()}: {t.text}" for t in history[-8:])
        system = cfg["system"].format(stages=", ".join(self.taxonomy.ids))
        user = cfg["user"].format(
            profile=profile.as_text(), state=state.model_dump_json(), transcript=transcript, examples=" | ".join(examples) or "none"
        )
        return [SystemMessage(content=system), HumanMessage(content=user)]

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate:
        move = history[-1].text if history and history[-1].role == "salesman" else ""
        vote = self.fallback.tag(move)
        examples, used = pick_examples(vote.stage, chains, vote) if use_sop else ([], [])
        messages = self._messages(profile, history, state, examples)
        problems: list[str] = []
        for attempt in range(self.retries + 1):
            reply = self.model.invoke(messages, seed=seed + attempt)
            try:
                answer = parse_manager_answer(str(reply.content), self.taxonomy)
            except (ValueError, ValidationError) as exc:
                problems.append(str(exc)[:200])
                continue
            new_state = CustomerState(
                interest=answer.interest, trust=answer.trust, patience=answer.patience, open_objections=answer.open_objections
            )
            new_state.intent = intent_of(new_state, answer.action)
            if use_sop:
                examples, used = pick_examples(answer.stage, chains, vote, action=answer.action)
            return ManagerUpdate(
                stage=answer.stage,
                stage_confidence=1.0,
                state=new_state,
                action=answer.action,
                guidance=answer.guidance or compose_guidance(new_state, answer.action, answer.stage),
                examples=examples,
                retrieved=used,
                source="llm",
            )
        update = self.fallback.step(profile=profile, history=history, state=state, chains=chains, seed=seed, use_sop=use_sop)
        update.source = "light-fallback: " + "; ".join(problems)[-300:]
        return update
