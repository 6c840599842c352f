"""The manager: the hierarchical controller between the salesman and the customer model.

Each turn it (a) tags the stage of the salesman's move, (b) updates the latent customer state
S_t, (c) picks real exchanges of similar customers at that stage (the references the customer
model is shown), and (d) writes short guidance. The light manager does this with explicit rules
(below, tested one by one) and runs anywhere; the LLM manager asks a chat model for the same
decision and falls back to the rules when the model's answer does not parse.

What a stage means comes from its `kind` in the taxonomy (pitch, objection, closing, ...), and
the numbers from the dynamics data (graphs/data/dynamics.yaml), so neither is tied to our ids.
Rules of the light manager, per salesman move tagged with stage s:
- patience falls by `patience_decay` (scaled by the archetype's impatience), more when the
  salesman pushes twice in a row (pitch/closing after pitch/closing) or talks at length;
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

import random
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from grouped_sim.config import ManagerParams
from grouped_sim.jsontext import parse_json_object
from grouped_sim.graphs.dynamics import DECISIONS, Dynamics, FittedDynamics, move_answers, move_features, move_stages, prior_dynamics, propensity_of, script_moves
from grouped_sim.prompts import prompt
from grouped_sim.schemas import CustomerAction, CustomerState, Intent, Profile, Turn
from grouped_sim.sop_db.store import BehaviourChain, Exchange, SOPStore, StageVote
from grouped_sim.sop_db.taxonomy import DECISION_KINDS, PUSH_KINDS, StageKind, Taxonomy, load_taxonomy
from grouped_sim.transcript import transcript_text

LONG_MOVE_WORDS = 45
REFERENCE_LIMIT = 3
OUTCOME_ACTIONS: dict[str, CustomerAction] = {
    "agreed": CustomerAction.agree,
    "refused": CustomerAction.refuse,
    "hung_up": CustomerAction.hang_up,
    "callback": CustomerAction.callback,
}


class DecisionSource(BaseModel):
    """Where the customer's move at one salesman move came from, kept on the customer's turn so a
    user can see why twins decide as they do (a hazard draw, the hand-set rules, an LLM manager)."""

    by: str = Field(description="hazard | rules | llm-manager | none (later: customer-model-tag when the customer model ended the call itself)")
    move: int = Field(0, ge=0, description="1-based salesman move")
    odds: dict[str, float] | None = Field(None, description="the fitted P(continue, or each outcome) at this move")
    draw: float | None = Field(None, description="the seeded uniform draw that picked the move from the odds")


class ManagerUpdate(BaseModel):
    """What the manager hands the customer step for one turn."""

    stage: str
    stage_confidence: float = 0.0
    state: CustomerState
    action: CustomerAction = CustomerAction.speak
    guidance: str = ""
    references: list[Exchange] = Field(default_factory=list, description="real exchanges at this stage, shown to the customer model")
    source: str = "light"
    decision: DecisionSource = Field(default_factory=lambda: DecisionSource(by="none"))

    @property
    def example_lines(self) -> list[str]:
        """What the real customers of the references said."""
        return [r.customer for r in self.references]


class Manager(Protocol):
    """Phase 1 InitState, and one manager step per salesman move (Algorithm 1, line 10)."""

    def initial_state(self, profile: Profile) -> CustomerState: ...

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate: ...


def pick(shares: dict[str, float], draw: float) -> str | None:
    """The outcome a uniform `draw` in [0, 1) falls on, the shares laid end to end in sorted order
    (None when it falls past them all: shares that sum below 1)."""
    acc = 0.0
    for outcome in sorted(shares):
        acc += shares[outcome]
        if draw < acc:
            return outcome
    return None


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
# theirs: the kind of stage whose exchanges to show and the outcomes of the calls to take them from.
ENDING_REFERENCES: dict[CustomerAction, tuple[StageKind, set[str]]] = {
    CustomerAction.hang_up: (StageKind.goodbye, {"hung_up", "refused"}),
    CustomerAction.refuse: (StageKind.goodbye, {"refused", "hung_up"}),
    CustomerAction.agree: (StageKind.closing, {"agreed"}),
    CustomerAction.callback: (StageKind.follow_up, {"callback"}),
}


def pick_references(
    stage: str,
    chains: list[BehaviourChain],
    vote: StageVote | None,
    taxonomy: Taxonomy,
    limit: int = REFERENCE_LIMIT,
    action: CustomerAction = CustomerAction.speak,
) -> list[Exchange]:
    """Real exchanges for this moment: first from the profile's own chains K_p, then from the tagger's neighbours.

    For an ending action they come from how similar real calls with that outcome ended. A reply
    already picked is not shown twice.
    """
    outcomes: set[str] | None = None
    if action in ENDING_REFERENCES:
        kind, outcomes = ENDING_REFERENCES[action]
        stage = taxonomy.first_of(kind) or stage
        vote = None
    candidates = [x for c in chains if outcomes is None or c.outcome in outcomes for x in c.exchanges_at(stage)]
    candidates += vote.matches if vote is not None else []
    picked: list[Exchange] = []
    for exchange in candidates:
        if exchange.customer not in {p.customer for p in picked}:
            picked.append(exchange)
        if len(picked) >= limit:
            break
    return picked


class LightManager:
    """The manager without a language model: embedding stage tagging plus explicit state updates.

    With `fitted` dynamics (from `grouped-sim fit`), the customer's decisions come from the hazard
    model fitted to the team's calls: at each move a draw from P(continue, or end the call with
    each outcome | the move's features); patience is then the modelled chance of not having walked
    away so far, and interest the share of good outcomes among the ways this customer would end
    the call now. Trust and open objections follow the prior rules either way.
    """

    def __init__(
        self, store: SOPStore | None, params: ManagerParams | None = None, taxonomy: Taxonomy | None = None, dynamics: Dynamics | None = None, fitted: FittedDynamics | None = None
    ) -> None:
        self.store = store
        self.params = params or ManagerParams()
        self.taxonomy = taxonomy or (store.taxonomy if store else load_taxonomy())
        self.dynamics = dynamics or (fitted.prior if fitted is not None else prior_dynamics())
        self.fitted = fitted if fitted is not None and fitted.fitted and fitted.hazard is not None else None

    def initial_state(self, profile: Profile) -> CustomerState:
        start = self.dynamics.start_for(profile.archetype)
        interest = start.interest
        if profile.buy_propensity is not None:
            interest = _clip(0.5 * interest + 0.5 * profile.buy_propensity)
        state = CustomerState(interest=interest, trust=start.trust, patience=1.0 if self.fitted else start.patience)
        state.intent = intent_of(state, CustomerAction.speak)
        return state

    def outcome_odds(self, profile: Profile, history: list[Turn], stage: str, chains: list[BehaviourChain]) -> dict[str, float]:
        """P(continue, or each outcome, at this move) under the fitted hazard model."""
        assert self.fitted is not None and self.fitted.hazard is not None
        stages = move_stages(history)[:-1] + [stage]
        propensity = propensity_of([c.outcome for c in chains], self.fitted.base_rates)
        replies = move_answers(history)[: len(stages) - 1]  # answers to the earlier moves; this one is not answered yet
        return self.fitted.hazard.probabilities(move_features(self.taxonomy, stages, profile.archetype, propensity, replies))

    def script_stages(self, turns: list[Turn], leave_out: str | None = None) -> list[str]:
        """The stage this manager gives each salesman move of a call, hearing it move by move (the
        vote on the move's last turn, then `settle`). `fit` trains the hazard on these, not on the
        corpus's labels, so that what was fitted is what runs: a model fitted on clean labels and
        fed the tagger's guesses decides for a call nobody made. `leave_out`: the call's own id,
        when the store holds it."""
        texts = [move[-1].text for move, _ in script_moves(turns)]
        votes = self.store.tag_stages(texts, k=self.params.stage_neighbours, leave_out=leave_out) if self.store is not None else [self.tag(t) for t in texts]
        stages: list[str] = []
        for vote in votes:
            stages.append(self.settle(vote, stages).stage)
        return stages

    def script_odds(self, profile: Profile, turns: list[Turn], chains: list[BehaviourChain], answers: list[str] | None = None) -> list[dict[str, float]]:
        """The fitted odds at every move of a script, as a twin hearing it would read them.
        `answers`: what the twin said to each move (a hazard that reads replies reads these; past
        the last of them it reads all there are); default: the script's own customer."""
        assert self.fitted is not None and self.fitted.hazard is not None
        stages = self.script_stages(turns)
        propensity = propensity_of([c.outcome for c in chains], self.fitted.base_rates)
        said = move_answers(turns) if answers is None else answers
        return [self.fitted.hazard.probabilities(move_features(self.taxonomy, stages[:m], profile.archetype, propensity, said[: m - 1])) for m in range(1, len(stages) + 1)]

    def fitted_decision(self, odds: dict[str, float], before: CustomerState, ruled: CustomerState, draw: float) -> tuple[CustomerState, CustomerAction]:
        """The customer's move picked from the fitted odds by `draw` (uniform in [0, 1)); patience
        and interest follow from the odds."""
        picked = pick(odds, draw) or "continue"
        leaving = 1.0 - odds.get("continue", 0.0)
        good = odds.get("agreed", 0.0) + odds.get("callback", 0.0)
        interest = good / leaving if leaving > 1e-9 else ruled.interest
        walked = odds.get("hung_up", 0.0) + odds.get("refused", 0.0)
        state = ruled.model_copy(update={"interest": _clip(interest), "patience": _clip(before.patience * (1.0 - walked))})
        action = OUTCOME_ACTIONS.get(picked, CustomerAction.speak)
        state.intent = intent_of(state, action)
        return state, action

    def final_decision(self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int) -> tuple[CustomerAction, DecisionSource]:
        """The customer's decision when the call stops without one (a probe's script ran out): what
        they would answer to a last ask, and where that came from. With fitted dynamics it is drawn
        from the outcomes' shares of ending the call at this move, the same split `fit` scores
        (graphs/dynamics.py `outcome_distribution`), so it leans no way the fit does not; without
        a fit, from the rules."""
        rng = random.Random(seed)
        stages = move_stages(history)
        if self.fitted is not None:
            odds = self.outcome_odds(profile, history, stages[-1] if stages else self.taxonomy.ids[0], chains)
            ending = {o: odds.get(o, 0.0) for o in DECISIONS}
            total = sum(ending.values())
            shares, draw = {o: v / total for o, v in ending.items()}, rng.random()
            if (outcome := pick(shares, draw)) is not None:
                rounded = {o: round(v, 4) for o, v in sorted(shares.items())}
                return OUTCOME_ACTIONS[outcome], DecisionSource(by="hazard (end of script)", move=len(stages), odds=rounded, draw=round(draw, 4))
        p = self.params
        rules = DecisionSource(by="rules (end of script)", move=len(stages))
        if state.interest >= p.agree_above and state.trust >= p.agree_above - 0.25 and not state.open_objections:
            return CustomerAction.agree, rules
        if state.interest >= 0.45:
            return CustomerAction.callback, rules
        return (CustomerAction.hang_up if state.patience < 0.35 else CustomerAction.refuse), rules

    def tag(self, salesman_text: str) -> StageVote:
        """Tagging: the stage of a salesman move, by a vote of the store's nearest annotated moves."""
        if self.store is None:
            return StageVote(stage=self.taxonomy.ids[0], confidence=0.0)
        return self.store.tag_stage(salesman_text, k=self.params.stage_neighbours)

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate:
        move = history[-1].text if history and history[-1].role == "salesman" else ""
        previous_stages = [t.sop_stage for t in history[:-1] if t.role == "salesman" and t.sop_stage]
        vote = self.settle(self.tag(move), previous_stages)
        rng = random.Random(seed)
        new_state, action = self.apply_rules(profile, state, vote.stage, move, previous_stages, rng)
        decision = DecisionSource(by="rules", move=len(move_stages(history)))
        if self.fitted is not None:
            odds, draw = self.outcome_odds(profile, history, vote.stage, chains), rng.random()
            new_state, action = self.fitted_decision(odds, state, new_state, draw)
            decision = decision.model_copy(update={"by": "hazard", "odds": {k: round(v, 4) for k, v in sorted(odds.items())}, "draw": round(draw, 4)})
        references = pick_references(vote.stage, chains, vote, self.taxonomy, action=action) if use_sop else []
        return ManagerUpdate(
            stage=vote.stage,
            stage_confidence=vote.confidence,
            state=new_state,
            action=action,
            guidance=compose_guidance(new_state, action, vote.stage),
            references=references,
            decision=decision,
        )

    def settle(self, vote: StageVote, previous_stages: list[str]) -> StageVote:
        """A weakly supported tag must not end a call: an unsure goodbye or decision tag keeps the
        previous stage (or the pitch), because a misread decision point ends calls nobody ended."""
        ending = DECISION_KINDS | {StageKind.goodbye}
        if self.taxonomy.kind_of(vote.stage) in ending and vote.confidence < self.params.min_stage_confidence:
            last = previous_stages[-1] if previous_stages else None
            keep = last is not None and self.taxonomy.kind_of(last) not in ending
            fallback = last if keep else (self.taxonomy.first_of(StageKind.pitch) or self.taxonomy.ids[0])
            return vote.model_copy(update={"stage": fallback})
        return vote

    def apply_rules(
        self, profile: Profile, state: CustomerState, stage: str, move: str, previous_stages: list[str], rng: random.Random
    ) -> tuple[CustomerState, CustomerAction]:
        """The state transition and decision for one salesman move (pure given the rng)."""
        p = self.params
        kind = self.taxonomy.kind_of(stage)
        propensity = profile.buy_propensity if profile.buy_propensity is not None else 0.3
        impatience = self.dynamics.start_for(profile.archetype).impatience
        effect = self.dynamics.effect_of(stage)
        d_interest, d_trust, d_patience = effect.interest, effect.trust, effect.patience
        if kind is StageKind.pitch:
            d_interest += 0.15 * propensity - 0.03
        d_patience -= p.patience_decay * impatience
        if kind in PUSH_KINDS and previous_stages and self.taxonomy.kind_of(previous_stages[-1]) in PUSH_KINDS:
            d_patience -= p.pushy_penalty * impatience
        if len(move.split()) > LONG_MOVE_WORDS:
            d_patience -= 0.05
        objections = list(state.open_objections)
        objection = self.taxonomy.objection_of(stage) if kind is StageKind.objection else None
        if objection is not None:
            if objection not in objections:
                objections.append(objection)
            elif rng.random() < 0.3 + 0.4 * propensity:
                objections.remove(objection)
                d_trust += 0.08
                d_interest += 0.05
            else:
                d_patience -= 0.05
        new = CustomerState(
            interest=_clip(state.interest + d_interest + rng.gauss(0.0, 0.02)),
            trust=_clip(state.trust + d_trust + rng.gauss(0.0, 0.02)),
            patience=_clip(state.patience + d_patience + rng.gauss(0.0, 0.02)),
            open_objections=objections,
        )
        action = self.decide(new, stage, previous_stages)
        new.intent = intent_of(new, action)
        return new, action

    def decide(self, state: CustomerState, stage: str, previous_stages: list[str]) -> CustomerAction:
        p = self.params
        kind = self.taxonomy.kind_of(stage)
        if state.patience <= p.hang_up_below:
            return CustomerAction.hang_up
        if kind is StageKind.goodbye:
            return CustomerAction.refuse if state.interest < 0.5 else CustomerAction.callback
        if kind in DECISION_KINDS:
            if state.interest >= p.agree_above and state.trust >= p.agree_above - 0.25 and not state.open_objections:
                return CustomerAction.agree
            if state.interest >= 0.45 or (kind is StageKind.follow_up and state.interest >= 0.3):
                return CustomerAction.callback
            if state.patience < 0.35:
                return CustomerAction.hang_up
            if any(self.taxonomy.kind_of(s) is StageKind.closing for s in previous_stages):
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


def parse_manager_answer(text: str, taxonomy: Taxonomy) -> LLMManagerAnswer:
    """Pull the first JSON object out of a model answer and validate it against the taxonomy."""
    answer = LLMManagerAnswer.model_validate(parse_json_object(text))
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
        system = cfg["system"].format(stages=", ".join(self.taxonomy.ids))
        user = cfg["user"].format(
            profile=profile.as_text(), state=state.model_dump_json(), transcript=transcript_text(history[-8:]), examples=" | ".join(examples) or "none"
        )
        return [SystemMessage(content=system), HumanMessage(content=user)]

    def _answer(self, messages: list[Any], seed: int) -> tuple[LLMManagerAnswer | None, list[str]]:
        problems: list[str] = []
        for attempt in range(self.retries + 1):
            reply = self.model.invoke(messages, seed=seed + attempt)
            try:
                return parse_manager_answer(str(reply.content), self.taxonomy), problems
            except (ValueError, ValidationError) as exc:
                problems.append(str(exc)[:200])
        return None, problems

    def step(
        self, *, profile: Profile, history: list[Turn], state: CustomerState, chains: list[BehaviourChain], seed: int, use_sop: bool = True
    ) -> ManagerUpdate:
        move = history[-1].text if history and history[-1].role == "salesman" else ""
        vote = self.fallback.tag(move)
        shown = pick_references(vote.stage, chains, vote, self.taxonomy) if use_sop else []
        answer, problems = self._answer(self._messages(profile, history, state, [r.customer for r in shown]), seed)
        if answer is None:
            update = self.fallback.step(profile=profile, history=history, state=state, chains=chains, seed=seed, use_sop=use_sop)
            return update.model_copy(update={"source": "light-fallback: " + "; ".join(problems)[-300:]})
        new_state = CustomerState(interest=answer.interest, trust=answer.trust, patience=answer.patience, open_objections=answer.open_objections)
        new_state.intent = intent_of(new_state, answer.action)
        return ManagerUpdate(
            stage=answer.stage,
            stage_confidence=1.0,
            state=new_state,
            action=answer.action,
            guidance=answer.guidance or compose_guidance(new_state, answer.action, answer.stage),
            references=pick_references(answer.stage, chains, vote, self.taxonomy, action=answer.action) if use_sop else [],
            source="llm",
            decision=DecisionSource(by="llm-manager", move=len(move_stages(history))),
        )
