"""reproduce/ scripts whose --out or --runs the file system refuses: a file, a path under a file, a
read-only file system (a real read-only tmpfs), a folder where a results file belongs. Each exits 2
with one line `error: ...` naming the flag, and no traceback."""

import pytest

from reproduce import fig3_surrogate, table2


def one_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


@pytest.mark.parametrize("where", ["a file", "under a file", "a folder where a results file belongs"])
def test_fig3_with_an_out_it_cannot_use_exits_2(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    if where == "a folder where a results file belongs":
        (blocker / "fig3_surrogate.csv").mkdir(parents=True)
        out = blocker
    else:
        blocker.write_text("")
        out = blocker if where == "a file" else blocker / "sub"
    assert fig3_surrogate.main(["--out", str(out)]) == 2
    one_line(capsys.readouterr().err, "--out", str(out))


def test_fig3_on_a_read_only_file_system_exits_2(tmpfs, capsys):
    read_only = tmpfs("ro")  # an existing folder: creating it succeeds, writing in it does not
    assert fig3_surrogate.main(["--out", str(read_only)]) == 2
    one_line(capsys.readouterr().err, "--out", "Read-only file system")


@pytest.mark.parametrize("flag", ["--out", "--runs"])
def test_a_table_script_on_a_read_only_file_system_exits_2_before_training(tmpfs, tmp_path, capsys, flag):
    read_only = tmpfs("ro")
    folders = {"--out": tmp_path / "results", "--runs": tmp_path / "runs", flag: read_only / "x"}
    argv = ["--budget", "tiny", *(a for k, v in folders.items() for a in (k, str(v)))]
    assert table2.main(argv) == 2
    one_line(capsys.readouterr().err, flag, "Read-only file system")


def test_a_table_script_with_a_folder_where_its_table_belongs_exits_2(tmp_path, capsys):
    (tmp_path / "results" / "table2-tiny.md").mkdir(parents=True)
    argv = ["--budget", "tiny", "--out", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    assert table2.main(argv) == 2
    one_line(capsys.readouterr().err, "table2-tiny.md", "is a folder")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
