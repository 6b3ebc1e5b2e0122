"""glow_tf.saving: atomic files and directories (old content kept on failure)."""

from __future__ import annotations

import json
import os

import pytest

from glow_tf.saving import atomic_path, staged_directory, write_json_atomically


def _hidden(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def test_atomic_path_replaces_on_success_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "sub" / "state.json"
    write_json_atomically(path, {"epoch": 1})
    assert json.loads(path.read_text()) == {"epoch": 1}
    with pytest.raises(OSError, match="disk full"), atomic_path(path) as temporary:
        assert temporary.endswith(".json") and os.path.dirname(temporary) == str(path.parent)
        with open(temporary, "w") as file:
            file.write('{"epoch": ')
        raise OSError("disk full")
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert _hidden(path.parent) == []  # no temporary file left behind


def test_staged_directory_appears_complete_or_not_at_all(tmp_path):
    final = tmp_path / "models" / "1"
    with staged_directory(final) as staging:
        (staging / "a.txt").write_text("first")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "first"
    assert oct(final.stat().st_mode & 0o777) == oct(0o755)
    with pytest.raises(FileExistsError, match="already exists"), staged_directory(final):
        pass
    with pytest.raises(RuntimeError, match="half"), staged_directory(final, overwrite=True) as s:
        (s / "a.txt").write_text("half")
        raise RuntimeError("half written")
    assert sorted(os.listdir(final)) == ["a.txt"] and (final / "a.txt").read_text() == "first"
    with staged_directory(final, overwrite=True) as staging:
        (staging / "b.txt").write_text("second")
    assert sorted(os.listdir(final)) == ["b.txt"]
    assert _hidden(final.parent) == []
