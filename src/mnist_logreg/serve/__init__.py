"""A web page to draw or upload a digit, and a JSON API, on FastAPI + uvicorn.

``POST /api/predict`` takes a multipart upload (field ``image``) or JSON
``{"image": "<base64 PNG, optionally a data: URL>"}``. Limits: bodies over 5 MB get 413;
a body that has not arrived within ``BODY_SECONDS`` gets 408; images over 40 megapixels,
malformed ones and non-image formats get 400 with a message. Every request is
independent: a bad one never takes the server down.

Every process reads with the NumPy engine (``lite.LiteModel``, as ``predict`` does): none
imports PyTorch, so each holds tens of megabytes, not hundreds, and starts in well under
a second. The event loop only moves bytes. Decoding, preprocessing and the model run on a thread
pool, in two lanes: images over ``BIG_PIXELS`` (by their header) get at most half the
cores, so a few huge photos never hold up ordinary digits, and ordinary digits get one
slot per core. A request waits up to ``QUEUE_SECONDS`` for a slot in its lane, then gets
503 with ``Retry-After``. ``/healthz`` and the page never wait for a slot.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations
# (``request: Request``) at definition time, and Request is imported inside create_app.
import asyncio
import base64
import binascii
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..reading.images import SEVERAL, ImageError, NoDigit, decode_image, peek_image
from ..reading.lite import LiteModel
from ..reading.numbers import number_of, ranked, read_number
from ..system import cores

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024
# A client has this long to send its whole body (a slow-body client holds a connection,
# never a worker thread; this bounds how long).
BODY_SECONDS = 10.0
# How long a request waits for a free slot before it gets 503.
QUEUE_SECONDS = 2.0
# Images over this many pixels (by their header) take the big lane.
BIG_PIXELS = 4_000_000
# Request line and headers together; larger ones get 400 from the HTTP parser.
HEADER_BYTES = 16 * 1024
# Where the workers of ``serve --workers N`` find the run to load.
RUN_ENV = "MNIST_LOGREG_SERVE_RUN"
COLLECT_ENV = "MNIST_LOGREG_SERVE_COLLECT"


class _TooLarge(Exception):
    pass


class _Busy(Exception):
    pass


class _Full(Exception):
    pass


async def _read_body(request) -> bytes:
    """The request body, refusing (413) anything over ``MAX_BODY`` before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_base64(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the 'image' field is not valid base64") from None


async def _image_bytes(request, body: bytes) -> bytes:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        request._body = body  # let Starlette parse the body we already read (and size-checked)
        form = await request.form()
        upload = form.get("image") or form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise ImageError("multipart request without an 'image' file field")
        return await upload.read()
    if ctype.startswith("application/json"):
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ImageError("invalid JSON body") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise ImageError("JSON body must be an object with an 'image' field holding a base64 PNG")
        return _decode_base64(payload["image"])
    raise ImageError("send multipart/form-data with an 'image' file, or JSON {\"image\": \"<base64>\"}")


def _answer(model: LiteModel, img) -> dict:
    """Decode, preprocess and classify one image: the work that runs on the pool. An image
    with no digit is an answer too: label null and the reason. A row of digits: label null
    (it is not one digit), the ``number`` and its ``digits``, each with its box in the image."""
    try:
        reads = read_number(decode_image(img, "image"), model)
    except NoDigit as exc:
        return {"label": None, "reason": exc.reason, "probability": None, "probabilities": None,
                "classes": model.classes, "top": [], "preprocessed": None, "number": None, "digits": []}
    digits = [{**d.as_dict(3, model.classes), "preprocessed": None if d.digit is None else d.digit.tolist()}
              for d in reads]
    if len(reads) > 1 or reads[0].probabilities is None:
        return {"label": None, "reason": SEVERAL, "probability": None, "probabilities": None,
                "classes": model.classes, "top": [], "preprocessed": None, "number": number_of(reads),
                "digits": digits}
    pred = ranked(model.classes, np.asarray(reads[0].probabilities), 3)
    return {"label": pred["label"], "probability": pred["probability"],
            "probabilities": pred["probabilities"], "classes": model.classes,
            "top": [{"label": c, "probability": p} for c, p in pred["top"]],
            "preprocessed": reads[0].digit.tolist(), "number": number_of(reads), "digits": digits}


# serve --collect: at most this many corrections are kept (then 507, nothing written).
MAX_COLLECTED = 10_000


def _collect(folder, model: LiteModel, payload) -> str:
    """Save one correction: the digit as the model saw it, as a PNG in ``folder/<label>/``
    (named by its content: the same digit twice is one file). Returns the file's path
    relative to ``folder``. The label must be one of the model's classes and the pixels
    the model's image shape, so nothing is written outside ``folder``."""
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    from ..atomic import atomic_write_bytes

    if not isinstance(payload, dict):
        raise ImageError("JSON body must be an object: {\"preprocessed\": [[...]], \"label\": N}")
    label, pixels = payload.get("label"), payload.get("preprocessed")
    if isinstance(label, bool) or not isinstance(label, int) or label not in model.classes:
        raise ImageError(f"'label' must be one of the model's classes {model.classes}, got {label!r}")
    try:
        digit = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImageError("'preprocessed' must be the rows of the digit the model saw") from None
    h, w = model.image_shape
    if digit.shape != (h, w) or not np.isfinite(digit).all() or digit.min() < 0 or digit.max() > 255 \
            or (digit != np.round(digit)).any():
        raise ImageError(f"'preprocessed' must be {h}x{w} integers from 0 to 255, as /api/predict returned it")
    folder = Path(folder)
    if sum(1 for _ in folder.glob("*/*.png")) >= MAX_COLLECTED:
        raise _Full()
    digit = digit.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(digit).save(buf, format="PNG")
    name = f"{label}/{hashlib.sha256(digit.tobytes()).hexdigest()[:16]}.png"
    atomic_write_bytes(folder / name, buf.getvalue())
    return name


def create_app(model: LiteModel, slots: int | None = None, big_slots: int | None = None,
               queue_seconds: float = QUEUE_SECONDS, body_seconds: float = BODY_SECONDS, collect=None):
    """The app for ``model`` (``lite.load_run``). ``slots``: concurrent ordinary images
    (default: one per core); ``big_slots``: concurrent images over ``BIG_PIXELS`` (default:
    half the cores, at least one). ``collect``: a folder where ``POST /api/correct`` saves
    the digits people correct (None: corrections are refused)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from ..web import page_html, script

    slots = slots or cores()
    big_slots = big_slots or max(1, cores() // 2)
    pool = ThreadPoolExecutor(slots + big_slots, thread_name_prefix="mnist-logreg-serve")
    # Created here, bound to the server's loop at first use (Python >= 3.10).
    lanes = {False: asyncio.Semaphore(slots), True: asyncio.Semaphore(big_slots)}
    app = FastAPI(title="mnist-logreg", docs_url=None, redoc_url=None)
    # The page and its script are the exported page's too (web/): here it asks the API.
    page = page_html('<script src="page.js"></script>\n'
                     '<script>MnistPage.start(MnistPage.api(), MnistPage.collectOnServer());</script>')
    page_js = script("page.js")

    async def work(img) -> dict:
        lane = lanes[img.size[0] * img.size[1] > BIG_PIXELS]
        try:
            await asyncio.wait_for(lane.acquire(), queue_seconds)
        except asyncio.TimeoutError:
            raise _Busy() from None
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _answer, model, img)
        finally:
            lane.release()

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/page.js")
    async def page_script() -> Response:
        return Response(page_js, media_type="text/javascript")

    # async: answered on the event loop itself, never queued behind a thread pool.
    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "classes": model.classes, "collect": collect is not None}

    @app.post("/api/correct")
    async def correct(request: Request):
        """A correction from the page: {"preprocessed": the digit /api/predict returned, "label": N}."""
        if collect is None:
            return JSONResponse({"error": "this server does not collect corrections (serve --collect DIR)"},
                                status_code=404)
        try:
            body = await asyncio.wait_for(_read_body(request), body_seconds)
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise ImageError("invalid JSON body") from None
            name = await asyncio.get_running_loop().run_in_executor(pool, _collect, collect, model, payload)
            return JSONResponse({"saved": name})
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"request body not received within {body_seconds:g} s"}, status_code=408)
        except _TooLarge:
            return JSONResponse({"error": f"request body over {MAX_BODY // (1024 * 1024)} MB"}, status_code=413)
        except _Full:
            return JSONResponse({"error": f"the collection is full ({MAX_COLLECTED:,} digits)"}, status_code=507)
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except OSError as exc:
            log.warning("could not save a correction: %r", exc)
            return JSONResponse({"error": f"could not save the digit ({exc.strerror or exc})"}, status_code=507)

    @app.post("/api/predict")
    async def predict(request: Request):
        try:
            body = await asyncio.wait_for(_read_body(request), body_seconds)
            data = await _image_bytes(request, body)
            # The header only, here on the loop; the answer as JSONResponse directly: FastAPI's
            # own encoding walks the 784 pixels in Python (a fifth of a request's time).
            return JSONResponse(await work(peek_image(data, "image")))
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"request body not received within {body_seconds:g} s"}, status_code=408)
        except _TooLarge:
            return JSONResponse({"error": f"request body over {MAX_BODY // (1024 * 1024)} MB"}, status_code=413)
        except _Busy:
            return JSONResponse({"error": "the server is busy; try again in a second"}, status_code=503,
                                headers={"Retry-After": "1"})
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception as exc:  # a malformed multipart body, a decoder bug: still a 400, never a crash
            log.warning("bad request: %r", exc)
            return JSONResponse({"error": f"could not read the request ({type(exc).__name__})"}, status_code=400)

    return app


def app_for(run_dir: str, collect: str | None):
    """The app of ``run_dir``, in a server process: each ``--workers`` process calls this."""
    from ..reading.lite import load_run

    _tune_process()
    return create_app(load_run(run_dir), collect=collect)


def app_from_env():
    """The app of the run named by ``$MNIST_LOGREG_SERVE_RUN`` (uvicorn's own ``--workers``,
    where connections cannot be dealt: see ``serve``)."""
    return app_for(os.environ[RUN_ENV], os.environ.get(COLLECT_ENV) or None)


def _tune_process() -> None:
    """Settings for a server process (not for the library: they are process-wide).

    The event loop must get the GIL back quickly from the pool's threads: at Python's
    default 5 ms switch interval, /healthz waited 46 ms (median) behind 38-megapixel uploads.
    BLAS runs on the calling thread alone: the requests are the parallel work (a pool per
    process, a process per core). A large digit's resize is a product large enough for
    OpenBLAS to share among its own threads, which then spin waiting for more and take the
    cores from the event loops: /healthz p99 beside the 38 MP uploads 42-45 ms, 25-27 ms
    with one thread (``benchmarks/serve_load.py``). Freed memory is kept for the next
    image (``system.keep_freed_memory``): a photo's arrays are not given back to the system
    and faulted in again a page at a time.
    """
    import sys

    from threadpoolctl import threadpool_limits

    from ..system import keep_freed_memory

    sys.setswitchinterval(0.0005)
    threadpool_limits(1, user_api="blas")
    keep_freed_memory()


def uvicorn_options(host: str, port: int) -> dict:
    """How uvicorn runs the app: quiet, headers bounded, idle connections closed after 5 s,
    no Nagle delay (``http.py``)."""
    from .http import NoDelayH11Protocol

    return dict(host=host, port=port, log_level="warning", http=NoDelayH11Protocol,
                h11_max_incomplete_event_size=HEADER_BYTES, timeout_keep_alive=5)


def serve(run_dir: str, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          collect: str | None = None) -> None:
    import functools
    import socket

    import uvicorn

    from ..reading.lite import load_run

    if not isinstance(workers, int) or not 1 <= workers <= 64:
        raise UserError(f"--workers must be an integer between 1 and 64, got {workers!r}")
    model = load_run(run_dir)  # a bad run folder is one line here, not one per worker
    if collect is not None:
        from ..atomic import check_folder_writable

        check_folder_writable(Path(collect), "--collect")
        collect = os.path.abspath(collect)
    # uvicorn reports a busy port over several log lines and exits; check first, so the
    # user gets one line naming the problem.
    from . import workers as dealt

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        listener = socket.socket(infos[0][0], socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(infos[0][4])
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    print(f"serving on http://{host}:{port}/ with {workers} worker process{'es' * (workers > 1)} "
          "(Ctrl-C to stop)", flush=True)
    _tune_process()
    options = uvicorn_options(host, port)
    if workers == 1:
        listener.close()
        uvicorn.run(create_app(model, collect=collect), **options)
    elif dealt.supported():  # connections dealt to the workers in turn (serve/workers.py)
        listener.listen(2048)
        dealt.run(listener, workers, functools.partial(app_for, os.path.abspath(run_dir), collect), options)
    else:
        listener.close()
        os.environ[RUN_ENV] = str(os.path.abspath(run_dir))
        os.environ[COLLECT_ENV] = collect or ""
        uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=workers, **options)
