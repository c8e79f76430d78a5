"""The labelling page in a real browser (headless Chromium through selenium): regions labelled
with the palette and the number keys, one pixel clicked in the magnified view, undo, a reload
mid-way that loses nothing, and the finish whose imported masks are exactly what was set."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from halo.acquisition.queries import draft_path, read_manifest
from halo.acquisition.rounds import BUDGET_FILE, mask_path, read_mask
from halo.annotate import serve
from halo.annotate.drafts import image_query
from tests.annotate.conftest import free_port, region_masks
from tests.conftest import chromium

TIMEOUT = 15  # seconds any one wait may take


@pytest.fixture
def browser():
    """Headless Chromium (tests.conftest.chromium)."""
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture
def served(round_dir):
    """``serve`` of the round in a thread: yields (url, the thread's result)."""
    port, result = free_port(), {}
    thread = threading.Thread(
        target=lambda: result.update(code=serve(round_dir, port=port)), daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "api/manifest", timeout=5).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    yield url, result, thread
    if _finishing(url):  # serve() returns once the person finished; else it serves on (daemon)
        thread.join(timeout=TIMEOUT)


def _finishing(url: str) -> bool:
    """Whether the round's server was finished (or has stopped already)."""
    try:
        with urllib.request.urlopen(url + "api/manifest", timeout=5) as res:
            return bool(json.loads(res.read()).get("finished"))
    except OSError:
        return True


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(lambda d: condition(d), message=what)


def _settled(driver) -> None:
    """Until the page is idle: loaded, no image loading, every change saved."""

    def idle(d) -> bool:
        body = d.find_element("tag name", "body")
        state = d.find_element("id", "status").get_attribute("data-state")
        if state == "error":
            raise AssertionError(d.find_element("id", "status").text)
        ready = body.get_attribute("data-ready") == "true"
        return ready and body.get_attribute("data-busy") == "false" and state == "saved"

    _wait(driver, idle, "the page to settle")


def _position(driver) -> tuple[int, int]:
    body = driver.find_element("tag name", "body")
    return int(body.get_attribute("data-image")), int(body.get_attribute("data-region"))


def _left(driver) -> int:
    return int(driver.find_element("id", "progress").get_attribute("data-left"))


def test_label_reload_and_finish_in_a_browser(browser, served, round_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    url, result, thread = served
    entries = read_manifest(round_dir)
    regions = region_masks(round_dir)
    expected = {e["id"]: np.full(e["size"], 255, np.uint8) for e in entries}

    def label(value: int) -> None:  # what a class key or button does to the current region
        image, region = _position(browser)
        mask = regions[entries[image]["id"]][region] & (expected[entries[image]["id"]] == 255)
        expected[entries[image]["id"]][mask] = value

    def key(*keys: str) -> None:
        chain = ActionChains(browser)
        if keys[0] == Keys.SHIFT:
            chain.key_down(Keys.SHIFT).send_keys(keys[1]).key_up(Keys.SHIFT)
        else:
            chain.send_keys(*keys)
        chain.perform()

    browser.get(url)
    _settled(browser)
    assert _position(browser) == (0, 0) and _left(browser) == 7
    assert browser.find_element(By.ID, "progress").text == "7 regions left (2 images)"
    palette = browser.find_elements(By.CSS_SELECTOR, "#palette button")
    assert len(palette) == 20 and palette[-1].get_attribute("data-class") == "255"

    label(0)  # image a, region 1: the palette button "road"
    browser.find_element(By.CSS_SELECTOR, '#palette button[data-class="0"]').click()
    _settled(browser)
    assert _position(browser) == (0, 1) and _left(browser) == 6
    label(1)  # region 2: key 2 = sidewalk
    key("2")
    _settled(browser)
    assert _position(browser) == (0, 2)
    key("3")  # region 3: building; image a is done: on to image b
    _settled(browser)
    assert _position(browser) == (1, 0) and _left(browser) == 4
    browser.find_element(By.ID, "undo").click()  # back to image a, region 3: unlabelled again
    _settled(browser)
    assert _position(browser) == (0, 2) and _left(browser) == 5
    label(9)  # key 0 = the 10th class (terrain); image a is done: on to image b
    key("0")
    _settled(browser)
    assert _position(browser) == (1, 0) and _left(browser) == 4

    progress = browser.find_element(By.ID, "progress").text
    draft = draft_path(round_dir, "city/img_a").read_text()
    assert json.loads(draft)["labels"].count(None) == 0
    browser.refresh()  # a reload mid-way loses nothing, and comes back to the same place
    _settled(browser)
    assert browser.find_element(By.ID, "progress").text == progress == "4 regions left (1 image)"
    assert _position(browser) == (1, 0)
    assert draft_path(round_dir, "city/img_a").read_text() == draft
    assert not draft_path(round_dir, "img_b").exists()

    # image b, region 1: its centre pixel clicked with the brush "car", the rest: key 9
    Select(browser.find_element(By.ID, "brush")).select_by_value("13")
    zoom = browser.find_element(By.ID, "canvas-zoom")
    r0, c0, scale = (int(zoom.get_attribute(f"data-{k}")) for k in ("r0", "c0", "scale"))
    row, col = entries[1]["regions"][0]["centre"]
    x = (col - c0 + 0.5) * scale - zoom.size["width"] / 2
    y = (row - r0 + 0.5) * scale - zoom.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(zoom, int(x), int(y)).click().perform()
    _settled(browser)
    expected["img_b"][row, col] = 13
    assert _position(browser) == (1, 0)  # a single pixel does not move on
    assert json.loads(draft_path(round_dir, "img_b").read_text())["labels"].count(13) == 1
    label(8)
    key("9")
    _settled(browser)
    label(255)  # region 2 (clipped at the border): unsure
    key("u")
    _settled(browser)
    label(11)  # region 3: Shift+2 = the 12th class (person)
    key(Keys.SHIFT, "2")
    _settled(browser)
    assert _position(browser) == (1, 3) and _left(browser) == 1  # region 4 stays unlabelled

    browser.find_element(By.ID, "finish").click()
    alert = _wait(browser, lambda d: d.switch_to.alert, "the confirmation")
    assert "1 region still has unlabelled pixels" in alert.text
    alert.accept()
    _wait(
        browser,
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "finished",
        "the import",
    )
    summary = browser.find_element(By.ID, "summary").text
    thread.join(timeout=TIMEOUT)
    assert not thread.is_alive() and result == {"code": 0}  # the server stopped by itself
    answered = sum(int((a != 255).sum()) for a in expected.values())
    assert f"{answered} of 52 queried pixels labelled" in summary
    for image_id, answer in expected.items():
        assert np.array_equal(read_mask(mask_path(round_dir, image_id)), answer), image_id
    assert (round_dir / BUDGET_FILE).is_file()
    assert (expected["img_b"] == 13).sum() == 1 and (expected["img_b"] == 11).sum() == 8


def test_the_page_needs_nothing_from_the_network():
    static = Path(__file__).parents[2] / "halo" / "annotate" / "static"
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


def test_two_tabs_on_one_round_lose_no_answer(browser, served, round_dir):
    from selenium.webdriver.common.action_chains import ActionChains

    url, _, _ = served
    members = image_query(round_dir, read_manifest(round_dir)[0]).members  # image a's regions
    own = [
        set(m.tolist()) - set().union(*(o.tolist() for o in members if o is not m)) for m in members
    ]

    def draft() -> dict[int, set]:  # region -> the answers its own pixels hold in the draft
        labels = json.loads(draft_path(round_dir, "city/img_a").read_text())["labels"]
        return {r: {labels[p] for p in positions} for r, positions in enumerate(own)}

    browser.get(url)
    _settled(browser)
    tab_a = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(url)
    _settled(browser)
    tab_b = browser.current_window_handle
    assert _position(browser) == (0, 0)  # both tabs opened on image a before any answer

    browser.switch_to.window(tab_a)
    ActionChains(browser).send_keys("1").perform()  # A: region 1 = road
    _settled(browser)
    assert draft() == {0: {0}, 1: {None}, 2: {None}}

    browser.switch_to.window(tab_b)  # B still shows no answer; it labels region 2
    ActionChains(browser).send_keys("n", "2").perform()
    _settled(browser)
    assert draft() == {0: {0}, 1: {1}, 2: {None}}  # A's answer kept, B's added
    assert "merged" in browser.find_element("id", "message").text
    assert _left(browser) == 5  # B's page now counts A's answer too

    browser.switch_to.window(tab_a)  # A (at region 2, unaware of B) answers it: A's wins there
    ActionChains(browser).send_keys("3").perform()
    _settled(browser)
    assert draft() == {0: {0}, 1: {2}, 2: {None}}
    browser.switch_to.window(tab_b)
    browser.close()
    browser.switch_to.window(tab_a)


def _canvas_pixel(driver, canvas_id: str, x: int, y: int) -> list[int]:
    script = (
        "const c = document.getElementById(arguments[0]);"
        "return Array.from(c.getContext('2d').getImageData(arguments[1], arguments[2], 1, 1).data);"
    )
    return driver.execute_script(script, canvas_id, x, y)


def test_a_laptop_screen_shows_the_palette_keys_and_view_controls(browser, served, round_dir):
    """At 1280x800 the palette, the key help and the view controls are in the viewport without
    scrolling; the colour of pixels to label is far from every class colour; brightness and
    zoom redraw the view; the pixel info names the class a pixel was just given."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, _, _ = served
    browser.set_window_size(1280, 800)
    browser.get(url)
    _settled(browser)
    height = browser.execute_script("return window.innerHeight")
    width = browser.execute_script("return window.innerWidth")
    assert browser.execute_script("return window.scrollY") == 0
    visible = [*browser.find_elements(By.CSS_SELECTOR, "#palette button")]
    visible += [browser.find_element(By.ID, i) for i in ("help", "brightness", "zoom", "brush")]
    visible += browser.find_elements(By.CSS_SELECTOR, "#help li")
    for el in visible:
        rect = el.rect
        assert rect["height"] > 0 and el.is_displayed(), el.get_attribute("outerHTML")[:80]
        assert rect["y"] + rect["height"] <= height and rect["x"] + rect["width"] <= width, (
            el.get_attribute("outerHTML")[:80],
            rect,
            (width, height),
        )
    manifest = json.loads(urllib.request.urlopen(url + "api/manifest", timeout=5).read())
    query = np.array(manifest["query_color"], float)
    palette = np.array([c["color"] for c in manifest["classes"]], float)
    assert np.linalg.norm(palette - query, axis=1).min() > 100  # magenta was 35 from sidewalk

    zoom = browser.find_element(By.ID, "canvas-zoom")
    before = (zoom.get_attribute("data-scale"), _canvas_pixel(browser, "canvas-zoom", 2, 2))
    browser.execute_script(
        "const b = document.getElementById('brightness'); b.value = 200;"
        "b.dispatchEvent(new Event('input'));"
    )
    assert _canvas_pixel(browser, "canvas-zoom", 2, 2) != before[1]  # context pixels brighter
    browser.execute_script(
        "const z = document.getElementById('zoom'); z.value = 150;"
        "z.dispatchEvent(new Event('input'));"
    )
    assert int(zoom.get_attribute("data-scale")) > int(before[0])  # bigger pixels, less context

    entries = read_manifest(round_dir)
    r0, c0, scale = (int(zoom.get_attribute(f"data-{k}")) for k in ("r0", "c0", "scale"))
    row, col = entries[0]["regions"][0]["centre"]
    x = (col - c0 + 0.5) * scale - zoom.size["width"] / 2
    y = (row - r0 + 0.5) * scale - zoom.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(zoom, int(x), int(y)).perform()
    info = browser.find_element(By.ID, "pixel-info")
    assert info.text == f"Row {row}, column {col}: to label"
    ActionChains(browser).send_keys("1").perform()  # road for the region, the mouse not moved
    _settled(browser)
    assert info.text == f"Row {row}, column {col}: road"
