"""The multi-level reward of Group-Aligned RL (paper §3.2.2, eq. 9-11), as TRL reward functions.

- pattern:  r = P(real | c, y)                                   (eq. 9, the discriminator)
- format:   r = 1 - (|L(y) - L(y*)| / (L(y*) + ε))²              (eq. 10, length conformity)
- semantic: r = (cos(φ(y), φ(y*)) - δ) / (1 - δ)                 (eq. 11, meaning kept, style free)

Each reward is a callable with TRL's reward-function signature `f(prompts, completions, **columns)
-> list[float]`, reading the reference reply y* from the dataset column `reference` and the
context c from `context` (D_sim has both), so `GRPOTrainer(reward_funcs=[...])` takes them as
they are. `WeightedReward` is their weighted sum, for logging or for trainers that want one scalar
(GRPOTrainer can also weight them itself through `reward_weights`).

Two choices beyond the equations, both in `RewardConfig`:
- A completion is cut at its first newline before scoring (`cut_at_newline`), because the simulator
  stops the customer model there: we reward the reply the simulation would actually use.
- Eq. 10 is unbounded below (a 20-word reply to a 2-word reference scores about -80), which would
  drown the other two rewards; `format_floor` clips it (default -1). Set it to null for the bare
  equation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LengthUnit = Literal["words", "chars"]


class RewardConfig(BaseModel):
    """Weights and constants of the multi-level reward; recorded with every training run."""

    model_config = ConfigDict(extra="forbid")

    w_pattern: float = Field(1.0, ge=0.0, description="weight of the discriminator's P(real)")
    w_format: float = Field(1.0, ge=0.0, description="weight of the length-conformity reward")
    w_semantic: float = Field(1.0, ge=0.0, description="weight of the embedding-similarity reward")
    epsilon: float = Field(1.0, gt=0.0, description="ε of eq. 10, in length units (keeps an empty reference finite)")
    delta: float = Field(0.2, ge=0.0, lt=1.0, description="δ of eq. 11: similarity that counts as zero reward")
    length_unit: LengthUnit = Field("words", description="L(·) of eq. 10: whitespace words or characters")
    format_floor: float | None = Field(-1.0, description="lower clip of the format reward; null = the bare eq. 10")
    cut_at_newline: bool = Field(True, description="score only the completion's first line (what the simulator keeps)")


def reply_of(completion: Any, cut_at_newline: bool = True) -> str:
    """The customer reply in a TRL completion (a string, or a list of chat messages)."""
    if isinstance(completion, list):
        completion = completion[-1]["content"] if completion else ""
    text = str(completion or "")
    if cut_at_newline:
        text = text.lstrip().split("\n", 1)[0]
    return text.strip()


def length_of(text: str, unit: LengthUnit) -> int:
    """L(·): number of whitespace-separated words, or of characters (after stripping)."""
    text = text.strip()
    return len(text.split()) if unit == "words" else len(text)


def format_reward(reply: str, reference: str, config: RewardConfig | None = None) -> float:
    """Eq. 10 for one pair: 1 at the reference's length, falling quadratically with the relative gap."""
    cfg = config or RewardConfig()
    ly, lref = length_of(reply, cfg.length_unit), length_of(reference, cfg.length_unit)
    value = 1.0 - (abs(ly - lref) / (lref + cfg.epsilon)) ** 2
    if cfg.format_floor is not None:
        value = max(value, cfg.format_floor)
    return float(value)


def semantic_rewards(replies: Sequence[str], references: Sequence[str], config: RewardConfig | None = None) -> list[float]:
    """Eq. 11 for a batch (one embedding call).

    An empty reply or reference has no meaning to compare: similarity counts as 0 (reward -δ/(1-δ)),
    except when both are empty, which is a perfect match (similarity 1, reward 1).
    """
    cfg = config or RewardConfig()
    if len(replies) != len(references):
        raise ValueError(f"semantic reward: {len(replies)} replies but {len(references)} references")
    from grouped_sim.embeddings import embed

    pairs = [(r.strip(), ref.strip()) for r, ref in zip(replies, references)]
    both = [i for i, (r, ref) in enumerate(pairs) if r and ref]
    sims = [0.0] * len(pairs)
    if both:
        a = embed([pairs[i][0] for i in both])
        b = embed([pairs[i][1] for i in both])
        for row, i in enumerate(both):
            sims[i] = float((a[row] * b[row]).sum())
    for i, (r, ref) in enumerate(pairs):
        if not r and not ref:
            sims[i] = 1.0
    return [(s - cfg.delta) / (1.0 - cfg.delta) for s in sims]


