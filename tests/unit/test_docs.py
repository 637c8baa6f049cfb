"""The README and docs/*.md name only paths, commands and make targets that exist.

Only code is read: inline code spans and fenced code blocks (prose may say anything), plus
``docs/<name>.md`` references anywhere, which are unambiguous. Commands are checked against
the real argument parsers (``replicator``, ``consistency``) and the Makefile's targets.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from consistency.cli import build_parser as consistency_parser
from replicator.cli import build_parser as replicator_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
NOT_IN_GIT = {".stack", ".stack-secure", ".stack-chaos", ".tools", ".venv", "build", "chaos-runs"}
"""Top-level directories the docs mention that exist only at run time."""

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
DOC_REF = re.compile(r"\bdocs/[\w.-]+\.md\b")
PLACEHOLDER = re.compile(r"[<>{}*]|\.\.\.")


def code_of(text: str) -> Iterator[str]:
    """Every fenced block's lines and every inline code span, in order."""
    for block in FENCE.findall(text):
        yield from block.splitlines()
    yield from SPAN.findall(FENCE.sub("", text))


def mentions(kind: str) -> list[tuple[str, str]]:
    """(doc, text) pairs for every path or command the docs show, for parametrize ids."""
    found: set[tuple[str, str]] = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        name = doc.relative_to(ROOT).as_posix()
        if kind == "path":
            found.update((name, ref) for ref in DOC_REF.findall(text))
            found.update((name, c) for c in code_of(text) if is_repo_path(c))
        else:
            found.update((name, c) for c in (command_in(line) for line in code_of(text)) if c)
    return sorted(found)


def is_repo_path(code: str) -> bool:
    """A code span naming a file or directory of this repository (not a key, URL or glob)."""
    code = code.strip()
    if " " in code or "://" in code or PLACEHOLDER.search(code) or ":" in code:
        return False
    top = code.split("/", 1)[0]
    if "/" in code:
        return bool(top) and top not in NOT_IN_GIT and (ROOT / top).exists()
    return code.endswith(".md")  # a bare name: only the top-level documents


def command_in(line: str) -> str | None:
    """The ``replicator ...`` / ``consistency ...`` / ``make ...`` command on a line, if any."""
    line = line.split(" #", 1)[0].strip().removeprefix("$ ").replace("\\|", "|")
    words = line.split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words or Path(words[0]).name not in ("replicator", "consistency", "make"):
        return None
    return " ".join([Path(words[0]).name, *words[1:]])


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def option(parsers: list[argparse.ArgumentParser], name: str) -> argparse.Action | None:
    for parser in parsers:
        for action in parser._actions:
            if name in action.option_strings:
                return action
    return None


def check_cli(parser: argparse.ArgumentParser, words: list[str]) -> None:
    """Subcommands (``a | b`` alternatives too) and every ``--option`` must exist.

    A span may name a command group without a subcommand (``replicator rollout``): that is
    a name in a sentence, not a command line, and is accepted.
    """
    chain = [parser]
    level = subparsers_of(parser)
    alternatives: dict[str, argparse.ArgumentParser] = {}
    expect_alternative = skip_value = False
    for word in (w.strip("[]") for w in words):
        if word == "|" or not word:
            expect_alternative = True
            continue
        if skip_value:
            skip_value = False
        elif re.fullmatch(r"--[a-z][a-z0-9-]*(=\S*)?", word):
            action = option(chain, word.split("=", 1)[0])
            assert action is not None, f"{word} is not an option of {chain[-1].prog}"
            skip_value = action.nargs != 0 and "=" not in word
            alternatives = {}  # what follows are the option's values
        elif expect_alternative and alternatives:
            assert word in alternatives, f"{word!r} is not a subcommand of the same group"
            chain[-1] = alternatives[word]
        elif level:
            assert word in level, f"{word!r} is not one of {sorted(level)} ({chain[-1].prog})"
            alternatives = level
            chain.append(level[word])
            level = subparsers_of(level[word])
        expect_alternative = False


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))


PARSERS = {"replicator": replicator_parser, "consistency": consistency_parser}


@pytest.mark.parametrize(("doc", "path"), mentions("path"))
def test_paths_the_docs_name_exist(doc: str, path: str) -> None:
    relative_to_doc = (ROOT / doc).parent / path
    assert (ROOT / path).exists() or relative_to_doc.exists(), f"{doc} names {path}"


@pytest.mark.parametrize(("doc", "command"), mentions("command"))
def test_commands_the_docs_show_exist(doc: str, command: str) -> None:
    program, *words = shlex.split(command.replace("|", " | "))
    if program == "make":
        targets = [w for w in words if "=" not in w and not w.startswith("-")]
        assert targets, f"{doc}: `{command}` names no target"
        assert set(targets) <= make_targets(), f"{doc}: `{command}`: no such make target"
        return
    check_cli(PARSERS[program](), words)


def test_the_checks_see_the_docs() -> None:
    """Guards against a parser change that silently finds nothing to check."""
    commands = {c for _, c in mentions("command")}
    paths = {p for _, p in mentions("path")}
    assert {"make test", "replicator demo [--once] [--insecure]"} <= commands
    assert {"docs/consistency.md", "replicator/worker.py"} <= paths


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("replicator wroker --region R", "not one of"),
        ("replicator stack up | dwon", "same group"),
        ("replicator worker --regoin R", "not an option"),
        ("consistency check --once --divergence full | none --jsno", "not an option"),
    ],
)
def test_a_wrong_command_is_caught(command: str, problem: str) -> None:
    program, *words = shlex.split(command.replace("|", " | "))
    with pytest.raises(AssertionError, match=problem):
        check_cli(PARSERS[program](), words)
