"""Fixtures of the fitting tests live in tests/conftest.py (`raw_corpus`, `fitted_dir`): the
bad-input table damages a copy of the same sim folder."""
