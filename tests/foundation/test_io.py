"""grouped_sim.io: the one JSONL reader (strict, lenient, torn-tail) and the writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grouped_sim.errors import InputError
from grouped_sim.io import JsonlAppender, LineError, iter_jsonl, write_json_atomic, write_jsonl


def test_reader_yields_physical_line_numbers_across_blank_and_crlf_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n   \n{"a": 2}\n\n{"a": 3}')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2}), (6, {"a": 3})]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "field '<json>': not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1, 2]", "field '<line>': expected a JSON object, got list"),
    ],
)
def test_a_bad_line_stops_the_strict_reader_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n' + line + "\n")
    with pytest.raises(LineError) as info:
        list(iter_jsonl(path))
    assert str(info.value) == f"{path}:3: {message}"


def test_lenient_reader_collects_every_bad_line_and_keeps_the_good_ones(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n{bad\n\xff\xfe\n{"a": 4}\n')
    bad: list[LineError] = []
    assert list(iter_jsonl(path, bad=bad)) == [(1, {"a": 1}), (4, {"a": 4})]
    assert [(e.line, e.field) for e in bad] == [(2, "<json>"), (3, None)]
    assert "byte 0xff at byte offset 14 of the file" in str(bad[1])


def test_torn_tail_mode_skips_only_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert [v for _, v in iter_jsonl(path, torn_tail_ok=True)] == [{"a": 1}, {"a": 2}]
    with pytest.raises(LineError, match=r"cache.jsonl:3: field '<json>'"):
        list(iter_jsonl(path))  # strict: the same tail is an error
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(LineError, match=r"cache.jsonl:2:"):
        list(iter_jsonl(path, torn_tail_ok=True))  # a bad line in the middle is damage, not a kill


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))


def test_appender_cuts_a_torn_tail_and_finishes_a_whole_unterminated_line(tmp_path: Path) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"a": 1}\n{"a": ')
    with JsonlAppender(torn) as sink:
        sink.write_record({"a": 2})
    assert torn.read_text() == '{"a": 1}\n{"a": 2}\n'

    whole = tmp_path / "whole.jsonl"
    whole.write_text('{"a": 1}')
    with JsonlAppender(whole) as sink:
        sink.write_line('{"a": 2}')
    assert [v for _, v in iter_jsonl(whole)] == [{"a": 1}, {"a": 2}]


def test_writers_replace_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.jsonl"
    assert write_jsonl(path, [{"t": "café"}, {"t": "b"}]) == 2
    assert path.read_text(encoding="utf-8") == '{"t": "café"}\n{"t": "b"}\n'
    write_json_atomic(tmp_path / "x.json", {"n": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"n": 1}
    assert not list(tmp_path.rglob("*.tmp"))


def test_whole_text_files_report_bytes_that_are_not_utf8_with_line_and_offset(tmp_path: Path) -> None:
    from grouped_sim.io import load_user_yaml, read_json, read_text

    path = tmp_path / "config.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InputError) as info:
        read_text(path, "config file")
    assert str(info.value) == f"{path}:2: the config file is not UTF-8 text (byte 0xe9 at byte offset 11 of the file)"
    broken = tmp_path / "plan.json"
    broken.write_text('{\n  "items": [1,\n}\n')
    with pytest.raises(InputError, match=r"plan.json:3: the plan file is not valid JSON"):
        read_json(broken, "plan file")
    bad_yaml = tmp_path / "t.yaml"
    bad_yaml.write_text("stages:\n  - id: [x\n")
    with pytest.raises(InputError, match=r"t.yaml:\d: taxonomy file is not valid YAML"):
        load_user_yaml(bad_yaml, "taxonomy file")
    with pytest.raises(InputError, match="is a folder"):
        read_text(tmp_path, "config file")


def test_a_refused_append_is_cut_back_to_the_last_whole_line(tmp_path: Path, monkeypatch) -> None:
    import errno

    import grouped_sim.io as io
    from grouped_sim.io import OutputError

    path = tmp_path / "out.jsonl"
    real = io.os.write
    with JsonlAppender(path) as sink:
        sink.write_record({"a": 1})

        def half_then_full(fd, data):
            real(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(io.os, "write", half_then_full)
        with pytest.raises(OutputError, match="out.jsonl: cannot write it: No space left on device"):
            sink.write_record({"a": 2, "text": "x" * 100})
    assert path.read_text() == '{"a": 1}\n'


def test_a_refused_whole_file_write_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    import errno

    import grouped_sim.io as io
    from grouped_sim.io import OutputError

    path = tmp_path / "run.json"
    write_json_atomic(path, {"n": 1})
    monkeypatch.setattr(io.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OutputError, match="run.json: cannot write it"):
        write_json_atomic(path, {"n": 2})
    assert json.loads(path.read_text()) == {"n": 1} and not list(tmp_path.glob("*.tmp"))