def _column(kwargs: dict[str, Any], name: str, n: int, reward: str) -> list[str]:
    values = kwargs.get(name)
    if values is None:
        raise ValueError(f"{reward} reward needs the dataset column {name!r} (D_sim has it); got columns {sorted(kwargs)}")
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{reward} reward: {n} completions but {len(values)} values of {name!r}")
    return ["" if v is None else str(v) for v in values]


class _RewardFunc:
    """Base: TRL logs each reward under the function's `__name__`."""

    __name__ = "reward"

    def __init__(self, config: RewardConfig | None = None) -> None:
        self.config = config or RewardConfig()

    def replies(self, completions: Sequence[Any]) -> list[str]:
        return [reply_of(c, self.config.cut_at_newline) for c in completions]


class FormatReward(_RewardFunc):
    """Eq. 10 as a TRL reward function; y* from the `reference` column."""

    __name__ = "format_reward"

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        replies = self.replies(completions)
        refs = _column(kwargs, "reference", len(replies), "format")
        return [format_reward(y, ref, self.config) for y, ref in zip(replies, refs)]


class SemanticReward(_RewardFunc):
    """Eq. 11 as a TRL reward function; φ is the shared MiniLM encoder."""

    __name__ = "semantic_reward"

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        replies = self.replies(completions)
        refs = _column(kwargs, "reference", len(replies), "semantic")
        return semantic_rewards(replies, refs, self.config)


class PatternReward(_RewardFunc):
    """Eq. 9 as a TRL reward function: the discriminator's P(real | c, y); c from the `context` column."""

    __name__ = "pattern_reward"

    def __init__(self, scorer: Any, config: RewardConfig | None = None) -> None:
        super().__init__(config)
        self.scorer = scorer

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        replies = self.replies(completions)
        contexts = _column(kwargs, "context", len(replies), "pattern")
        return [float(p) for p in self.scorer.score(contexts, replies)]


class WeightedReward(_RewardFunc):
    """w_p·pattern + w_f·format + w_s·semantic, skipping any part whose weight is 0."""

    __name__ = "weighted_reward"

    def __init__(self, scorer: Any | None, config: RewardConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.parts: list[tuple[float, Callable[..., list[float]]]] = []
        if cfg.w_pattern > 0:
            if scorer is None:
                raise ValueError("the pattern reward has weight > 0 but no discriminator was given")
            self.parts.append((cfg.w_pattern, PatternReward(scorer, cfg)))
        if cfg.w_format > 0:
            self.parts.append((cfg.w_format, FormatReward(cfg)))
        if cfg.w_semantic > 0:
            self.parts.append((cfg.w_semantic, SemanticReward(cfg)))

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        total = [0.0] * len(completions)
        for weight, func in self.parts:
            for i, value in enumerate(func(prompts, completions, **kwargs)):
                total[i] += weight * value
        return total


def reward_functions(scorer: Any | None, config: RewardConfig | None = None) -> tuple[list[_RewardFunc], list[float]]:
    """The separate reward functions with non-zero weight and their weights, for `GRPOTrainer`.

    Passing them separately (not the sum) lets TRL log each reward's curve on its own.
    """
    cfg = config or RewardConfig()
    funcs: list[_RewardFunc] = []
    weights: list[float] = []
    if cfg.w_pattern > 0:
        if scorer is None:
            raise ValueError("the pattern reward has weight > 0 but no discriminator was given")
        funcs.append(PatternReward(scorer, cfg))
        weights.append(cfg.w_pattern)
    if cfg.w_format > 0:
        funcs.append(FormatReward(cfg))
        weights.append(cfg.w_format)
    if cfg.w_semantic > 0:
        funcs.append(SemanticReward(cfg))
        weights.append(cfg.w_semantic)
    if not funcs:
        raise ValueError("all reward weights are 0: nothing to optimise")
    return funcs, weights
