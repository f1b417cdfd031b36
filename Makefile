.PHONY: format check test docs bench

format:
	ruff format agentlib tools tests benchmarks demos
	ruff check --fix agentlib tools tests benchmarks demos

check:
	ruff format --check agentlib tools tests benchmarks demos
	ruff check agentlib tools tests benchmarks demos
	mypy agentlib
	pytest -m "not slow"

test:
	pytest

docs:
	mkdocs build --strict

bench:
	python benchmarks/run_all.py
