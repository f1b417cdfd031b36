.PHONY: format check test typecheck lock docs bench

format:
	ruff format agentlib tools tests benchmarks demos
	ruff check --fix agentlib tools tests benchmarks demos

check:
	ruff format --check agentlib tools tests benchmarks demos
	ruff check agentlib tools tests benchmarks demos
	scripts/typecheck
	pytest -m "not slow"

test:
	scripts/test

typecheck:
	scripts/typecheck

lock:
	scripts/lock

docs:
	mkdocs build --strict

bench:
	python benchmarks/run_all.py
