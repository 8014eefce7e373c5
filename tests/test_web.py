"""The exported web page (export --format web) against `mnist-logreg predict`, in Chromium.

The page opens from disk (file://), with no server and no network; it reads MNIST test
images, photo-like and corrupted digits, numbers, and a number written with the mouse,
and must give the same numbers, labels and 28x28 images as `predict` and probabilities
within 1e-4.
"""

import base64
import contextlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import run_main
from digits import amount, photo
from handwriting import TOOLS, labelled, software_photo
from mnist_logreg.reading.images import SEVERAL

CHROMIUM = "/usr/bin/chromium"


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _boxes_drawn(page) -> int:
    """How many pixels of the page's box overlay (the digits' boxes over the pad) are drawn."""
    return page.evaluate("""() => {
        const c = document.getElementById('boxes');
        const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return rgba.filter((v, i) => i % 4 === 3 && v).length;
    }""")


@contextlib.contextmanager
def _open_page(sync_api, page_file, unthrottled: bool = False):
    """The exported page, opened from disk in headless Chromium. ``unthrottled``: without a
    frame rate limit and vsync, for a test that reads the pad itself once a drawing is done
    (the page's own readings while drawing then lag further behind the mouse): a mouse move
    otherwise waits for the next frame (36 ms a move on the pad, 18 ms without), and the
    digits drawn by a script make 3,824."""
    fast = ["--disable-frame-rate-limit", "--disable-gpu-vsync"] if unthrottled else []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run", *fast])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            yield page
        finally:
            browser.close()


def _page_predicts(page, files: dict[str, bytes], pick: str) -> dict:
    """Each file read by the page (``digitPage.predict``): ``pick`` (a JavaScript function) of
    its answer. They come back as one JSON string: Playwright's own encoding of 415 answers'
    arrays (each number an object) took 2 s more."""
    return json.loads(page.evaluate("""async ([inputs, pick]) => {
        const choose = eval(pick), out = {};
        for (const [name, b64] of Object.entries(inputs)) {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          out[name] = choose(await window.digitPage.predict(new Blob([bytes], { type: "image/png" })));
        }
        return JSON.stringify(out);
    }""", [{name: base64.b64encode(data).decode() for name, data in files.items()}, pick]))


