import base64
import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from conftest import free_port  # noqa: E402
from digits import photo, png_bytes  # noqa: E402


@pytest.fixture(scope="module")
def client(default_run):
    from fastapi.testclient import TestClient

    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.serve import create_app

    with TestClient(create_app(load_run(default_run))) as c:
        yield c




def _alive(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_page_and_health(client):
    r = client.get("/")
    assert r.status_code == 200 and "<canvas" in r.text and "MnistPage.api()" in r.text
    js = client.get("/page.js")
    assert js.status_code == 200 and "api/predict" in js.text
    assert js.headers["content-type"].startswith("text/javascript")
    _alive(client)


def test_predict_multipart_and_json_agree(client, mnist):
    data = photo(mnist.test_images[0].numpy(), np.random.default_rng(0), "dark-on-light", fmt="PNG")
    a = client.post("/api/predict", files={"image": ("d.png", data, "image/png")})
    b = client.post("/api/predict", json={"image": base64.b64encode(data).decode()})
    c = client.post("/api/predict", json={"image": "data:image/png;base64," + base64.b64encode(data).decode()})
    assert a.status_code == b.status_code == c.status_code == 200, a.text
    assert a.json()["label"] == 7 == b.json()["label"] == c.json()["label"]
    probs = a.json()["probabilities"]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-6 and a.json()["probability"] == max(probs)
    assert np.array(a.json()["preprocessed"]).shape == (28, 28)


def test_serve_answers_as_predict_does_without_torch(default_run, mnist, tmp_path):
    """A --workers process (``app_from_env``) reads with the NumPy engine: the same answer,
    to the last bit, as ``predict`` on the same file, and PyTorch never imported."""
    rng = np.random.default_rng(5)
    files = []
    for i in range(4):
        path = tmp_path / f"d{i}.png"
        path.write_bytes(photo(mnist.test_images[i].numpy(), rng, "dark-on-light", fmt="PNG"))
        files.append(str(path))
    code = f"""
import json, os, sys
os.environ["MNIST_LOGREG_SERVE_RUN"] = {str(default_run)!r}
from fastapi.testclient import TestClient
from mnist_logreg.serve import app_from_env
with TestClient(app_from_env()) as c:
    out = [c.post("/api/predict", files={{"image": ("d.png", open(f, "rb").read(), "image/png")}}).json()
           for f in {files!r}]
assert "torch" not in sys.modules, "serve imported torch"
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    served = json.loads(proc.stdout)
    from mnist_logreg.reading.images import read_digit
    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.reading.numbers import ranked

    model = load_run(default_run)
    # One image at a time, as `predict FILE` reads it (a batch's matrix product may round
    # its last bits differently).
    expected = [ranked(model.classes, np.asarray(model.predict_proba(read_digit(f)[None]), dtype=np.float64)[0], 3)
                for f in files]
    for got, want, f in zip(served, expected, files):
        assert got["label"] == want["label"] and got["probabilities"] == want["probabilities"], f
        assert got["preprocessed"] == read_digit(f).tolist()


def test_body_over_5_mb_is_413(client):
    big = os.urandom(5 * 1024 * 1024 + 10)
    r = client.post("/api/predict", files={"image": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "5 MB" in r.json()["error"]
    r = client.post("/api/predict", content=b"x" * (5 * 1024 * 1024 + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413
    _alive(client)


def test_over_40_megapixels_is_400(client):
    buf = io.BytesIO()
    Image.new("L", (8000, 5100), 255).save(buf, format="PNG", optimize=True)
    assert len(buf.getvalue()) < 5 * 1024 * 1024  # small file, huge image: a decompression bomb
    r = client.post("/api/predict", files={"image": ("huge.png", buf.getvalue(), "image/png")})
    assert r.status_code == 400 and "megapixels" in r.json()["error"]
    _alive(client)


def test_an_image_without_a_digit_is_an_answer_not_an_error(client):
    """A blank image: 200, label null and the reason, no probabilities to misread."""
    blank = base64.b64encode(png_bytes(np.full((40, 40), 255, np.uint8))).decode()
    r = client.post("/api/predict", json={"image": blank})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] is None and body["reason"] == "the image is blank" and body["probabilities"] is None
    _alive(client)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(files={"image": ("x.png", b"\x89PNG\r\n\x1a\nbroken", "image/png")}), "image"),
        (dict(files={"image": ("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")}),
         "not an image"),
        (dict(files={"image": ("x.txt", b"just text", "text/plain")}), "not an image"),
        (dict(files={"other": ("x.png", b"abc", "image/png")}), "'image' file field"),
        (dict(json={"image": "%%% not base64 %%%"}), "not valid base64"),
        (dict(json={"picture": "abc"}), "'image' field"),
        (dict(json=[1, 2, 3]), "'image' field"),
        (dict(content=b"{not json", headers={"content-type": "application/json"}), "invalid JSON"),
        (dict(content=b"raw bytes", headers={"content-type": "application/octet-stream"}), "multipart"),
        (dict(content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"}), ""),
    ],
)
def test_bad_requests_are_400_and_the_server_lives(client, kwargs, needle):
    r = client.post("/api/predict", **kwargs)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    _alive(client)


# --- A real server and a real browser -----------------------------------------------------------




@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Where the real server (``server``) saves the page's corrections (serve --collect)."""
    return tmp_path_factory.mktemp("collected")


@pytest.fixture(scope="module")
def server(default_run, collected):
    port = free_port()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    # Two worker processes (uvicorn's): the page and the API work the same through either.
    proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg", "serve", "--run", str(default_run), "--port",
                             str(port), "--workers", "2", "--collect", str(collected)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start: {proc.stderr.read()}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_real_server_survives_bad_requests(server):
    for body in (b"garbage", os.urandom(6 * 1024 * 1024)):
        r = httpx.post(server + "/api/predict", files={"image": ("x.png", body, "image/png")}, timeout=30)
        assert r.status_code in (400, 413)
    assert httpx.get(server + "/healthz").json()["status"] == "ok"


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
def test_drawing_in_a_real_browser(server, collected, small_dir, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-debian.sh chromium /usr/bin/chromium installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shot = tmp_path / "drawing.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(server + "/")
            box = page.locator("#pad").bounding_box()
            x0, y0 = box["x"], box["y"]

            def stroke(points):
                page.mouse.move(x0 + points[0][0], y0 + points[0][1])
                page.mouse.down()
                for x, y in points[1:]:
                    page.mouse.move(x0 + x, y0 + y, steps=8)
                page.mouse.up()

            # A seven: the top bar, then the slanted stem.
            stroke([(70, 60), (150, 58), (215, 60)])
            stroke([(215, 60), (170, 150), (130, 235)])
            page.wait_for_function("document.getElementById('answer').dataset.label !== ''")
            page.wait_for_timeout(500)  # let the last request (the latest drawing) land
            page.wait_for_function("document.getElementById('answer').dataset.label !== ''")
            shown = page.locator("#answer").get_attribute("data-label")
            shown_p = float(page.locator("#answer").get_attribute("data-probability"))
            bars = page.locator(".bar").count()
            data_url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
            page.screenshot(path=str(shot))
            # "That was a 1": the server saves the digit it saw under 1/
            page.click("#correct-buttons button[data-label='1']")
            page.wait_for_function("document.getElementById('collected').textContent.includes('saved')")
        finally:
            browser.close()
    api = httpx.post(server + "/api/predict", json={"image": data_url}, timeout=30).json()
    assert bars == 10
    assert shown == str(api["label"])
    assert shown_p == pytest.approx(api["probability"], abs=1e-9)
    assert api["label"] == 7
    (saved,) = (collected / "1").iterdir()
    assert np.array_equal(np.asarray(Image.open(saved)), np.array(api["preprocessed"], np.uint8))
    assert shot.stat().st_size > 5000
    # The loop closed: a run trained with --add on what the page collected reads that
    # drawing as the person said (a writer whose 1s look like this 7).
    from conftest import run_main
    from mnist_logreg.reading.lite import load_run

    proc = run_main("train", "--data", str(small_dir), "--add", str(collected), "--add-weight", "50", "--epochs", "3",
                    "--no-select", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    new = load_run(tmp_path / "run").predict_proba(np.array(api["preprocessed"], np.uint8)[None])[0]
    assert int(np.argmax(new)) == 1
    print(f"\nscreenshot: {shot}; browser shows {shown} ({shown_p:.3f}), API says {api['label']}")


def test_busy_port_is_a_one_line_error(default_run):
    from conftest import run_cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("serve", "--run", str(default_run), "--port", str(port))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_bad_workers_is_a_one_line_error(default_run):
    from conftest import one_line_error, run_main

    one_line_error(run_main("serve", "--run", str(default_run), "--workers", "0"), "--workers must be")


# --- Under load: the event loop never does the heavy work ----------------------------------


def _blocking_answer(monkeypatch, release, entered=None):
    """Make the pool's work wait for ``release`` (ordinary images only): a slot held on
    demand; ``entered`` is set once one is held."""
    import mnist_logreg.serve as serve_module

    real = serve_module._answer

    def answer(checkpoint, img):
        if img.size[0] * img.size[1] <= serve_module.BIG_PIXELS:
            if entered is not None:
                entered.set()
            assert release.wait(30)
        return real(checkpoint, img)

    monkeypatch.setattr(serve_module, "_answer", answer)


def test_over_the_cap_is_503_while_health_and_big_lane_answer(default_run, mnist, monkeypatch):
    import asyncio
    import threading

    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.serve import BIG_PIXELS, create_app

    release, entered = threading.Event(), threading.Event()
    _blocking_answer(monkeypatch, release, entered)
    app = create_app(load_run(default_run), slots=1, big_slots=1, queue_seconds=0.3)
    digit = png_bytes(255 - np.kron(mnist.test_images[0].numpy(), np.ones((10, 10), np.uint8)))
    side = int(BIG_PIXELS ** 0.5) + 10
    big = png_bytes(255 - np.kron(mnist.test_images[1].numpy(), np.ones((side // 28 + 1,) * 2, np.uint8)))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            held = asyncio.create_task(c.post("/api/predict", files={"image": ("a.png", digit, "image/png")}))
            for _ in range(1000):  # until the first request holds the only ordinary slot (a busy machine: seconds)
                if entered.is_set():
                    break
                await asyncio.sleep(0.01)
            over = await c.post("/api/predict", files={"image": ("b.png", digit, "image/png")})
            health = await c.get("/healthz")
            huge = await c.post("/api/predict", files={"image": ("c.png", big, "image/png")})
            release.set()
            return await held, over, health, huge

    held, over, health, huge = asyncio.run(scenario())
    assert over.status_code == 503 and over.headers["retry-after"] == "1", over.text
    assert "busy" in over.json()["error"]
    assert health.status_code == 200
    assert huge.status_code == 200 and huge.json()["label"] == int(mnist.test_labels[1])  # its own lane
    assert held.status_code == 200 and held.json()["label"] == int(mnist.test_labels[0])


@pytest.fixture()
def live(default_run):
    """``create_app(...)`` served by uvicorn in a thread of this process, on a free port."""
    import contextlib
    import threading

    import uvicorn

    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.serve import create_app, uvicorn_options

    checkpoint = load_run(default_run)

    @contextlib.contextmanager
    def run(**kwargs):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(checkpoint, **kwargs), **uvicorn_options("127.0.0.1", port)))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        try:
            yield port
        finally:
            server.should_exit = True
            thread.join(10)

    return run


def _raw(port, data: bytes, wait: float = 5.0) -> bytes:
    """Send ``data`` and read what the server answers within ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_a_slow_body_is_cut_off(live):
    with live(body_seconds=0.5) as port:
        t0 = time.monotonic()
        # 1,000 bytes promised, 10 sent: the server must not wait for the rest forever.
        answer = _raw(port, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: 1000\r\n\r\n{\"image\": ", wait=10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - t0 < 5
        assert _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_oversized_headers_are_refused(live):
    with live() as port:
        answer = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 4"), answer[:200]  # 400 or 431, never a 200 after buffering it all
        assert _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_workers_are_dealt_connections_in_turn_and_replaced_when_they_die(default_run):
    """serve --workers 2 (serve/workers.py): connections opened all at once are dealt in
    turn, so each worker holds half of them (with uvicorn's own workers, the first one awake
    took every waiting connection: 23 and 9 of wrk's 32); a worker killed is replaced, and
    every request is still answered."""
    psutil = pytest.importorskip("psutil")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg", "serve", "--run", str(default_run), "--port",
                             str(port), "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def workers():  # live ones, not multiprocessing's resource tracker
        out = []
        for c in psutil.Process(proc.pid).children():
            try:
                if c.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(c.cmdline()):
                    out.append(c)
            except psutil.Error:  # gone meanwhile
                pass
        return out

    try:
        deadline = time.monotonic() + 30
        while True:  # both workers up: two answers in a row
            try:
                if all(_raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            wait=5).startswith(b"HTTP/1.1 200") for _ in range(2)):
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
        for c in conns:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        ours = {c.getsockname()[1] for c in conns}
        held = {w.pid: sum(1 for k in w.net_connections("tcp") if k.raddr and k.raddr[1] in ours) for w in workers()}
        assert sorted(held.values()) == [4, 4], held
        for c in conns:
            c.close()
        victim = workers()[0]
        victim.kill()
        while victim.pid in {w.pid for w in workers()} or len(workers()) < 2:  # replaced at once
            assert time.monotonic() < deadline + 30, "the worker was not replaced"
            time.sleep(0.05)
        for _ in range(4):
            answer = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", wait=10)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_worker_that_cannot_start_stops_serve_with_the_reason():
    """A worker that exits as it starts, again and again, stops serve with one line that
    says so, rather than being started forever."""
    import functools

    from mnist_logreg.errors import UserError
    from mnist_logreg.serve import uvicorn_options, workers

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    make_app = functools.partial(int, "not an app")  # raises in the worker, and pickles
    with pytest.raises(UserError, match="exited 3 times within 5 s of starting"):
        workers.run(listener, 1, make_app, uvicorn_options("127.0.0.1", 0))


def test_every_connection_gets_tcp_nodelay():
    """uvicorn's --workers socket is made with proto 0, where asyncio leaves Nagle's algorithm
    on (a response's body then waits 40 ms for the client's delayed ACK): our protocol turns
    it off on each connection."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from mnist_logreg.serve import uvicorn_options

    protocol_class = uvicorn_options("127.0.0.1", 0)["http"]
    config = uvicorn.Config(app=lambda scope, receive, send: None, http=protocol_class)
    config.load()
    listener = socket.socket(socket.AF_INET)  # proto 0, as uvicorn's bind_socket makes it
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    async def scenario():
        loop = asyncio.get_running_loop()
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        transport, protocol = await loop.connect_accepted_socket(
            lambda: protocol_class(config=config, server_state=ServerState(), app_state={}), conn)
        try:
            return conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            transport.close()
            client.close()

    try:
        assert asyncio.run(scenario()) != 0
    finally:
        listener.close()


def test_a_server_process_runs_blas_on_its_own_thread():
    """serve's processes cap BLAS at one thread: OpenBLAS's own threads, spinning after a
    large digit's resize, took the cores from the event loops (/healthz p99 beside 38 MP
    uploads 42-45 ms against 25-27 ms)."""
    import sys

    from threadpoolctl import threadpool_info, threadpool_limits

    from mnist_logreg import serve as serve_module

    interval = sys.getswitchinterval()
    try:
        with threadpool_limits(limits=None):  # puts the limits back as they were
            threadpool_limits(limits=2, user_api="blas")  # more than one first (make test's workers run one)
            assert any(i["num_threads"] > 1 for i in threadpool_info() if i["user_api"] == "blas")
            serve_module._tune_process()
            blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            assert blas and all(n == 1 for n in blas), blas
    finally:
        sys.setswitchinterval(interval)
