"""The documentation's commands are real: every ``percept ...`` line shown in a shell code block of
README.md, CONTRIBUTING.md or docs/*.md parses with the real command line (``build_parser``), and the
README stays a short front door with a picture in its first screen.

Only parsing is checked (no command runs): a renamed subcommand or option, a value its type refuses
or a missing required option fails here, naming the file, the line and the command.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import NamedTuple

import pytest

from percept.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 120
DOC_FILES = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

# fenced code blocks whose lines are not shell commands
NOT_SHELL = {"python", "py", "pycon", "text", "json", "toml", "yaml", "ini", "html", "js", "javascript", "diff"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
REDIRECT = re.compile(r"^\d*(>|>>|<|>&|&>)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PERCEPT_WORD = re.compile(r"(^|[\s/])percept(\s|$)")


class DocCommand(NamedTuple):
    file: str  # relative to the repository root
    line: int  # 1-based, the command's first line
    text: str  # the command as written (continuations joined)
    argv: list[str]  # what percept receives
    error: str | None = None  # a line the shell could not read (unbalanced quotes)

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def shell_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, logical line) for each line inside a shell code block: backslash
    continuations joined, blank lines and code blocks in other languages skipped."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    shell = False
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        m = FENCE.match(raw)
        if fence is None:
            if m:
                fence, shell = m.group(1), m.group(2).lower() not in NOT_SHELL
            continue
        if m and m.group(1).startswith(fence) and not m.group(2):
            fence, pending = None, []
            continue
        if not shell:
            continue
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        logical = " ".join(part.strip() for part in pending).strip()
        pending = []
        if logical.startswith("$ "):  # a console prompt
            logical = logical[2:]
        if logical:
            out.append((start, logical))
    return out


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"  # a trailing comment; '#' inside a word (index.html#x) stays
    return list(lexer)


def percept_argv(line: str) -> list[str] | None:
    """The arguments ``percept`` gets from one shell line, or None when the line does not run it.

    Recognised: ``percept ...``, ``PATH/percept ...`` (``.venv/bin/percept``), and ``-m percept ...``
    (``python -m percept``, ``torchrun ... -m percept``), as one simple command of a pipeline or list;
    leading ``VAR=value`` assignments and redirections are skipped. Quotes and comments follow the
    shell (shlex); ``$VAR`` is left as written."""
    tokens = _tokens(line)
    commands: list[list[str]] = [[]]
    skip_next = False
    for i, tok in enumerate(tokens):
        if skip_next:
            skip_next = False
        elif tok.isdigit() and i + 1 < len(tokens) and REDIRECT.match(tokens[i + 1]):
            continue  # the descriptor of 2>&1, 2> FILE
        elif tok in OPERATORS:
            commands.append([])
        elif REDIRECT.match(tok):
            skip_next = True  # the redirection's target
        else:
            commands[-1].append(tok)
    for words in commands:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words:
            continue
        if words[0] == "percept" or words[0].endswith("/percept"):
            return words[1:]
        for i in range(len(words) - 1):
            if words[i] == "-m" and words[i + 1] == "percept":
                return words[i + 2:]
    return None


def doc_commands(path: Path, text: str | None = None) -> list[DocCommand]:
    """Every percept command in ``path``'s shell code blocks."""
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = str(path)
    found = []
    for number, line in shell_lines(text):
        try:
            argv = percept_argv(line)
        except ValueError as exc:  # shlex: no closing quotation
            if PERCEPT_WORD.search(line):
                found.append(DocCommand(name, number, line, [], f"the shell cannot read it: {exc}"))
            continue
        if argv is not None:
            found.append(DocCommand(name, number, line, argv))
    return found


def parse_error(argv: list[str]) -> str | None:
    """None when the real parser accepts ``argv`` (``--help`` included), else argparse's message."""
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            return stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else f"exit {exc.code}"
    return None


def check_command(cmd: DocCommand) -> None:
    """Fail (naming the file, line and command) when ``cmd`` does not parse."""
    error = cmd.error or parse_error(cmd.argv)
    if error is not None:
        pytest.fail(f"{cmd.where()}\n  -> {error}", pytrace=False)


ALL_COMMANDS = [cmd for path in DOC_FILES if path.exists() for cmd in doc_commands(path)]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    # output folders are checked for writability at parse time: relative ones resolve in a scratch folder
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("cmd", ALL_COMMANDS, ids=[f"{c.file}:{c.line}" for c in ALL_COMMANDS])
def test_documented_command_parses(cmd: DocCommand, in_tmp) -> None:
    check_command(cmd)


def test_every_page_is_searched() -> None:
    # the parametrized test above must not pass by finding nothing
    files = {c.file for c in ALL_COMMANDS}
    assert "README.md" in files, "no percept command found in README.md"
    assert len(ALL_COMMANDS) >= 20, f"only {len(ALL_COMMANDS)} documented commands found"
    subcommands = {c.argv[0] for c in ALL_COMMANDS if c.argv}
    for job in ("stylize", "webcam", "train-style", "export"):
        assert job in subcommands, f"no documented `percept {job}` command"