@pytest.fixture(scope="module")
def page_file(default_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "digits.html"
    proc = run_main("export", "--run", str(default_run), "--format", "web", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_page_is_one_small_self_contained_file(page_file):
    html = page_file.read_text()
    assert page_file.stat().st_size <= 300 * 1024
    # No network: no external script, stylesheet, image or fetch of anything.
    for needle in ("<script src", "<link", "http://", "https://", "fetch(\"/", "import("):
        assert needle not in html.replace('fetch("api/predict"', ""), needle
    assert "MnistLogreg" in html and "const MODEL = " in html


def test_serve_and_the_exported_page_share_their_javascript(default_run, page_file):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mnist_logreg.serve import create_app
    from mnist_logreg.training.checkpoint import load_run
    from mnist_logreg.web import script

    with TestClient(create_app(load_run(default_run))) as client:
        served = client.get("/page.js").text
    assert served == script("page.js") and served in page_file.read_text()


def _predict(run, folder, seen, numbers: dict | None = None) -> dict[str, list[float]]:
    """Probabilities per file name, from `mnist-logreg predict --json` (all classes); the
    28x28 images it saw go to ``seen``; ``numbers`` gets each file's number and digits."""
    proc = run_main("predict", "--run", str(run), str(folder), "--json", "--top", "10", "--save-preprocessed",
                    str(seen))
    assert proc.returncode == 0, proc.stderr
    out = {}
    for row in map(json.loads, proc.stdout.splitlines()):  # one JSON object per file
        name = os.path.basename(row["file"])
        if numbers is not None:
            numbers[name] = (row["number"], row.get("digits"))
        if row["label"] is None and row.get("number"):  # a number: the page answers as serve does
            out[name] = SEVERAL
            continue
        if row["label"] is None:  # no digit here: the reason instead
            out[name] = row["reason"]
            continue
        probs = [0.0] * 10
        for t in row["top"]:
            probs[t["label"]] = t["probability"]
        out[name] = probs
    return out


def _same_digits(page: list[dict], predict: list[dict], seen, stem: str) -> list[str]:
    """How a number's digits on the page differ from predict's (labels, boxes, the top
    probabilities, the 28x28 images): an empty list where they agree."""
    if len(page) != len(predict):
        return [f"{len(page)} digits, predict {len(predict)}"]
    wrong = []
    for k, (a, b) in enumerate(zip(page, predict)):
        if a["label"] != b["label"] or list(a["box"]) != list(b["box"]):
            wrong.append(f"digit {k}: {a['label']} {a['box']}, predict {b['label']} {b['box']}")
        elif b.get("top"):
            if any(x["label"] != y["label"] or abs(x["probability"] - y["probability"]) > 1e-4
                   for x, y in zip(a["top"], b["top"])):
                wrong.append(f"digit {k}: probabilities")
            if not np.array_equal(np.array(a["seen"]), np.asarray(Image.open(seen / f"{stem}-{k + 1}.png")).ravel()):
                wrong.append(f"digit {k}: pixels")
    return wrong


@pytest.mark.browser
def _struck(imgs) -> int:
    """How many of the images have a line struck out on the way to the model."""
    from mnist_logreg.reading import images

    strike, changed = images.strike_line, []

    def spy(ink):
        out = strike(ink)
        changed.append(out is not ink)
        return out

    count = 0
    for img in imgs:
        changed.clear()
        images.strike_line = spy
        try:
            images.to_mnist(img)
        except images.NoDigit:
            pass
        finally:
            images.strike_line = strike
        count += any(changed)
    return count


def test_the_page_agrees_with_predict(default_run, page_file, mnist, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-debian.sh chromium /usr/bin/chromium installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    files = {}
    for i in range(300):
        files[f"mnist-{i:04d}.png"] = _png(mnist.test_images[i].numpy())
    for i in range(16):  # photo-like: large, off-centre, uneven light, noise; both polarities
        polarity = "dark-on-light" if i % 2 else "light-on-dark"
        files[f"photo-{i:02d}.png"] = photo(mnist.test_images[i].numpy(), rng, polarity, fmt="PNG")
    for i in range(5):  # ink on a transparent background, as drawing apps save it
        ink = np.kron(mnist.test_images[i].numpy(), np.ones((6, 6), np.uint8))
        rgba = np.zeros(ink.shape + (4,), np.uint8)
        rgba[..., 3] = ink  # black ink, its coverage as alpha
        files[f"transparent-{i}.png"] = _png(rgba)
    for i, (_, strokes) in enumerate(labelled(12, seed=31)):  # software photos of hand-drawn digits, 4 a pen
        files[f"software-{i:02d}.png"] = _png(np.asarray(Image.open(io.BytesIO(
            software_photo(strokes, rng, TOOLS[i % 3])))))
    from mnist_logreg import robustness
    for row in ("impulse_noise", "brightness", "stripe", "fog", "canny_edges", "paper_60", "low_res_8",
                "frame_filling", "blur_4", "zigzag"):  # the robustness benchmark's rows (as PNG)
        for i in range(4):
            img = robustness.corrupted_image(row, mnist.test_images[40 + i].numpy(), rng)
            files[f"{row}-{i}.png"] = _png(np.asarray(img.convert("L")))
    for i in range(8):  # lines across the digit (images.strike_line): some struck out, some not
        img = robustness.corrupted_image("zigzag", mnist.test_images[70 + i].numpy(), rng)
        files[f"line-{i}.png"] = _png(np.asarray(img.convert("L")))
    struck = _struck([Image.open(io.BytesIO(files[f"line-{i}.png"])) for i in range(8)])
    assert 3 <= struck <= 7, struck  # both branches of strike_line go through the page
    for i in range(4):  # inverted bands along the top and bottom (unband's rows)
        img = robustness.corrupted_image("stripe", mnist.test_images[50 + i].numpy(), rng)
        files[f"stripe-rows-{i}.png"] = _png(np.ascontiguousarray(np.asarray(img.convert("L")).T))
    for i in range(8):  # frame-filling 8x8 digits scaled up without smoothing: steps that are not bands
        d = mnist.test_images[60 + i].numpy()
        rows, cols = np.flatnonzero(d.max(1)), np.flatnonzero(d.max(0))
        small = Image.fromarray(d[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]).resize((8, 8), Image.Resampling.BOX)
        files[f"blocky-{i}.png"] = _png(255 - np.asarray(small.resize((64, 64), Image.Resampling.NEAREST)))
    for i in range(6):  # no digit here: empty paper (one sheet a pen), digits side by side
        if i < 3:
            files[f"empty-{i}.png"] = _png(np.asarray(Image.open(io.BytesIO(software_photo([], rng, TOOLS[i % 3])))))
        files[f"pair-{i}.png"] = _png(255 - np.hstack([mnist.test_images[i].numpy(), mnist.test_images[i + 6].numpy()]))
    ones = np.flatnonzero(mnist.test_labels.numpy() == 1)
    for k in range(4):  # two 1s close together (numbers.side_by_side's narrow case), and 1s beside a stray line
        pair = [mnist.test_images[i].numpy() for i in ones[2 * k:2 * k + 2]]
        pair = [d[:, d.max(0) > 0] for d in pair]
        gap = np.zeros((28, 2 + k), np.uint8)
        files[f"eleven-{k}.png"] = _png(255 - np.pad(np.hstack([pair[0], gap, pair[1]]), ((0, 0), (6, 6))))
        files[f"stray-{k}.png"] = _png(255 - mnist.test_images[(5331, 5661, 8004, 8020)[k]].numpy())
    for i in range(6):  # numbers: digits touching (cut by the model's choice), and a dash between two
        row = np.zeros((28, 3 * 28 - 10), np.uint8)
        for k, at in enumerate((0, 23, 46)):
            np.maximum(row[:, at:at + 28], mnist.test_images[80 + 3 * i + k].numpy(), out=row[:, at:at + 28])
        files[f"touching-{i}.png"] = _png(255 - np.kron(row, np.ones((3, 3), np.uint8)))
        dash = np.zeros((28, 12), np.uint8)
        dash[13:15, 2:10] = 255
        files[f"dash-{i}.png"] = _png(255 - np.hstack([mnist.test_images[100 + i].numpy(), dash,
                                                          mnist.test_images[110 + i].numpy()]))
    from mnist_logreg import number_bench
    for i, how in enumerate(("scan", "scan", "scan", "photo", "photo")):  # the number benchmark's touching digits
        img = number_bench.present(number_bench.compose(mnist.test_images[120 + 5 * i:125 + 5 * i].numpy(), rng,
                                                        "touching"), how, rng)
        files[f"touching-{how}-{i}.png"] = _png(np.asarray(img.convert("L")))
        if how == "scan":  # and larger: over numbers.CUT_HEIGHT high, cut on a reduced copy
            files[f"touching-large-{i}.png"] = _png(np.asarray(img.convert("L").resize(
                (img.width * 5 // 2, img.height * 5 // 2), Image.Resampling.BILINEAR)))
    test = mnist.test_images.numpy()
    # Five touching digits that read as one without numbers.WIDEST.
    img = number_bench.draw(test, np.random.default_rng(638), 5, "touching", "scan")[1]
    files["touching-widest.png"] = _png(np.asarray(img.convert("L")))
    # Six, in two marks: the wider read whole without numbers.WIDEST.
    img = number_bench.draw(test, np.random.default_rng(615), 6, "touching", "scan")[1]
    files["touching-widest-mark.png"] = _png(np.asarray(img.convert("L")))
    # A thin 6 beside heavy touching digits: no speck (numbers._main_marks).
    img = number_bench.draw(test, np.random.default_rng(224), 4, "touching", "scan")[1]
    files["touching-thin.png"] = _png(np.asarray(img.convert("L")))
    for i, how in enumerate(("scan", "photo", "scan", "photo")):  # amounts: a point between digits (numbers.points_of)
        ink = amount(*(number_bench.compose(test[130 + 4 * i + k:132 + 4 * i + k], rng, "apart") for k in (0, 2)), 0.2)
        files[f"amount-{i}.png"] = _png(np.asarray(number_bench.present(ink, how, rng).convert("L")))
    yy, xx = np.mgrid[0:28, 0:8]
    blot = np.where((yy - 21) ** 2 + (xx - 4) ** 2 <= 9, 255, 0).astype(np.uint8)
    hook = np.zeros((28, 8), np.uint8)  # ragged: no point
    hook[19:24, 2] = hook[19:24, 6] = hook[23, 2:7] = 255
    dot = np.where((yy - 21) ** 2 + (xx - 4) ** 2 <= 5, 255, 0).astype(np.uint8)
    for name, mark in (("blot", blot), ("hook", hook), ("dots", np.hstack([dot, dot]))):  # dots: a dotted line
        files[f"amount-{name}.png"] = _png(255 - np.pad(np.hstack([test[0], test[1], mark, test[2], test[3]]), 6))
    # Strips (a line, a ruler's edge): no digit in either, the widest 64 times its height read.
    for i, (h, w) in enumerate(((300, 1), (2, 500), (640, 10), (1000, 16))):
        strip = np.full((h, w), 230, np.uint8)
        strip[h // 3:h // 2, : max(1, w // 2)] = 20
        files[f"strip-{i}.png"] = _png(strip)
    with _open_page(sync_api, page_file) as page:
        answers = _page_predicts(page, files, """(data) => ({
            probabilities: data.probabilities, ms: data.milliseconds, reason: data.reason, number: data.number,
            seen: data.preprocessed && data.preprocessed.flat(),
            digits: data.digits.length < 2 ? null  // a row's digits; one digit is compared above
              : data.digits.map((d) => ({ label: d.label, box: d.box, top: d.top || null,
                                          seen: d.preprocessed && d.preprocessed.flat() })) })""")
        # Transparency flattened onto white and the grey level, as Pillow does, for every
        # value and alpha: one image of 256 x 256 pixels (r = g = b = column, a = row).
        gray = json.loads(page.evaluate("""() => {
            const rgba = new Uint8Array(256 * 256 * 4);
            for (let a = 0; a < 256; a++) for (let v = 0; v < 256; v++) {
              const k = 4 * (256 * a + v); rgba[k] = rgba[k + 1] = rgba[k + 2] = v; rgba[k + 3] = a;
            }
            return JSON.stringify(Array.from(MnistLogreg.grayscale(rgba, 256, 256)));
        }"""))
        v, a = np.meshgrid(np.arange(256), np.arange(256))
        grid = Image.fromarray(np.stack([v, v, v, a], -1).astype(np.uint8), "RGBA")
        pillow = np.asarray(Image.alpha_composite(Image.new("RGBA", grid.size, "white"), grid).convert("L"))
        assert np.array_equal(np.array(gray), pillow.ravel() / 255.0)
        # Three digits and a point written as a number with the mouse on the wide pad (number
        # mode): the page shows the number and a box over each digit. (Digits drawn one at a time, 100
        # of them, are test_digits_drawn_on_the_page_by_a_script's, in make test-minutes.)
        drawings = [[[(70, 60), (150, 58), (215, 60)], [(215, 60), (170, 150), (130, 235)]],
                    [[(140, 40), (145, 140), (150, 240)]],
                    [[(140, 40), (80, 90), (75, 170), (140, 240), (200, 170), (200, 90), (140, 40)]]]
        page.check("#number-mode")
        box = page.locator("#pad").bounding_box()
        scale = box["width"] / 840  # the pad as laid out, against its pixels
        for k, strokes in enumerate(drawings):
            for stroke in strokes:
                page.mouse.move(box["x"] + (40 + 260 * k + stroke[0][0]) * scale, box["y"] + stroke[0][1] * scale)
                page.mouse.down()
                for x, y in stroke[1:]:
                    page.mouse.move(box["x"] + (40 + 260 * k + x) * scale, box["y"] + y * scale, steps=4)
                page.mouse.up()
        # and a point between the 1 and the 0, a dab drawn round (a click alone, one pen
        # width across, is as small as a speck): "71.0"
        page.mouse.move(box["x"] + 540 * scale, box["y"] + 228 * scale)
        page.mouse.down()
        for x, y in ((548, 228), (548, 236), (540, 236), (540, 228)):
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=2)
        page.mouse.up()
        page.wait_for_function("() => document.getElementById('answer').dataset.number.length === 4")
        drawn_number = page.locator("#answer").get_attribute("data-number")
        boxed = _boxes_drawn(page)
        url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
        files["drawn-number.png"] = base64.b64decode(url.split(",", 1)[1])
        answers["drawn-number.png"] = {"number": drawn_number, "ms": None, "seen": None,
                                       "reason": page.locator("#answer").get_attribute("data-label") == "number"
                                       and SEVERAL}
        page.screenshot(path=str(tmp_path / "page.png"))
    assert drawn_number == "71.0" and boxed > 0
    for name, data in files.items():
        (folder / name).write_bytes(data)
    numbers = {}
    expected = _predict(default_run, folder, tmp_path / "seen", numbers)
    # Every input read as predict reads it: the same number (a single digit, a row of
    # digits, or none); for a row, the same digits, boxes, probabilities and 28x28 images.
    assert {n: a["number"] for n, a in answers.items()} == {n: numbers[n][0] for n in files}
    rows = {n for n, (number, digits) in numbers.items() if digits and n != "drawn-number.png"}
    assert rows >= {n for n in files if n.startswith(("pair", "touching", "dash", "amount"))}
    assert sum(len(numbers[n][1]) == 3 for n in files if n.startswith("touching")) >= 3  # the cuts were found
    assert sum("?" in numbers[n][0] for n in files if n.startswith("dash")) >= 3
    assert sum(numbers[n][0][2:3] == "." for n in files if n.startswith("amount-") and n[7].isdigit()) >= 3
    assert (numbers["amount-blot.png"][0], numbers["amount-hook.png"][0]) == ("72.10", "7210")
    assert "." not in numbers["amount-dots.png"][0]
    assert sum(numbers[n][0] == "11" for n in files if n.startswith("eleven")) >= 3
    assert {numbers[n][0] for n in files if n.startswith("stray")} == {"1"}
    assert {n: _same_digits(answers[n]["digits"], numbers[n][1], tmp_path / "seen", n[:-4]) for n in rows} == {
        n: [] for n in rows}
    largest, wrong, other_pixels = 0.0, [], []
    refused = {name: want for name, want in expected.items() if isinstance(want, str)}
    assert {name: a.get("reason") for name, a in answers.items() if a.get("reason")} == refused
    never_digits = ("empty", "pair")
    assert {n for n in refused if n.startswith(never_digits)} == {n for n in files if n.startswith(never_digits)}
    for name, got in answers.items():
        if name in refused:
            continue
        if got["seen"] is not None:  # the page's 28x28 image, pixel for pixel predict's
            if not np.array_equal(np.array(got["seen"]), np.asarray(Image.open(tmp_path / "seen" / name)).ravel()):
                other_pixels.append(name)
        want = expected[name]
        largest = max(largest, max(abs(a - b) for a, b in zip(got["probabilities"], want)))
        if int(np.argmax(got["probabilities"])) != int(np.argmax(want)):
            wrong.append(name)
    times = sorted(a["ms"] for a in answers.values() if a["ms"] is not None)
    median, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    print(f"\n{len(answers)} inputs: labels differing {len(wrong)}, largest probability difference {largest:.1e}; "
          f"one prediction in the page: median {median:.2f} ms, p99 {p99:.2f} ms")
    assert not wrong, wrong[:10]
    assert not other_pixels, other_pixels[:10]
    assert largest <= 1e-4


# Nine digits drawn point by point: 9 s, left to make test-minutes (which .ci/run runs);
# test_the_page_agrees_with_predict writes one number on the wide pad within make test.
@pytest.mark.browser
@pytest.mark.minutes
def test_numbers_drawn_on_the_page(default_run, page_file, tmp_path):
    """Numbers written with the mouse on the exported page's wide pad (its number mode),
    each digit drawn by tests/handwriting.py: the page shows the number with a box over
    each digit, and reads them as `predict` reads its canvas (digits, boxes, probabilities)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    from handwriting import strokes

    rng = np.random.default_rng(7)
    numbers = ("2026", "15", "390")
    shown, canvases = {}, {}
    with _open_page(sync_api, page_file) as page:
        page.check("#number-mode")
        assert page.evaluate("document.getElementById('pad').width") == 840
        box = page.locator("#pad").bounding_box()
        scale = box["width"] / 840  # the pad as laid out, against its pixels
        for number in numbers:
            page.click("#clear")
            for k, digit in enumerate(number):
                for stroke in strokes(int(digit), rng, side=200):
                    stroke = stroke[:-1:3] + stroke[-1:]  # every third point: a quicker hand, the same shape
                    points = [(box["x"] + (20 + 200 * k + x) * scale, box["y"] + (40 + y) * scale) for x, y in stroke]
                    page.mouse.move(*points[0])
                    page.mouse.down()
                    for x, y in points[1:]:
                        page.mouse.move(x, y)
                    page.mouse.up()
            answer = page.evaluate("""async () => {
                const pad = document.getElementById('pad');
                const data = await window.digitPage.predict(pad);
                return { number: data.number, digits: data.digits.map((d) => ({ label: d.label, box: d.box,
                         top: d.top || null, seen: d.preprocessed && d.preprocessed.flat() })),
                         png: pad.toDataURL('image/png') };
            }""")
            # What the page shows: the number, and a box drawn over each digit.
            page.wait_for_function("(n) => document.getElementById('answer').dataset.number === n",
                                   arg=answer["number"])
            assert _boxes_drawn(page) > 0
            shown[f"{number}.png"] = answer
            canvases[f"{number}.png"] = base64.b64decode(answer["png"].split(",", 1)[1])
    folder = tmp_path / "canvases"
    folder.mkdir()
    for name, data in canvases.items():
        (folder / name).write_bytes(data)
    read = {}
    _predict(default_run, folder, tmp_path / "seen", read)
    assert {n: a["number"] for n, a in shown.items()} == {n: read[n][0] for n in shown}
    assert {n: _same_digits(a["digits"], read[n][1], tmp_path / "seen", n[:-4]) for n, a in shown.items()} == {
        n: [] for n in shown}
    print("\nnumbers drawn on the page:", {n[:-4]: a["number"] for n, a in shown.items()})
    assert [a["number"] for a in shown.values()] == list(numbers)


@pytest.mark.browser
@pytest.mark.minutes
def test_digits_drawn_on_the_page_by_a_script(default_run, page_file, tmp_path):
    """100 digits that were never MNIST images (tests/handwriting.py) drawn with the mouse on
    the exported page's canvas, at five pen widths, fast and slow hands, anywhere on the
    pad: the page reads >= 95% of them, and `predict` on its canvas says the same."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    digits = labelled(100, seed=41)
    widths = (6, 12, 18, 28, 40)
    got, canvases = [], {}
    with _open_page(sync_api, page_file, unthrottled=True) as page:
        box = page.locator("#pad").bounding_box()
        for i, (_, strokes) in enumerate(digits):
            page.evaluate("(w) => { document.getElementById('pen').value = w; "
                          "document.getElementById('clear').click(); }", widths[i % len(widths)])
            for stroke in strokes:
                page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
                page.mouse.down()
                for x, y in stroke[1:]:
                    page.mouse.move(box["x"] + x, box["y"] + y)
                page.mouse.up()
            answer = page.evaluate("""async () => {
                const pad = document.getElementById('pad');
                const data = await window.digitPage.predict(pad);
                return { label: data.label, png: pad.toDataURL('image/png') };
            }""")
            got.append(answer["label"])
            canvases[f"drawn-{i:03d}.png"] = base64.b64decode(answer["png"].split(",", 1)[1])
    labels = [label for label, _ in digits]
    # The pen-width slider is honoured: the widest pen leaves far more ink than the thinnest.
    ink = {w: np.mean([(np.asarray(Image.open(io.BytesIO(canvases[f"drawn-{i:03d}.png"])).convert("L")) < 128).mean()
                       for i in range(k, len(digits), len(widths))]) for k, w in enumerate(widths)}
    assert ink[40] > 3 * ink[6], ink
    per_width = {w: np.mean([g == t for g, t in zip(got[k::len(widths)], labels[k::len(widths)])])
                 for k, w in enumerate(widths)}
    accuracy = np.mean([g == t for g, t in zip(got, labels)])
    print(f"\ncanvas-drawn digits: {accuracy:.1%}; by pen width: "
          + ", ".join(f"{w}px {a:.0%}" for w, a in per_width.items()))
    folder = tmp_path / "canvases"
    folder.mkdir()
    for name, data in canvases.items():
        (folder / name).write_bytes(data)
    expected = _predict(default_run, folder, tmp_path / "seen")
    python = [None if isinstance(expected[n], str) else int(np.argmax(expected[n])) for n in sorted(canvases)]
    assert python == got
    assert accuracy >= 0.95


def test_a_fashion_mnist_run_shows_class_names(default_run, tmp_path):
    """The page names the classes where the run's data were a dataset with named classes."""
    from test_numbers import fashion_named

    run = fashion_named(default_run, tmp_path)
    assert run_main("export", "--run", str(run), "--format", "web", "--out", str(tmp_path / "f.html")).returncode == 0
    assert '"names":["T-shirt/top","Trouser"' in (tmp_path / "f.html").read_text()
    proc = run_main("export", "--run", str(default_run), "--format", "web", "--out", str(tmp_path / "m.html"))
    assert proc.returncode == 0
    assert '"names":null' in (tmp_path / "m.html").read_text()


@pytest.mark.browser
def test_the_page_of_a_run_of_other_things_reads_one_item_an_image(default_run, mnist, tmp_path):
    """The exported page of a run whose classes are not digits reads as predict does: two
    marks side by side refused, wide ink one item (numbers.reads_digits, the page's readsDigits)."""
    from mnist_logreg.reading import lite
    from mnist_logreg.reading.images import NoDigit
    from mnist_logreg.reading.numbers import read_number
    from test_numbers import fashion_named

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    run = fashion_named(default_run, tmp_path)
    page_file = tmp_path / "f.html"
    assert run_main("export", "--run", str(run), "--format", "web", "--out", str(page_file)).returncode == 0
    digits = mnist.test_images.numpy()
    files = {"pair": _png(255 - np.hstack([digits[0], digits[1]])), "wide": _png(digits[33])}
    with _open_page(sync_api, page_file) as page:
        answers = _page_predicts(page, files, "(data) => ({ reason: data.reason, number: data.number, "
                                              "probabilities: data.probabilities })")
    other = lite.load_run(run)
    with pytest.raises(NoDigit):
        read_number(Image.open(io.BytesIO(files["pair"])), other)
    assert answers["pair"]["reason"] == SEVERAL and answers["pair"]["number"] is None
    (want,) = read_number(Image.open(io.BytesIO(files["wide"])), other)
    assert answers["wide"].get("reason") is None and answers["wide"]["number"] == want.label
    assert max(abs(a - b) for a, b in zip(answers["wide"]["probabilities"], want.probabilities)) <= 1e-4


@pytest.mark.browser
def test_corrections_on_the_exported_page_download_as_a_zip(default_run, page_file, mnist, tmp_path):
    """Upload a digit, say what it was: the page keeps the digit it read under that label and
    offers a zip of <label>/<n>.png, which train --add reads (tests/test_corrections.py)."""
    import zipfile

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    upload = tmp_path / "seven.png"
    upload.write_bytes(_png(255 - mnist.test_images[0].numpy()))
    with _open_page(sync_api, page_file) as page:
        assert page.locator("#correct").is_hidden()
        page.set_input_files("#upload", str(upload))
        page.wait_for_selector("#correct-buttons button")
        seen = page.evaluate("async () => (await window.digitPage.predict("
                             "document.getElementById('pad'))).preprocessed")  # a blank pad: no digit
        assert seen is None
        page.click("#correct-buttons button[data-label='4']")
        page.click("#correct-buttons button[data-label='7']")
        assert "2 digits" in page.inner_text("#collected")
        with page.expect_download() as info:
            page.click("#download")
        archive = tmp_path / "my-digits.zip"
        info.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None and sorted(z.namelist()) == ["4/1.png", "7/2.png"]
        digit = np.asarray(Image.open(io.BytesIO(z.read("7/2.png"))).convert("L"))  # the browser writes RGBA
    from mnist_logreg.reading.images import read_digit

    assert np.array_equal(digit, read_digit(upload))  # the 28x28 image the page (and predict) saw
    from mnist_logreg.data.formats import read_collected

    (tmp_path / "mine").mkdir()
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "mine")
    images, labels = read_collected(tmp_path / "mine", (28, 28))  # what train --add reads
    assert labels.tolist() == [4, 7] and np.array_equal(images[1], digit)
