# robot_rl: two commands on a fresh machine with Python 3.11 and package-registry access.
#   make demo   install everything into .venv, then train → export → verify → evaluate the ONNX bundle
#   make test   install everything into .venv, then run the whole test suite
#   make test-jazzy   the ROS tests again against the ROS 2 Jazzy wheels, in a second venv (.venv-jazzy)
# All are idempotent: a venv is (re)installed only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# The Jazzy wheels install the same distributions (ros-rclpy, ...) at other versions, so they get their own venv.
JAZZY_VENV  ?= .venv-jazzy
JAZZY_PY    := $(JAZZY_VENV)/bin/python
JAZZY_STAMP := $(JAZZY_VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ROS_TESTS   := tests/ros tests/ros_core

.PHONY: demo test test-jazzy lint bench bench-generative bench-training-cost figures setup setup-jazzy clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: it is the CPU wheel on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[train,bench,dev,ros,scale]"
	@rm -f $(VENV)/.installed-*
	@touch $@

setup-jazzy: $(JAZZY_STAMP)

$(JAZZY_STAMP): pyproject.toml
	@test -x $(JAZZY_PY) || $(PYTHON) -m venv $(JAZZY_VENV)
	$(JAZZY_PY) -m pip install --quiet --upgrade pip
	$(JAZZY_PY) -m pip install --quiet torch==2.13.0
	$(JAZZY_PY) -m pip install --quiet -e ".[train,dev,ros-jazzy]"
	@rm -f $(JAZZY_VENV)/.installed-*
	@touch $@

# DEMO_ARGS passes flags through, e.g. `make demo DEMO_ARGS="--figures-out docs/benchmarks/demo.json"` (README's figures).
DEMO_ARGS ?=
demo: $(STAMP)
	$(VENV)/bin/robot-rl demo $(DEMO_ARGS)

# pytest exits 5 when it collected no tests: that must fail, never pass silently.
# mypy before pytest (strict where pyproject.toml's [tool.mypy] overrides say so): a type error fails CI.
test: $(STAMP)
	$(VENV)/bin/ruff check robot_rl ros_nodes tests bench
	$(VENV)/bin/mypy robot_rl
	$(VENV)/bin/mypy --follow-imports=silent ros_nodes
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests ran" >&2; exit 1; fi; exit $$rc

# The ROS tests skip where rclpy is missing: first make sure this venv really runs Jazzy's rclpy (7.x).
test-jazzy: $(JAZZY_STAMP)
	$(JAZZY_PY) -c "import importlib.metadata as m, rclpy; v = m.version('ros-rclpy'); \
	assert v.startswith('7.'), f'ros-rclpy {v} is not Jazzy'; print('ROS 2 Jazzy: ros-rclpy', v)"
	@$(JAZZY_PY) -m pytest $(ROS_TESTS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: no tests ran" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check robot_rl ros_nodes tests bench
	$(VENV)/bin/ruff format --check robot_rl ros_nodes tests bench
	$(VENV)/bin/mypy robot_rl
	$(VENV)/bin/mypy --follow-imports=silent ros_nodes

# Every benchmark, then README's figures re-rendered from the JSON they wrote (bench/readme_figures.py).
bench: $(STAMP)
	$(PY) bench/onnx_latency.py
	$(PY) bench/generative_inference.py
	$(PY) bench/sim_speed.py
	$(PY) bench/sac_vs_sb3.py throughput
	$(PY) bench/safety_chain.py
	$(PY) bench/safety_chain_ab.py
	$(PY) bench/recorder_throughput.py
	$(PY) bench/node_latency.py
	$(PY) bench/reliability.py --inputs 1000000
	$(PY) bench/sim2sim.py
	$(PY) bench/sweep_overhead.py
	$(PY) bench/distributed_collection.py
	$(PY) bench/sac_vs_sb3.py returns
	$(PY) bench/sac_vs_sb3.py report
	$(MAKE) figures

# Issue 12's success matrix (7 tasks x 6 methods x 5 seeds: about a day on 2 cores), one shard per core, merged.
GS := $(PY) bench/generative_success.py --work-dir build/generative-success/work
bench-generative: $(STAMP)
	$(GS) --tasks robot_rl/PandaReachAround-v0 robot_rl/PandaPush-v0 robot_rl/MetaWorld-reach-v3 \
		--out-dir build/generative-success/a --resume & \
	$(GS) --tasks robot_rl/MetaWorld-push-v3 robot_rl/MetaWorld-pick-place-v3 robot_rl/MetaWorld-door-open-v3 \
		robot_rl/MetaWorld-drawer-close-v3 --out-dir build/generative-success/b --resume & \
	wait
	$(PY) bench/generative_success.py --merge build/generative-success/a/generative_success.json \
		build/generative-success/b/generative_success.json --out-dir docs/benchmarks
	$(MAKE) figures

# Gradient steps/s of generative_success.py's learners on the PandaPush data, in interleaved rounds (reuses
# bench-generative's dataset; run it with no other job on the machine: the markdown reports the load).
bench-training-cost: $(STAMP)
	$(PY) bench/generative_training_cost.py --work-dir build/generative-success/work

# README.md's measured figures from docs/benchmarks/*.json (`--check` is what tests/bench runs).
figures: $(STAMP)
	$(PY) bench/readme_figures.py

clean-venv:
	rm -rf $(VENV) $(JAZZY_VENV)