def test_a_made_up_command_is_caught(in_tmp) -> None:
    text = "\n".join([
        "Some prose with `percept in prose` (not in a code block: not a command).",
        "```sh",
        "percept models   # fine",
        ".venv/bin/percept stylize photo.jpg --model wave \\",
        "    -o out/x.png --no-such-flag   # a comment with --another-made-up-flag",
        "```",
        "```python",
        "from percept import stylize  # not a shell line",
        "```",
    ])
    found = doc_commands(Path("made_up.md"), text)
    assert [(c.line, c.argv) for c in found] == [
        (3, ["models"]),
        (4, ["stylize", "photo.jpg", "--model", "wave", "-o", "out/x.png", "--no-such-flag"]),
    ]
    assert parse_error(found[0].argv) is None
    error = parse_error(found[1].argv)
    assert error is not None and "--no-such-flag" in error
    with pytest.raises(pytest.fail.Exception, match=r"(?s)made_up\.md:4: .*-> .*--no-such-flag"):
        check_command(found[1])
    unreadable = doc_commands(Path("made_up.md"), "```sh\npercept stylize 'photo.jpg -o out/x.png\n```\n")
    assert len(unreadable) == 1 and unreadable[0].error is not None
    with pytest.raises(pytest.fail.Exception, match=r"(?s)made_up\.md:2: .*cannot read"):
        check_command(unreadable[0])
    assert doc_commands(Path("made_up.md"), "```\nthe layout's text, not a command\n```\n") == []
    for argv in (["stylise", "photo.jpg"], ["stylize", "photo.jpg", "--model", "wave", "--size", "two"],
                 ["train-style", "--data", "photos/"]):  # unknown subcommand, bad value, missing --style
        assert parse_error(argv) is not None, argv


def test_shell_forms_are_read_like_the_shell() -> None:
    assert percept_argv('percept stylize "my photo.jpg" --model wave -o out/a.png') == [
        "stylize", "my photo.jpg", "--model", "wave", "-o", "out/a.png"]
    assert percept_argv("CAT=$(ls x/chelsea.png)") is None
    assert percept_argv(".venv/bin/percept viz predict $CAT -o out/viz/cat") == [
        "viz", "predict", "$CAT", "-o", "out/viz/cat"]
    assert percept_argv("torchrun --standalone --nproc-per-node 2 -m percept train-style --style p.jpg") == [
        "train-style", "--style", "p.jpg"]
    assert percept_argv("make wheel && pip install dist/percept-0.1.0-py3-none-any.whl") is None
    assert percept_argv("PERCEPT_USER_MODELS=/tmp/m percept models > models.txt 2>&1") == ["models"]
    assert percept_argv("percept serve-web out/site --port 8000 &") == ["serve-web", "out/site", "--port", "8000"]
    assert percept_argv("pip install percept") is None


def test_readme_is_a_short_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    head = "\n".join(lines[:30])
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", head) + re.findall(r"<img[^>]*\bsrc=\"([^\"]+)\"", head)
    assert images, "no image in README.md's first 30 lines"
    for target in images:
        assert (ROOT / target).is_file(), f"README.md shows {target}, which does not exist"


def anchors(text: str) -> set[str]:
    """The #anchors of a page's headings, as GitHub makes them (code blocks skipped)."""
    found, fence = set(), None
    for raw in text.splitlines():
        m = FENCE.match(raw)
        if m:
            fence = None if fence and m.group(1).startswith(fence) else (fence or m.group(1))
            continue
        h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", raw)
        if fence is None and h:
            found.add(re.sub(r"[^\w\- ]", "", h.group(1).lower()).replace(" ", "-"))
    return found


def test_doc_links_exist() -> None:
    # relative links between the pages (and to images, scripts, files, headings) point at something
    missing = []
    for path in DOC_FILES:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<img[^>]*\bsrc=\"([^\"]+)\"", text):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file) if file else path
            if not dest.exists():
                missing.append(f"{path.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
                missing.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not missing, "broken links:\n" + "\n".join(missing)


def test_anchor_check_catches_a_wrong_heading() -> None:
    text = "# Training\n```sh\n# a comment, not a heading\n```\n## Across machines: `torchrun`\n"
    assert anchors(text) == {"training", "across-machines-torchrun"}


# ------------------------------------------------------------------------------ the Python the pages show

def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a page."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def api_names(code: str) -> set[str]:
    """The ``percept.NAME`` attributes a snippet uses, and the names it imports ``from percept.X``."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "percept":
            names.add(f"percept:{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("percept"):
            names |= {f"{node.module}:{a.name}" for a in node.names}
    return names


PY_PAGES = [p for p in DOC_FILES if python_blocks(p.read_text())]


@pytest.mark.parametrize("page", PY_PAGES, ids=[p.name for p in PY_PAGES])
def test_documented_python_names_exist(page: Path) -> None:
    """Every Python snippet compiles, and every ``percept.X`` it calls (or ``from percept.Y import X``) exists."""
    import importlib

    for code in python_blocks(page.read_text()):
        compile(code, str(page), "exec")
        for name in api_names(code):
            module, attr = name.split(":")
            assert hasattr(importlib.import_module(module), attr), f"{page.name}: {module}.{attr} does not exist"


def test_the_python_check_sees_a_missing_name() -> None:
    assert api_names("import percept\npercept.no_such_function('x')\n") == {"percept:no_such_function"}
    import percept

    assert not hasattr(percept, "no_such_function")
