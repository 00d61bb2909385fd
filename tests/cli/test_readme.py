"""The README's Python blocks run as written, their `# result` comments hold, its command
lines do what it says, and help texts agree with behaviour (issue 14, item 10)."""
from __future__ import annotations

import ast
import io
import json
import re
import textwrap
import tokenize

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    """The README's code blocks of one language; a block inside a list item is indented."""
    return [textwrap.dedent(b) for b in re.findall(rf"```{lang}\n(.*?)```", README, re.S)]


def _checks(block: str):
    """(expression, expected comment) for lines like `expr   # 'value'` / `# True` / `# <repr>`."""
    for line in block.splitlines():
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(line).readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
        comment = next((t for t in toks if t.type == tokenize.COMMENT), None)
        if comment is None:
            continue
        code, note = line[:comment.start[1]].strip(), comment.string[1:].strip()
        if not code or "=" in code.replace("==", ""):
            continue
        if note.startswith(("True", "'", "<")):
            yield code, note


PY_BLOCKS = _blocks("python")


def test_readme_has_python_blocks():
    assert len(PY_BLOCKS) >= 2


@pytest.mark.parametrize("block", PY_BLOCKS, ids=[f"block{i}" for i in range(len(PY_BLOCKS))])
def test_python_block_runs_as_written(block, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    ns: dict = {"__name__": "__readme__"}
    exec(compile(block, "README.md", "exec"), ns)          # noqa: S102 - our own README
    for code, note in _checks(block):
        value = eval(code, ns)                              # noqa: S307
        if note.startswith("True"):
            assert value is True, code
        elif note.startswith("'"):
            assert value == ast.literal_eval(note), code
        else:
            assert repr(value) == note, code


def _readme_commands():
    """The `exi15118 decode` lines of the README that need no file of the user's."""
    out = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            cmd = line.split("  #")[0].strip()
            for part in cmd.split("&&"):
                part = part.strip()
                if "exi15118 decode" in part and "capture.pcapng" not in part:
                    out.append(part)
    return out


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_decode_commands(cli, command, monkeypatch, tmp_path):
    # run where the README's relative paths resolve, without writing into the checkout
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    stdin = b""
    if "|" in command:
        feed, command = command.split("|")
        stdin = feed.strip().removeprefix("echo ").encode() + b"\n"
    argv = command.split()[1:]
    r = cli(*argv, stdin=stdin)
    if "--out" in argv:             # a dataset: files written, one line on stderr saying so
        out_dir = tmp_path / argv[argv.index("--out") + 1]
        assert r.code == 0 and sorted(out_dir.glob("part-*.parquet")), (command, r.err)
        assert f"written to {argv[argv.index('--out') + 1]}" in r.err
        return
    if "--schema auto" in command:  # stderr names the message set it chose, and nothing else
        assert r.code == 0 and r.out and r.err.startswith("exi15118 decode: schema "), (command, r.err)
        assert len(r.err.splitlines()) == 1, r.err
        return
    assert r.code == 0 and r.out and r.err == "", (command, r.err)


def test_java_codec_cost_is_stated_once():
    sentences = re.split(r"(?<=[.;])\s", README.replace("\n", " "))
    figures = [x for x in sentences if "Java codec" in x and re.search(r"\d+(?:–\d+)? ms\b", x)]
    assert len(figures) == 1, figures


def test_secc_help_describes_the_json_ready_line(cli):
    r = cli("secc", "--help")
    assert r.code == 0
    assert '{"event": "ready", "interface": ..., "tcp_port": ..., "tls_port": ..., "protocols": [...]}' in r.out
    assert '{"event": "stopped"' in r.out


def test_evcc_help_describes_its_result_line_and_ctrl_c(cli):
    r = cli("evcc", "--help")
    assert r.code == 0 and '"event": "result"' in r.out and "exit code 130" in r.out


def test_exit_codes_in_readme_match_the_code():
    from exi.cli import errors
    for code in (errors.OK, errors.BAD_INPUT, errors.USAGE, errors.INTERRUPTED):
        assert f"| {code} |" in README
    assert "exi15118 COMMAND: error: ..." in README
