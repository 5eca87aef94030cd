"""The playground in a real browser: Debian's chromium, headless, driven by selenium,
against a real `augsvc serve` backed by a real redis-server.

The browser cannot reach anything but 127.0.0.1 (tests/browser.py), and every request
the page makes is read back from chromium's own log and checked to be local. Pictures
are compared by their bytes with what the service's routes answer for the same recipe
and seed.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load as load_safetensors

from tests.browser import (
    drain_logs,
    find_browser,
    grid_bytes,
    is_local,
    screenshot,
    start_chromium,
    wait_for,
)
from tests.imagegen import jpeg_bytes, png_bytes

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"
RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": 160, "scale": [0.3, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.4, "saturation": 0.3, "hue": 0.05},
        {"op": "rotate", "degrees": 10, "p": 0.5},
    ]
}
JITTER = 2  # index of color_jitter in RECIPE


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    found = find_browser()
    if found is None:
        pytest.skip("chromium and chromedriver are not on PATH: `make browser` installs them")
    pytest.importorskip("selenium", reason="the dev extra brings selenium: `make install`")
    session = start_chromium(*found, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture(scope="module")
def service(start_augsvc, redis_server):
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    return start_augsvc(AUGSVC_REDIS_URL=redis_server.url, AUGSVC_REDIS_PREFIX=prefix)


@pytest.fixture
def stored(service) -> str:
    """A fresh recipe name with RECIPE stored as version 1."""
    name = f"demo-{uuid.uuid4().hex[:6]}"
    httpx.put(f"{service.url}/v1/recipes/{name}", json=RECIPE).raise_for_status()
    return name


def open_page(session, url: str) -> None:
    session.get("about:blank")
    drain_logs(session)  # what the browser did before this page is not the page's
    session.get(url)
    wait_for(session, "document.body.dataset.ready === 'true'")
    wait_for(session, "document.body.dataset.preview === 'ready'")


def field(session, loc: str):
    return session.find_element("css selector", f'[data-loc="{loc}"] input')


def retype(session, loc: str, text: str) -> None:
    element = field(session, loc)
    element.clear()
    element.send_keys(text)


def text(element_id: str) -> str:
    return f"document.getElementById('{element_id}').textContent"


def problems_of(logs) -> list[dict]:
    return [m for m in logs.console if m["level"] in ("SEVERE", "WARNING")]


def test_the_page_loads_with_every_request_local_and_no_console_errors(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    logs = drain_logs(chromium)
    assert logs.requests, "the performance log recorded nothing"
    assert [url for url in logs.requests if not is_local(url)] == []
    assert problems_of(logs) == []
    assert f"{service.url}/v1/recipes/{stored}%401/preview?seed=0&n=9" in logs.requests
    # the screenshot of a real run (the README's is one of these)
    path = ARTIFACTS / "playground.png"
    screenshot(chromium, path)
    with Image.open(path) as shot:
        assert shot.size == (1280, 800)


def test_editing_a_parameter_updates_the_preview_to_the_routes_bytes(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    with service.client() as client:
        before = client.get(f"/v1/recipes/{stored}@1/preview", params={"seed": 0, "n": 9})
        assert grid_bytes(chromium) == before.content

        retype(chromium, f"ops.{JITTER}.brightness", "0.9")
        edited = client.get(f"/v1/recipes/{stored}@1").json()["recipe"]  # what the page loaded
        edited["ops"][JITTER]["brightness"] = 0.9
        expected = client.post(
            "/v1/preview", params={"seed": 0, "n": 9}, files={"recipe": json.dumps(edited)}
        )
        expected.raise_for_status()
        digest = expected.headers["X-Augsvc-Recipe-Digest"]
        wait_for(chromium, f"document.getElementById('grid').dataset.digest === '{digest}'")
        after = grid_bytes(chromium)
        assert after != before.content
        assert after == expected.content
        # the JSON view followed the form
        assert json.loads(chromium.find_element("id", "json").get_attribute("value")) == edited
        # and the stored route answers the same bytes for that recipe and seed
        check = f"check-{stored}"
        client.put(f"/v1/recipes/{check}", json=edited).raise_for_status()
        assert client.get(f"/v1/recipes/{check}/preview", params={"n": 9}).content == after

        # another seed: the grid is that seed's
        seed = chromium.find_element("id", "seed")
        seed.clear()
        seed.send_keys("7")
        wait_for(chromium, "document.getElementById('grid').dataset.seed === '7'")
        wait_for(chromium, "document.body.dataset.preview === 'ready'")
        seeded = client.get(f"/v1/recipes/{check}/preview", params={"n": 9, "seed": 7}).content
        assert grid_bytes(chromium) == seeded

        # and another sample count
        count = chromium.find_element("id", "count")
        count.clear()
        count.send_keys("4")
        wait_for(chromium, "document.getElementById('grid').dataset.n === '4'")
        wait_for(chromium, "document.body.dataset.preview === 'ready'")
        four = client.get(f"/v1/recipes/{check}/preview", params={"n": 4, "seed": 7}).content
        assert grid_bytes(chromium) == four
        with Image.open(io.BytesIO(four)) as grid:  # 2x2 cells of 160 and 3 gaps of 4
            assert grid.size == (2 * 160 + 3 * 4, 2 * 160 + 3 * 4)


def test_an_edit_in_the_json_view_rebuilds_the_forms(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    text = chromium.find_element("id", "json")
    text.clear()
    text.send_keys(json.dumps({"ops": [{"op": "vflip", "p": 1.0}, {"op": "grayscale"}]}))
    wait_for(chromium, "document.querySelectorAll('#ops > li').length === 2")
    cards = chromium.find_elements("css selector", "#ops > li")
    ops = [li.get_attribute("data-op") for li in cards]
    assert ops == ["vflip", "grayscale"]
    assert field(chromium, "ops.0.p").get_attribute("value") == "1"


def select_op(session, name: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(session.find_element("id", "op-select")).select_by_value(name)
    session.find_element("id", "add-op").click()


def draft(session) -> dict:
    return json.loads(session.find_element("id", "json").get_attribute("value"))


def test_ops_are_added_reordered_and_removed_from_the_catalogue(chromium, service):
    open_page(chromium, f"{service.url}/ui")
    assert draft(chromium) == {"ops": []}
    select_op(chromium, "hflip")
    select_op(chromium, "rotate")
    assert draft(chromium) == {"ops": [{"op": "hflip"}, {"op": "rotate"}]}
    # rotate needs degrees: the server says so, at the field
    slot = '[data-loc="ops.1.degrees"] .field-error'
    wait_for(chromium, f"document.querySelector('{slot}').textContent === 'Field required'")
    retype(chromium, "ops.1.degrees", "[-30, 30]")
    chromium.find_element("css selector", '[data-loc="ops.1"] button[title="move up"]').click()
    chromium.find_element("css selector", '[data-loc="ops.1"] button[title="remove"]').click()
    wanted = {"ops": [{"op": "rotate", "degrees": [-30, 30]}]}
    assert draft(chromium) == wanted
    expected = httpx.post(f"{service.url}/v1/preview", params={"n": 9},
                          files={"recipe": json.dumps(wanted)})  # fmt: skip
    digest = expected.headers["X-Augsvc-Recipe-Digest"]
    wait_for(chromium, f"document.getElementById('grid').dataset.digest === '{digest}'")
    wait_for(chromium, "document.body.dataset.preview === 'ready'")
    assert grid_bytes(chromium) == expected.content


DROP_JS = """
const [name, type, encoded] = arguments;
const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, { type }));
document.getElementById("drop").dispatchEvent(
  new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
"""


def test_a_chosen_or_dropped_image_is_previewed_like_the_route_previews_it(
    chromium, service, stored, tmp_path
):
    import base64

    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    chosen = tmp_path / "chosen.jpg"
    chosen.write_bytes(jpeg_bytes(320, 240, seed=3))
    chromium.find_element("id", "photo").send_keys(str(chosen))
    wait_for(chromium, f"{text('preview-status')}.endsWith('on chosen.jpg')")
    route = f"{service.url}/v1/recipes/{stored}@1/preview"
    image = {"image": ("chosen.jpg", chosen.read_bytes(), "image/jpeg")}
    assert grid_bytes(chromium) == httpx.post(route, params={"n": 9}, files=image).content

    dropped = png_bytes(200, 300, seed=4)
    chromium.execute_script(DROP_JS, "dropped.png", "image/png", base64.b64encode(dropped).decode())
    wait_for(chromium, f"{text('preview-status')}.endsWith('on dropped.png')")
    image = {"image": ("dropped.png", dropped, "image/png")}
    assert grid_bytes(chromium) == httpx.post(route, params={"n": 9}, files=image).content


def test_an_invalid_value_shows_the_servers_message_next_to_its_field(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    retype(chromium, f"ops.{JITTER}.brightness", "-3")
    bad = json.loads(json.dumps(RECIPE))
    bad["ops"][JITTER]["brightness"] = -3
    answer = httpx.post(f"{service.url}/v1/preview", files={"recipe": json.dumps(bad)})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["loc"] == ["ops", JITTER, "brightness"]
    slot = f'[data-loc="ops.{JITTER}.brightness"] .field-error'
    message = json.dumps(error["msg"])
    wait_for(chromium, f"document.querySelector('{slot}').textContent === {message}")
    # only that field is marked
    marked = chromium.find_elements("css selector", ".field.invalid")
    assert [m.get_attribute("data-loc") for m in marked] == [f"ops.{JITTER}.brightness"]


def test_a_recipe_that_cannot_be_opened_is_said_on_the_page(chromium, service, stored):
    """`/ui?recipe=<never stored>`: the service's 404 stays on the page while it goes on
    with a new draft (whose preview must not wipe it), until a recipe is opened."""
    missing = f"never-stored-{uuid.uuid4().hex[:6]}"
    answer = httpx.get(f"{service.url}/v1/recipes/{missing}")
    assert answer.status_code == 404
    chromium.get("about:blank")
    chromium.get(f"{service.url}/ui?recipe={missing}")
    wait_for(chromium, "document.body.dataset.ready === 'true'")
    wait_for(chromium, "['ready', 'error'].includes(document.body.dataset.preview)")
    shown = chromium.execute_script(f"return {text('load-error')}")
    assert shown == (
        f"Could not open {missing}: 404 recipe-not-found: {answer.json()['detail']}."
        " The draft below is not it."
    )
    assert chromium.find_element("id", "load-error").is_displayed()
    assert chromium.execute_script("return document.body.dataset.loadError") == "404"
    assert chromium.find_element("id", "ref").get_attribute("value") == missing
    assert chromium.execute_script(f"return {text('origin')}").startswith("A new draft")

    # opening a stored recipe takes the message away
    reference = chromium.find_element("id", "ref")
    reference.clear()
    reference.send_keys(stored)
    chromium.find_element("id", "load").click()
    wait_for(chromium, f"{text('origin')}.startsWith('Showing {stored}@1')")
    assert chromium.execute_script(f"return {text('load-error')}") == ""
    assert not chromium.find_element("id", "load-error").is_displayed()


def test_saving_creates_the_next_version(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    retype(chromium, f"ops.{JITTER}.brightness", "0.7")
    wait_for(chromium, f"{text('origin')}.startsWith('Edited')")
    chromium.find_element("id", "save").click()
    wait_for(chromium, f"{text('save-status')} === 'Saved {stored}@2.'")
    versions = httpx.get(f"{service.url}/v1/recipes/{stored}/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    brightness = versions[1]["recipe"]["ops"][JITTER]["brightness"]
    assert brightness == pytest.approx([0.3, 1.7])  # 0.7, in its canonical form
    # the page now shows the saved version through its own preview route
    wait_for(chromium, f"{text('origin')}.startsWith('Showing {stored}@2')")

    # someone else writes version 3: a save based on version 2 is refused, not lost
    other = {"ops": [{"op": "vflip"}]}
    httpx.put(f"{service.url}/v1/recipes/{stored}", json=other).raise_for_status()
    retype(chromium, f"ops.{JITTER}.brightness", "0.5")
    chromium.find_element("id", "save").click()
    wait_for(chromium, f"{text('save-status')}.startsWith('Not saved')")
    versions = httpx.get(f"{service.url}/v1/recipes/{stored}/versions").json()["versions"]
    assert len(versions) == 3


def test_clicking_a_sample_shows_its_key_and_drawn_params(chromium, service, stored):
    open_page(chromium, f"{service.url}/ui?recipe={stored}")
    grid = chromium.find_element("id", "grid")
    columns, gap, width = 3, 4, grid.size["width"]
    natural = chromium.execute_script("return arguments[0].naturalWidth", grid)
    cell = (natural - (columns + 1) * gap) / columns
    scale = width / natural
    key = 5  # row 1, column 2
    x = (gap + 2 * (cell + gap) + cell / 2) * scale
    y = (gap + 1 * (cell + gap) + cell / 2) * scale
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(chromium).move_to_element_with_offset(
        grid, int(x - grid.size["width"] / 2), int(y - grid.size["height"] / 2)
    ).click().perform()
    wait_for(chromium, f"document.getElementById('tile-info').dataset.key === '{key}'")
    shown = json.loads(chromium.find_element("id", "tile-info").text)
    photo = httpx.get(f"{service.url}/ui/sample.jpg").content
    answer = httpx.post(
        f"{service.url}/v1/augment",
        params={"recipe": f"{stored}@1", "seed": 0, "offset": key},
        files={"image": ("sample.jpg", photo, "image/jpeg")},
        headers={"Accept": "application/x-safetensors"},
    )
    answer.raise_for_status()
    tensors = load_safetensors(answer.content)
    assert shown["key"] == key == int(tensors["keys"][0])
    expected = {
        name.removeprefix("params."): tensor[0].tolist()
        for name, tensor in tensors.items()
        if name.startswith("params.")
    }
    assert shown["params"].keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(shown["params"][name], value, rtol=1e-6, err_msg=name)


def test_docs_and_redoc_render_offline(chromium, service):
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    chromium.get("about:blank")
    drain_logs(chromium)
    chromium.get(f"{service.url}/docs")
    wait_for(chromium, f"document.querySelectorAll('.opblock').length === {operations}")
    summaries = chromium.find_elements("css selector", ".opblock-summary-path")
    assert any(s.text.replace("\u200b", "") == "/v1/ops" for s in summaries)
    logs = drain_logs(chromium)
    assert [url for url in logs.requests if not is_local(url)] == []
    assert problems_of(logs) == []

    chromium.get(f"{service.url}/redoc")
    wait_for(chromium, "document.querySelectorAll('[data-section-id^=\"operation/\"]').length > 0")
    logs = drain_logs(chromium)
    assert [url for url in logs.requests if not is_local(url)] == []
    assert problems_of(logs) == []


@pytest.fixture(scope="module")
def keyed_service(start_augsvc):
    return start_augsvc(AUGSVC_API_KEYS="pg-admin-key:admin,pg-read-key:read")


def test_a_read_key_sees_save_disabled_with_the_reason(chromium, keyed_service):
    # the browser's own Basic login (user name ignored, the key as password), as a person
    # answering the page's challenge would
    origin = keyed_service.url.replace("http://", "http://anyone:pg-read-key@")
    chromium.get("about:blank")
    chromium.get(f"{origin}/ui")
    wait_for(chromium, "document.body.dataset.ready === 'true'")
    save = chromium.find_element("id", "save")
    assert not save.is_enabled()
    reason = chromium.find_element("id", "save-reason").text
    assert reason == "This key has read scope: saving needs an admin key."
    assert chromium.find_element("id", "auth-status").text == "key scope: read"
    # an admin key typed into the page is sent by the page itself and wins
    key = chromium.find_element("id", "key")
    key.send_keys("pg-admin-key")
    key.send_keys("\n")  # Enter
    wait_for(chromium, "!document.getElementById('save').disabled")
    assert chromium.find_element("id", "save-reason").text == ""
    wait_for(chromium, "document.body.dataset.preview === 'ready'")
    logs = drain_logs(chromium)
    # the typed key went out with the page's own requests, to this origin only
    keyed = [url for url, sent in zip(logs.requests, logs.headers, strict=True)
             if "pg-admin-key" in str(sent)]  # fmt: skip
    assert keyed and all(url.startswith(f"{keyed_service.url}/v1/") for url in keyed)
    assert not any("pg-admin-key" in url for url in logs.requests)
    assert problems_of(logs) == []
