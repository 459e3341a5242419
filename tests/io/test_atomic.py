import os

import pytest

from supportlens.io.atomic import write_atomic, write_new_folder


def test_replaces_whole_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    write_atomic(target, lambda tmp: tmp.write_text("new\n"))
    assert target.read_text() == "new\n"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")

    def broken(tmp):
        tmp.write_text("half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, broken)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def _two_files(folder):
    (folder / "a.txt").write_text("a")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("b")


def test_new_folder_takes_the_next_free_name_and_replaces_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kept.txt").write_text("earlier run")
    (tmp_path / "run-2").mkdir()  # even an empty folder is someone else's
    got = write_new_folder(tmp_path / "run", _two_files)
    assert got == tmp_path / "run-3" and (got / "sub" / "b.txt").read_text() == "b"
    assert (tmp_path / "run" / "kept.txt").read_text() == "earlier run" and not any((tmp_path / "run-2").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-2", "run-3"]
    assert write_new_folder(tmp_path / "fresh" / "model", _two_files) == tmp_path / "fresh" / "model"


@pytest.mark.parametrize("interrupt", [OSError("disk full"), KeyboardInterrupt()])
def test_new_folder_that_fails_leaves_nothing(tmp_path, interrupt):
    def broken(folder):
        _two_files(folder)
        raise interrupt

    with pytest.raises(type(interrupt)):
        write_new_folder(tmp_path / "run", broken)
    assert list(tmp_path.iterdir()) == []
