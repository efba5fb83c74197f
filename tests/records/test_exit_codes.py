"""One table of exit codes: docs/exit-codes.md, dataward.errors.EXIT_CODES and every error class agree."""

from __future__ import annotations

import re
from pathlib import Path

import dataward.detect.interface
import dataward.records.sandbox
import dataward.screen.interface
from dataward.errors import EXIT_CODES, Error

DOC = Path(__file__).parents[2] / "docs" / "exit-codes.md"


def _subclasses(cls: type[Error]) -> list[type[Error]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def test_the_doc_table_is_the_code_table() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", DOC.read_text(encoding="utf-8"), flags=re.M)
    assert {int(code): text for code, text in rows} == EXIT_CODES


def test_every_error_class_uses_a_documented_code_and_is_named_there() -> None:
    for cls in _subclasses(Error):
        assert cls.exit_code in EXIT_CODES, cls
        if cls is not Error:  # the class, or the documented class it specialises, is named in the table
            named = [c.__name__ for c in cls.__mro__ if c.__name__ in EXIT_CODES[cls.exit_code]]
            assert named, (cls.__name__, cls.exit_code)


def test_cli_statuses_in_use_are_documented() -> None:
    src = Path(dataward.records.sandbox.__file__).parents[1] / "cli"
    used = set()
    for py in src.glob("*.py"):
        text = py.read_text(encoding="utf-8")
        used |= {int(n) for n in re.findall(r"(?:ctx\.exit|sys\.exit)\(\s*(?:0 if [^)]* else )?(\d+)\)", text)}
        used |= {int(n) for n in re.findall(r"^\s+return (\d+)$", text, flags=re.M)}
        for name in re.findall(r"(?:ctx\.exit|sys\.exit)\(\s*0 if [^)]* else ([A-Z_]+)\)", text):
            used |= {int(n) for n in re.findall(rf"^{name} = (\d+)$", text, flags=re.M)}
    assert used and used <= set(EXIT_CODES), used - set(EXIT_CODES)
