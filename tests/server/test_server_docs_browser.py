"""The /docs explorer in a real headless Chromium: it loads offline and runs a request.

Needs Debian's ``chromium`` (``.ci/run`` installs it with apt before the tests).
"""

from __future__ import annotations

import json

import pytest
from cdp import Chromium


@pytest.fixture
def browser():
    chromium = Chromium()
    yield chromium
    chromium.close()


def test_docs_page_runs_a_request_from_the_page(browser, service, http):
    key = service.signup("free")
    http.get("/v1/usage", headers={"X-API-Key": key})
    browser.navigate(service.base_url + "/docs")
    browser.wait_for("document.querySelectorAll('.opblock').length >= 10")

    # Everything the page loaded came from the service itself (works offline).
    resources = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(service.base_url) for url in resources), resources
    assert browser.evaluate("document.querySelector('.info .title').textContent").startswith("NeuroFab")

    # Authorize with the key, open GET /v1/usage, "Try it out", "Execute".
    browser.evaluate(f"window.ui.preauthorizeApiKey('ApiKey', {json.dumps(key)})")
    block = "document.querySelector('#operations-accounts-usage')"
    browser.click(f"{block}.querySelector('.opblock-summary-control')")
    browser.wait_for(f"!!{block}.querySelector('.try-out__btn')")  # the operation opened
    browser.click(f"{block}.querySelector('.try-out__btn')")
    browser.wait_for(f"!!{block}.querySelector('.execute')")
    browser.click(f"{block}.querySelector('.execute')")
    status = browser.wait_for(
        f"(() => {{ const s = {block}"
        ".querySelector('.live-responses-table tr.response .response-col_status');"
        " return s && s.textContent.trim(); })()"
    )
    body = browser.wait_for(
        f"(() => {{ const b = {block}.querySelector('.live-responses-table .microlight, "
        ".live-responses-table pre'); return b && b.textContent; })()"
    )
    assert status.startswith("200")
    usage = json.loads(body)
    assert usage["tier"] == "free" and usage["jobs_today"] == 0 and usage["jobs_limit_today"] == 10
