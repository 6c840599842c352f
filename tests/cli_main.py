"""Run the real `grouped-sim` entry point in-process, as a shell would: exit code and output."""

from __future__ import annotations

import pytest

from grouped_sim.cli.app import main


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["grouped-sim", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.err + captured.out
