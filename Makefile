# Two commands do all set-up on a fresh machine: `make demo` and `make test`; `make docs` builds the site.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench gpu-check docs mutate mutate-results clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m physrl.training.challenge.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

bench: $(STAMP)
	$(BIN)/physrl bench

# On a CUDA machine: the CUDA tests, env throughput at 1k-1M envs and training against sb3-ppo, written to
# gpu-check.md for docs/results/performance.md; without CUDA it says so and exits 0.
gpu-check: $(STAMP)
	$(BIN)/python -m physrl.training.bench.gpu_check --out gpu-check.md

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -n -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# Mutation testing (docs/development.md), not part of `make test`: mutmut over the modules listed in
# pyproject.toml's [tool.mutmut], in a copy under build/mutate. By default it runs the mutants of the
# update rules, reward and termination branches, action checks, checkpoint loading and the scorer
# (MUTANTS, mutmut's name globs); `make mutate MUTANTS='*'` runs all of them (about 11,100: hours).
# `make mutate-results` lists the survivors of the last run.
MUTATE := build/mutate
MUTANTS ?= \
	physrl.agents.rollout.x_gae* \
	physrl.agents.rollout.x_discounted_returns* \
	physrl.agents.rollout.x_masked_mean* \
	physrl.agents.deep_pg.xǁDeepPolicyGradientǁ_losses* \
	physrl.agents.deep_pg.xǁDeepPolicyGradientǁadvantages* \
	physrl.agents.deep_pg.x_whole_episode_returns* \
	physrl.agents.dqn.xǁDQNǁ_update* \
	physrl.agents.dqn.xǁReplayBufferǁadd* \
	physrl.agents.dqn.xǁReplayBufferǁsample* \
	physrl.agents.q_learning.xǁQLearningǁlearn_iteration* \
	physrl.agents.q_learning.x_epsilon_greedy* \
	physrl.agents.schedules.x_linear_schedule* \
	physrl.agents.tabular_pg.xǁTabularPolicyGradientǁlearn_iteration* \
	physrl.agents.tabular_pg.xǁTabularPolicyGradientǁ_update_baseline* \
	physrl.agents.tabular_pg.xǁTabularPolicyGradientǁlogits* \
	physrl.agents.distributed.x_average_gradients* \
	physrl.envs.walker.xǁWalkerCoreǁadvance* \
	physrl.envs.walker.xǁWalkerTargetCoreǁadvance* \
	physrl.envs.walker.xǁWalkerTargetCoreǁobserve* \
	physrl.agents.reference.walker.x_walker_target_optimum* \
	physrl.training.checkpoint.x_load_checkpoint* \
	physrl.training.checkpoint.x_load_policy* \
	physrl.training.checkpoint.x_restore_agent* \
	physrl.envs.maze.xǁMazeCoreǁadvance* \
	physrl.envs.qec.xǁQubitCoreǁadvance* \
	physrl.envs.qec.xǁQubitCoreǁaction_mask* \
	physrl.envs.qec.xǁQubitCoreǁ_kept_mask* \
	physrl.envs.qec.xǁQubitCoreǁpauli_view* \
	physrl.envs.oscillator.xǁOscillatorCoreǁmeasure_reward* \
	physrl.envs.oscillator.xǁOscillatorCoreǁadvance* \
	physrl.envs.core.xǁBatchCoreǁstep* \
	physrl.envs.core.xǁBatchCoreǁcheck_actions* \
	physrl.envs.core.xǁVectorEnvǁstep* \
	physrl.training.challenge.scorer.x_score_submission* \
	physrl.training.challenge.scorer.x_play* \
	physrl.agents.student.xǁQECStudentǁlearn_iteration* \
	physrl.agents.student.xǁQECStudentǁ_refine* \
	physrl.agents.student.xǁQECStudentǁ_advantages* \
	physrl.agents.student.xǁQECStudentǁ_values* \
	physrl.agents.student.xǁQECStudentǁ_value_loss* \
	physrl.envs.kernels.*
mutate: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[mutate]"
	rm -rf $(MUTATE) && mkdir -p $(MUTATE)/src/physrl
	cp -r envs agents training $(MUTATE)/src/physrl/
	cp -r tests pyproject.toml leaderboard $(MUTATE)/
	cd $(MUTATE) && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ../../$(BIN)/mutmut run --max-children 2 \
		$(foreach name,$(MUTANTS),'$(name)')
	cd $(MUTATE) && ../../$(BIN)/mutmut results

mutate-results:
	cd $(MUTATE) && ../../$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info docs/_build
