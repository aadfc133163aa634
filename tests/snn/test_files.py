"""snn.files, the atomic writes every writer of the project uses, on real files: the mode a written
file gets under the umasks users run with (the one a plain open() gives, never mkstemp's 0600), the
umask itself left as it was, missing parent folders, the temporary file beside the target (a real
tmpfs mount: a temporary file elsewhere cannot be renamed across file systems), a failed write that
leaves the old file and no temporary file (a real full file system), and make_folder's check-only
mode removing exactly the folders it made."""

import errno
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from snn.files import FolderError, WriteError, make_folder, partial_writes, write_atomic

from ..conftest import fill

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UMASKS = [0o077, 0o002, 0o022]


@pytest.fixture
def umask():
    """set(mask): the process umask for this test; the one before is put back afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", UMASKS, ids=oct)
def test_a_written_file_gets_the_mode_open_gives_under_the_umask(tmp_path, umask, mask):
    """Under umask 077, 002 and 022 a file of write_atomic has the mode of a file made by open() in
    the same folder (os.stat of both), which is 0666 minus the umask (worked out by hand: 0600,
    0664, 0644); the process umask is the same after the write."""
    umask(mask)
    write_atomic(tmp_path / "atomic.txt", "text")
    write_atomic(tmp_path / "atomic.bin", b"bytes")
    write_atomic(tmp_path / "atomic.cb", lambda f: f.write(b"callable"))
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("text")
    expected = {0o077: 0o600, 0o002: 0o664, 0o022: 0o644}[mask]
    assert mode(tmp_path / "plain.txt") == expected
    for name in ("atomic.txt", "atomic.bin", "atomic.cb"):
        assert mode(tmp_path / name) == expected, (name, oct(mode(tmp_path / name)))
    assert os.umask(mask) == mask  # still the umask the test set


@pytest.mark.parametrize("mask", [0o077], ids=oct)
def test_a_process_started_with_another_umask_writes_files_of_its_mode(tmp_path, mask):
    """A real subprocess started under the umask (as a shell with `umask 077` starts it) writes two
    files, one after the other: both get 0666 minus that umask, and a file it then makes with open()
    has the same mode (the umask was not changed by the first write)."""
    code = textwrap.dedent(f"""
        import os
        from snn.files import write_atomic
        write_atomic({str(tmp_path / 'first')!r}, "1")
        write_atomic({str(tmp_path / 'second')!r}, "2")
        open({str(tmp_path / 'plain')!r}, "w").close()
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(mask), timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("first", "second", "plain"):
        assert mode(tmp_path / name) == 0o666 & ~mask, (name, oct(mode(tmp_path / name)))


def test_missing_parent_folders_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "file.json"
    write_atomic(path, "{}\n")
    assert path.read_text() == "{}\n"


def test_the_temporary_file_lies_beside_the_target_until_the_rename(tmp_path):
    """While the data is written, the folder of the target holds one `.<name>.<random>.tmp` and no
    target yet (what partial_writes finds after a kill)."""
    seen = []

    def write(f):
        seen.append(sorted(os.listdir(tmp_path)))
        f.write(b"data")

    write_atomic(tmp_path / "last.pt", write)
    assert len(seen[0]) == 1 and seen[0][0].startswith(".last.pt.") and seen[0][0].endswith(".tmp"), seen
    assert os.listdir(tmp_path) == ["last.pt"] and (tmp_path / "last.pt").read_bytes() == b"data"


def test_a_write_onto_another_file_system_than_tmp(tmpfs):
    """The target on its own tmpfs mount: the temporary file must be made there too, since a rename
    across file systems fails (EXDEV)."""
    folder = tmpfs("size=1m")
    write_atomic(folder / "results.json", "{}\n")
    assert (folder / "results.json").read_text() == "{}\n"
    assert sorted(os.listdir(folder)) == ["results.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("old\n")

    def failing(f):
        f.write(b"half")
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with pytest.raises(WriteError, match="metrics.csv"):
        write_atomic(path, failing)
    assert path.read_text() == "old\n"
    assert partial_writes(tmp_path, ["metrics.csv"]) == [] and os.listdir(tmp_path) == ["metrics.csv"]


def test_a_full_file_system_keeps_the_old_file_and_leaves_no_temporary_file(tmpfs):
    """A real full tmpfs: the write fails with ENOSPC (WriteError naming the file), the old contents
    stay, and no temporary file is left."""
    folder = tmpfs("size=64k")
    path = folder / "last.pt"
    path.write_bytes(b"old")
    fill(folder)
    with pytest.raises(WriteError, match="last.pt"):
        write_atomic(path, b"\1" * 200_000)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(folder)) == ["filler", "last.pt"]


def test_make_folder_check_only_removes_exactly_the_folders_it_made(tmp_path):
    """keep=False on runs/a/b/c where runs exists (holding a file): a, b and c are made for the check
    and removed again, deepest first; runs and its file stay."""
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "keep.txt").write_text("")
    assert make_folder(runs / "a" / "b" / "c", "--runs", keep=False) == runs / "a" / "b" / "c"
    assert sorted(os.listdir(runs)) == ["keep.txt"]


def test_make_folder_keeps_what_it_made_by_default(tmp_path):
    folder = make_folder(tmp_path / "out" / "sub", "--out", files=("table.csv",))
    assert folder.is_dir() and os.listdir(folder) == []  # the probe file is gone


@pytest.mark.parametrize("mask", [0o077, 0o002], ids=oct)
def test_make_folder_makes_folders_of_the_umask_mode(tmp_path, umask, mask):
    """Folders made under umask 077 / 002 get 0777 minus it (as os.mkdir gives them: 0700, 0775)."""
    umask(mask)
    make_folder(tmp_path / "out" / "sub")
    os.mkdir(tmp_path / "reference")
    for folder in (tmp_path / "out", tmp_path / "out" / "sub"):
        assert mode(folder) == mode(tmp_path / "reference") == 0o777 & ~mask, oct(mode(folder))


def test_make_folder_refuses_a_folder_where_a_file_belongs(tmp_path):
    (tmp_path / "out" / "table.md").mkdir(parents=True)
    with pytest.raises(FolderError, match=r"--out .*table.md is a folder where a file belongs"):
        make_folder(tmp_path / "out", "--out", files=("table.csv", "table.md"))


def test_a_write_error_from_a_nested_write_passes_through_unchanged(tmp_path):
    """A writer that itself fails writing another file (a WriteError naming that file) is reported
    as that error, not wrapped in a second "cannot write" for the outer file."""
    inner = WriteError("cannot write other.csv: No space left on device")

    def nested(f):
        raise inner

    with pytest.raises(WriteError) as raised:
        write_atomic(tmp_path / "outer.json", nested)
    assert raised.value is inner and os.listdir(tmp_path) == []
