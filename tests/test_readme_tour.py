"""The README tour is a test: its shell block runs as written, line by line, in a fresh directory.

The block after "## A tour" is extracted from README.md and run by bash (`set -euo pipefail`: any failing
command fails the test) in an empty temporary directory that holds only `.venv`, a link to the virtual
environment running this test (the tour works in `tour/` and takes `dataward` from `../.venv/bin`). HOME is a
fresh directory too, and the tour keeps one keyring per person (DATAWARD_KEYRING), so nothing of the
developer's keys or witness leaks in. The one
interactive step, `audit review`, reads keys from a pseudo-terminal: the test types `o` (ok) for every
sampled record, as a reviewer would. Lines that cannot end (`dataward serve`) are comments in the tour.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def tour_script(text: str) -> str:
    """The first ```sh block after the "## A tour" heading."""
    section = text.split("\n## A tour\n", 1)
    if len(section) != 2:
        raise AssertionError("README.md has no '## A tour' section")
    m = re.search(r"```sh\n(.*?)\n```", section[1], re.S)
    if m is None:
        raise AssertionError("the tour section has no ```sh block")
    return m.group(1) + "\n"


def test_the_tour_is_the_first_sh_block_of_its_section() -> None:
    text = "# x\n## A tour\nprose\n```sh\necho one\n```\n```sh\necho two\n```\n## Next\n"
    assert tour_script(text) == "echo one\n"
    with pytest.raises(AssertionError, match="no '## A tour'"):
        tour_script("# nothing\n")


def _type_keys(master: int, stop: threading.Event) -> None:
    """A reviewer at the keyboard: `o` (ok) for whatever record is shown, until the tour ends. Whatever the
    programs write to the terminal is read and dropped, so that they never block on a full terminal."""
    import select

    while not stop.is_set():
        try:
            readable, writable, _ = select.select([master], [master], [], 0.05)
            if readable:
                os.read(master, 65536)
            if writable:
                os.write(master, b"o")
        except OSError:
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    script = tour_script(README.read_text(encoding="utf-8"))
    needed_words = (".venv/bin", "key generate", "principal add", "vendor.pub", "delivery.dsse.json", "run.open()")
    for needed in needed_words:
        assert needed in script, f"the tour never mentions {needed!r}"
    work, home = tmp_path / "tour", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (work / "tour.sh").write_text("set -euo pipefail\n" + script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="120")
    master, slave = pty.openpty()
    tty.setraw(slave)  # keys typed ahead wait in the terminal until the review reads them
    stop = threading.Event()
    typist = threading.Thread(target=_type_keys, args=(master, stop), daemon=True)
    typist.start()
    try:
        done = subprocess.run(
            ["bash", "tour.sh"], cwd=work, env=env, stdin=slave, capture_output=True, text=True, timeout=1500
        )
    finally:
        stop.set()
        typist.join(timeout=5)
        os.close(slave)
        os.close(master)
    log = done.stdout[-6000:] + "\n--- stderr ---\n" + done.stderr[-6000:]
    assert done.returncode == 0, log
    assert "Traceback" not in done.stderr, log
    # what the tour promises actually happened
    tour = work / "tour"
    assert (tour / "model.pkl").is_file() and (tour / "detect.json").is_file(), log
    assert "red team of predict.py:predict" in done.stdout and "PASSED" in done.stdout, log
    assert "revoked" in done.stdout, log  # the rollback at the end
