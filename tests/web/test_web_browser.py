"""The console in a real browser (Debian's Chromium, headless, driven by Playwright) against a live server:
sign in, review a sample with the keyboard, approve with two principals (server-side signing and an
uploaded offline signature), see the release, browse the log and check an inclusion proof in the page.

Screenshots of every page go to tests/web/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import World, live_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        if _in_ci():
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _sign_in(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")


def _sign_out(page: Any) -> None:
    with page.expect_navigation():
        page.click("header form[action='/logout'] button")


PHONE = {"width": 390, "height": 844}


def _shot(page: Any, artifacts: Path, name: str) -> None:
    """A screenshot at the page's desktop size and one at 390 px wide, where nothing may overflow sideways
    (wide tables and graphs scroll inside their own box)."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= PHONE["width"], f"{name}: the page is {overflow} px wide at 390 px"
    finally:
        page.set_viewport_size(size)


def test_review_approve_release_and_log(browser: Any, world: World, artifacts: Path, tmp_path: Path) -> None:
    from dataward.lineage.runs import record_run
    from dataward.release.versions import release
    from dataward.workflow.approval import sign_statement

    ws, bid = world.ws, world.review
    errors: list[str] = []
    with live_server(ws, server_side_signing=True) as base:
        ctx = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # sign-in: a wrong token is refused, the reviewer's token opens a session
        page.goto(f"{base}/batches/{bid}")
        assert "/login" in page.url
        page.fill("#token", "dwt_not-a-real-token")
        page.click("#login-form button[type=submit]")
        assert "unknown API token" in page.text_content("#login-error")
        _shot(page, artifacts, "01-login")
        errors.clear()  # the refused sign-in above answered 403 on purpose
        _sign_in(page, base, world.token("rita"))
        assert page.text_content("#principal") == "rita"
        cookie = next(c for c in ctx.cookies() if c["name"] == "dw_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        _shot(page, artifacts, "02-overview")
        assert page.locator("#sources tbody tr").count() == 2
        assert bid in page.text_content("#batches")

        # the batch: manifest, findings with plots, records behind them with PII masked
        page.goto(f"{base}/batches/{bid}")
        assert page.text_content("#batch-id") == bid
        assert page.locator("svg.plot").count() >= 3
        body = page.text_content("main")
        assert "person0@example.com" not in body and "p***@e***.com" in body
        _shot(page, artifacts, "03-batch")

        # the label audit with the keyboard, no reloads: flagged records first, with the finding that
        # flagged them; w + label, n (skip), z (undo), then o for the rest
        page.goto(f"{base}/batches/{bid}/audit")
        page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
        navigations: list[str] = []
        total = page.locator("table.sample tbody tr").count()
        assert total >= 8
        strata = page.locator("#queue tbody tr td:nth-child(3)").all_text_contents()
        assert strata[0] == "flagged" and strata[-1] == "random"
        assert strata == sorted(strata)  # every flagged record before every random one
        shown = page.locator(".review-item:not([hidden])")
        assert "flagged by pii/email" in shown.locator(".flagged-by").text_content()
        assert "person" not in shown.text_content() and "@e***.com" in shown.text_content()  # masked PII
        first = page.get_attribute("#review", "data-record")
        page.keyboard.press("w")
        page.fill("#new-label", "spam")
        page.keyboard.press("Enter")
        second = page.get_attribute("#review", "data-record")
        assert second != first
        row = page.locator(f'#queue tr[data-record="{first}"] td.decision')
        assert row.text_content() == "wrong-label:spam"
        page.keyboard.press("n")
        third = page.get_attribute("#review", "data-record")
        assert third not in (first, second)
        page.keyboard.press("z")  # undo the wrong label: back on the first record, undecided again
        assert page.get_attribute("#review", "data-record") == first
        assert row.text_content() == "–"
        _shot(page, artifacts, "04-audit-review")
        for _ in range(total + 2):
            if page.locator("#all-decided").is_visible():
                break
            page.keyboard.press("o")
        page.locator("#pending", has_text="all decisions saved").wait_for()
        assert navigations == [], navigations  # every decision went by fetch
        assert page.locator("#all-decided").is_visible()
        assert page.text_content("#decided-count") == str(total)
        assert "label-error rate" in page.text_content("#estimate")
        page.reload()  # the server has every decision (the undone one as ok, not wrong-label)
        assert f"{total}</strong> of <strong>{total}" in page.inner_html("#progress")
        assert page.locator(f'#queue tr[data-record="{first}"] td.decision').text_content() == "ok"
        _shot(page, artifacts, "05-audit-done")
        with page.expect_navigation():
            page.click("#complete-audit")
        assert page.text_content("#batch-state") == "audited"
        _sign_out(page)

        # approval 1: alice, signed on the server
        _sign_in(page, base, world.token("alice"))
        page.goto(f"{base}/batches/{bid}/approval")
        assert page.text_content("#policy-verdict") == "passes", page.text_content("ul.rules")
        _shot(page, artifacts, "06-approval")
        with page.expect_navigation():
            page.click("#approve")
        assert page.text_content("#approval-count") == "1"
        _sign_out(page)

        # approval 2: bob downloads the statement, signs it offline, uploads the envelope
        _sign_in(page, base, world.token("bob"))
        page.goto(f"{base}/batches/{bid}/approval")
        with page.expect_download() as dl:
            page.click("#download-statement")
        statement = Path(dl.value.path()).read_bytes()
        assert json.loads(statement)["predicate"]["approver"] == "bob"
        signed = tmp_path / "approval.dsse"
        signed.write_bytes(sign_statement(statement, ws.actor("bob").key))
        page.set_input_files("#statement-file", str(signed))
        with page.expect_navigation():
            page.click("#upload-statement")
        assert page.text_content("#batch-state") == "approved"
        assert page.text_content("#approval-count") == "2"
        _shot(page, artifacts, "07-approved")

        # the release (by the CLI's library call) shows up with its diff and lineage
        release(ws, ws.actor("alice"), "reviews", [bid])
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights")
        record_run(ws, ws.actor("tina"), "reviews@2", [model])
        page.goto(f"{base}/versions")
        assert "reviews@2" in page.text_content("#versions")
        page.goto(f"{base}/versions/reviews@2")
        assert "verified" in page.text_content("h1")
        assert bid in page.text_content("#diff")
        _shot(page, artifacts, "08-version")
        page.goto(f"{base}/lineage")
        graph = page.locator("#lineage-graph svg")
        for kind in ("source", "batch", "version", "run", "model"):
            assert graph.locator(f"g.node-{kind}").count() >= 1, kind
        _shot(page, artifacts, "09-lineage")

        # the log: filter, open an entry, the inclusion proof is verified in the page
        page.goto(f"{base}/log?action=batch.approve")
        rows = page.locator("table.entries tbody tr")
        assert rows.count() >= 2
        assert all("batch.approve" in t for t in rows.all_text_contents())
        _shot(page, artifacts, "10-log")
        with page.expect_navigation():
            rows.first.locator("a").click()
        page.locator("#proof-result.ok, #proof-result.bad").wait_for()  # no eval: the page's CSP forbids it
        assert page.text_content("#proof-result") == "verified", page.text_content("#proof-detail")
        assert page.text_content("#server-check") == "verified"
        _shot(page, artifacts, "11-log-entry")
        ctx.close()
    assert not errors, errors
    print(f"screenshots in {artifacts}")


def test_offline_review_downloads_decisions_for_the_cli(browser: Any, world: World, tmp_path: Path) -> None:
    """Without server-side signing the keyboard review keeps decisions in the browser; the reviewer downloads
    them and imports them with `dataward audit import` (signed with their own key by the CLI)."""
    from web_helpers import FAST, write_csv

    from dataward.acquire.acquire import acquire
    from dataward.cli import main
    from dataward.workflow import audit, screening

    ws = world.ws
    b = acquire(ws, ws.actor("ingrid"), "scratch", [write_csv(tmp_path / "offline.csv", 30, tag="offline ")])
    screening.screen_batch(ws, ws.actor("sam"), b.id, checks=FAST)
    audit.draw_sample(ws, ws.actor("rita"), b.id, size=3)
    n = len(audit.sample_items(ws, b.id))
    with live_server(ws, server_side_signing=False) as base:
        ctx = browser.new_context(accept_downloads=True)
        page = ctx.new_page()
        _sign_in(page, base, world.token("rita"))
        page.goto(f"{base}/batches/{b.id}/audit")
        assert page.get_attribute("#review", "data-mode") == "offline"
        seen = []
        for k in range(n):
            seen.append(page.get_attribute("#review", "data-record"))
            if k == 0:
                page.keyboard.press("w")
                page.fill("#new-label", "neg")
                page.keyboard.press("Enter")
            else:
                page.keyboard.press("o")
        assert len(set(seen)) == n
        assert page.locator("#all-decided").is_visible()
        assert page.text_content("#offline-count") == str(n)
        with page.expect_download() as dl:
            page.click("#download-decisions")
        csv_path = tmp_path / "decisions.csv"
        csv_path.write_bytes(Path(dl.value.path()).read_bytes())
        ctx.close()
    assert all(i.decision is None for i in audit.sample_items(ws, b.id))  # nothing was recorded by the server
    assert main(["-w", str(ws.path), "--as", "rita", "audit", "import", b.id, str(csv_path)]) == 0
    decided = {str(i.record): (i.decision, i.new_label) for i in audit.sample_items(ws, b.id)}
    assert decided[seen[0]] == ("wrong-label", "neg")
    assert all(decided[r] == ("ok", None) for r in seen[1:])


def test_every_other_button_and_page(browser: Any, world: World, artifacts: Path) -> None:
    """The buttons the review flow above does not press, on every page, each checked for its effect; every
    page shot at desktop size and at 390 px."""
    from web_helpers import FAST, write_csv

    from dataward.acquire.acquire import acquire
    from dataward.workflow import screening

    ws = world.ws
    fresh = acquire(ws, ws.actor("ingrid"), "vendor", [write_csv(world.tmp / "buttons.csv", 40, pii=True, tag="btn ")])
    screening.screen_batch(ws, ws.actor("sam"), fresh.id, checks=FAST)
    errors: list[str] = []
    with live_server(ws, server_side_signing=True) as base:
        ctx = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, base, world.token("rita"))

        # "Draw the sample": no crash, the flash says what was drawn, the queue shows flagged records first
        page.goto(f"{base}/batches/{fresh.id}/audit")
        with page.expect_navigation():
            page.click("#draw-sample")
        assert "Sample drawn:" in page.text_content("p.flash")
        assert page.locator("#queue tbody tr").count() > 0
        _shot(page, artifacts, "12-audit-drawn")
        # the buttons of the review (mouse, not keys): ok, then undo
        first = page.get_attribute("#review", "data-record")
        page.click("button[data-key=o]")
        assert page.get_attribute("#review", "data-record") != first
        page.click("#undo")
        assert page.get_attribute("#review", "data-record") == first
        page.locator("#pending", has_text="all decisions saved").wait_for()

        # overview: search, then clear
        page.goto(f"{base}/")
        page.fill("#batch-search input[name=q]", fresh.id)
        with page.expect_navigation():
            page.click("#search-batches")
        assert page.locator("#batches tbody tr").count() == 1
        assert "showing 1 of 1 batch(es)" in page.text_content("#batches-shown")
        _shot(page, artifacts, "13-overview-search")
        _sign_out(page)

        # approval page as an approver: "Reject" with a reason
        _sign_in(page, base, world.token("alice"))
        page.goto(f"{base}/batches/{fresh.id}/approval")
        _shot(page, artifacts, "14-approval-reject")
        page.fill("input[name=reason]", "button test")
        with page.expect_navigation():
            page.click("button.danger")
        assert page.text_content("#batch-id") == fresh.id and "rejected" in page.text_content("main")

        # a released batch shows its state first (whether today's policy still passes it depends on the
        # source's risk, which the rejections above raised: test_web_pages checks the verdict itself)
        page.goto(f"{base}/batches/{world.released}/approval")
        assert page.text_content("#policy-verdict").startswith("released")

        # versions: "Compare"
        page.goto(f"{base}/versions")
        page.fill("input[name=from]", "reviews@1")
        page.fill("input[name=to]", "reviews@1")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert "showing" in page.text_content("#diff-shown")
        _shot(page, artifacts, "15-versions-compare")

        # lineage: "Show" a target
        page.goto(f"{base}/lineage")
        page.fill("input[name=target]", "reviews@1")
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert page.locator("#lineage-graph svg g.node").count() >= 3
        _shot(page, artifacts, "16-lineage-target")

        # log: "Filter"
        page.goto(f"{base}/log")
        page.fill("#log-filters input[name=action]", "batch.reject")
        with page.expect_navigation():
            page.click("#log-filters button[type=submit]")
        assert all("batch.reject" in t for t in page.locator("table.entries tbody tr").all_text_contents())

        # incidents: page and "Search"
        page.goto(f"{base}/incidents")
        assert "incident(s)" in page.text_content("#incidents-shown")
        with page.expect_navigation():
            page.click("#search-incidents")
        _shot(page, artifacts, "17-incidents")

        # the API docs, served locally (the context blocks every other host)
        ctx.route("**/*", lambda r: r.abort() if not r.request.url.startswith(base) else r.continue_())
        page.goto(f"{base}/api/docs")
        page.locator("#swagger-ui .information-container").wait_for(timeout=20000)
        _shot(page, artifacts, "18-api-docs")
        ctx.close()
    assert not errors, errors


# `make check` (the quick lane) leaves these out: drives Chromium
pytestmark = pytest.mark.slow
