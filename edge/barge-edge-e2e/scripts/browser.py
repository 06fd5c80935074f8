#!/usr/bin/env python3
"""Headless Chromium for barge's dashboard tests: one JSON command per stdin line, one JSON
answer per stdout line ({"ok": true, "value": ...} or {"ok": false, "error": "..."}).

Commands: open(url), url(), type(css, text), click(css), text(css), wait_text(css, text,
timeout) (element text contains text), js(script) (returns its value), cookies(),
screenshot(path). Uses Debian's chromium + chromium-driver through python3-selenium."""
import json
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException


def start():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--user-data-dir=" + tempfile.mkdtemp(prefix="chromium")):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def text_of(d, css):
    # Found and read in one script: the live page re-renders its tables on every update, so
    # an element found by one WebDriver call can be gone (stale) by the next.
    return d.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null", css)


def on_fresh(d, css, act):
    """Run act on the element matching css, finding it again if a re-render replaced it."""
    for attempt in range(5):
        try:
            return act(d.find_element(By.CSS_SELECTOR, css))
        except StaleElementReferenceException:
            if attempt == 4:
                raise
            time.sleep(0.1)


def run(d, c):
    op = c["op"]
    if op == "open":
        d.get(c["url"])
        return d.current_url
    if op == "url":
        return d.current_url
    if op == "type":
        def type_into(el):
            el.clear()
            el.send_keys(c["text"])
        return on_fresh(d, c["css"], type_into)
    if op == "click":
        return on_fresh(d, c["css"], lambda el: el.click())
    if op == "text":
        return text_of(d, c["css"])
    if op == "wait_text":
        end = time.time() + c.get("timeout", 20)
        last = None
        while time.time() < end:
            last = text_of(d, c["css"])
            if last is not None and c["text"] in last:
                return last
            time.sleep(0.2)
        raise RuntimeError("%r never contained %r (last: %r)" % (c["css"], c["text"], last))
    if op == "js":
        return d.execute_script(c["script"])
    if op == "cookies":
        return d.get_cookies()
    if op == "screenshot":
        d.save_screenshot(c["path"])
        return c["path"]
    raise RuntimeError("unknown op %r" % op)


def main():
    d = start()
    print(json.dumps({"ok": True, "value": "ready"}), flush=True)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = {"ok": True, "value": run(d, json.loads(line))}
            except Exception as e:  # the test reports it
                out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            print(json.dumps(out), flush=True)
    finally:
        d.quit()


if __name__ == "__main__":
    main()
