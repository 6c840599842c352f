"""`grouped-sim profiles ...`: generate customer profiles from constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, label, out, progress
from grouped_sim.errors import InputError

profiles_app = typer.Typer(help="Customer profiles: generate N distinct, validated profiles from constraints or a population spec.", no_args_is_help=True)


@profiles_app.command("generate")
def profiles_generate(
    out_file: Annotated[Path, typer.Option("--out", help="Output JSONL, one {profile, domain, constraints, retrieved} per line; `simulate --profiles-file` reads it.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="How many profiles.")] = 4,
    constraints: Annotated[Optional[str], typer.Option("--constraints", help="Plain language, e.g. \"price-sensitive restaurant owner, 50s, already on a competitor's platform\" or \"40% price-sensitive, ages 25-65\".")] = None,
    archetype: Annotated[Optional[str], typer.Option("--archetype", help="One of the built-in archetypes (price-sensitive, resistance-heavy, status-quo, rational-skeptical, competition-anxious).")] = None,
    spec: Annotated[Optional[Path], typer.Option("--spec", help="YAML/JSON population spec: archetypes, tiers, domains (shares), age_min, age_max, role, must_have.")] = None,
    model: Annotated[str, typer.Option("--model", help="Profile model spec (hf:smollm2, hf:BASE+ADAPTER from `train profile-sft`, openai:MODEL@URL, vllm:MODEL).")] = "hf:smollm2",
    judge: Annotated[Optional[str], typer.Option("--judge", help="Judge model spec: also run the paper's profile robustness test on every profile.")] = None,
    examples: Annotated[Optional[Path], typer.Option("--examples", help="Real profiles for few-shot prompts: D_gen.jsonl from `sop mine`, or a corpus. Default: the sample corpus.")] = None,
    sop_db: Annotated[Optional[Path], typer.Option("--sop-db", help="SOP store: attach each profile's top-K behaviour chains (K_p).")] = None,
    top_k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Behaviour chains per profile.")] = 4,
    presets_file: Annotated[Optional[Path], typer.Option("--presets", help="Your own archetypes/tiers YAML (shape of profiles/data/presets.yaml).")] = None,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Regenerations per profile before it is reported as failed.")] = 4,
    dedup: Annotated[float, typer.Option("--dedup-threshold", min=0.5, max=1.0, help="Cosine similarity at or above which a profile counts as a near-duplicate.")] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the population draw and of every generation call.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Profiles generated together (one batched call per field on local models).")] = 4,
) -> None:
    """Generate N profiles that meet the constraints, each checked, distinct, with its K_p.

    Exactly one of --constraints, --archetype, --spec. The population mix is met by quota; the
    realised mix, the rule (and judge) pass rates and any profile that never passed are reported
    and written to OUT.report.json.
    """
    import json

    from grouped_sim.config import GenerationParams
    from grouped_sim.io import JsonlAppender, write_json_atomic
    from grouped_sim.models import build_chat_model, parse_spec
    from grouped_sim.profiles.generator import Judge, ProfileGenerator, adapter_prompt, load_examples
    from grouped_sim.prompts import prompt_version
    from grouped_sim.profiles.presets import load_presets
    from grouped_sim.profiles.spec import load_spec_file, parse_constraints_text, spec_for_archetype

    given = [x for x in (constraints, archetype, spec) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --constraints TEXT, --archetype NAME, --spec FILE")
    presets = load_presets(presets_file)
    if constraints is not None:
        population = parse_constraints_text(constraints, presets)
    elif archetype is not None:
        population = spec_for_archetype(archetype, presets)
    else:
        population = load_spec_file(spec, presets)  # type: ignore[arg-type]
    parse_spec(model)
    if judge:
        parse_spec(judge)
    plan = population.sample(n, seed=seed, presets=presets)
    few_shot = load_examples(examples)
    store = None
    if sop_db is not None:
        from grouped_sim.sop_db.store import SOPStore

        store = SOPStore(sop_db)
    console.print(f"loading profile model {model} ...")
    chat = build_chat_model(model, GenerationParams(temperature=0.8, top_p=0.9, max_new_tokens=200))
    judge_model = Judge(build_chat_model(judge, GenerationParams(temperature=0.0, max_new_tokens=48)), presets) if judge else None
    generator = ProfileGenerator(chat, few_shot, presets=presets, judge=judge_model, store=store, top_k=top_k, max_attempts=max_attempts, dedup_threshold=dedup, seed=seed)
    trained = adapter_prompt(chat)
    if trained is not None:
        console.print(f"{model} was trained by `train profile-sft`: prompting it with the D_gen instruction it learnt")
        if trained["prompt_version"] != prompt_version("profile"):
            label(console, "warning:", "yellow", f"the profile prompts changed since this adapter was trained (version {trained['prompt_version']}, now {prompt_version('profile')}); retrain it for the current instruction")
    if out_file.exists():
        out_file.unlink()
    with JsonlAppender(out_file) as sink, progress() as bar:
        task = bar.add_task("profiles", total=n)

        def emit(item: object) -> None:
            sink.write_line(item.model_dump_json())  # type: ignore[attr-defined]
            bar.advance(task)

        _, report = generator.generate(plan, on_profile=emit, batch_size=batch_size)
    report.target = population.target_shares(presets)
    payload = {**report.model_dump(), "rule_pass_rate": round(report.rule_pass_rate, 3), "model": model, "prompt": generator.prompter.name, "judge": judge, "seed": seed, "spec": population.model_dump()}
    if report.judged:
        payload["judge_pass_rate"] = round((report.judged - report.judge_failures) / report.judged, 3)
    report_path = out_file.with_name(out_file.name + ".report.json")
    write_json_atomic(report_path, payload)
    out.print(f"{report.produced}/{n} profiles in {out_file} ({report.candidates} candidates; rule-check pass rate {report.rule_pass_rate:.0%}; {report.duplicates} near-duplicates rejected)")
    if report.judged:
        out.print(f"judge pass rate (profile robustness test): {payload['judge_pass_rate']:.0%} of {report.judged}")
    for dim in ("archetype", "tier", "domain"):
        target = {k: round(v, 2) for k, v in report.target[dim].items()}
        out.print(f"{dim}: realised {json.dumps(report.realised.get(dim, {}))}  target {json.dumps(target)}")
    if report.ages:
        out.print(f"ages: {report.ages}")
    for failure in report.failed:
        label(out, "not produced", "yellow", f"#{failure['index']} ({failure['constraints']}) after {failure['attempts']} attempts: {'; '.join(failure['problems'])}")
    out.print(f"report: {report_path}")
