"""The dashboard opened from the address `serve` prints (`/#token=T`): it keeps the token for
the tab, drops it from the address bar, and loads the data without asking."""

from __future__ import annotations

import pytest

from queuectl import Queue

pytestmark = pytest.mark.browser

TOKEN = "token-in-the-address-0123"


def test_the_token_in_the_address_is_kept_for_the_tab(live, page, queue: Queue) -> None:
    from playwright.sync_api import expect

    queue.enqueue("true", id="guarded")
    server = live(TOKEN)
    page.goto(f"{server.url}/#token={TOKEN}")
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    expect(page.locator("#token-panel")).to_be_hidden()
    assert TOKEN not in page.url
    page.reload()
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('queuectl-token')") == TOKEN
    assert page.errors == []
