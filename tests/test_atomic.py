"""atomic_output: all or nothing, and files others can read."""

import stat

import pytest

from model_src.atomic import atomic_output, atomic_write_text


def test_written_file_is_world_readable(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_text(path, "{}")
    assert path.read_text() == "{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600: a serving user must read artifacts


def test_failure_leaves_neither_target_nor_temp(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
