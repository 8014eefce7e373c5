"""A web page to draw or upload a digit, and a JSON API, on FastAPI + uvicorn.

``POST /api/predict`` takes a multipart upload (field ``image``) or JSON
``{"image": "<base64 PNG, optionally a data: URL>"}``. Limits: bodies over 5 MB get 413;
images over 40 megapixels, malformed ones and non-image formats get 400 with a message.
Every request is independent: a bad one never takes the server down.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations
# (``request: Request``) at definition time, and Request is imported inside create_app.
import base64
import binascii
import json
import logging
from importlib import resources

from ..errors import UserError
from ..images import ImageError, load_digit
from ..predict import predict_digits
from ..runs import Checkpoint

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024 * 1024


class _TooLarge(Exception):
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


def create_app(checkpoint: Checkpoint):
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="mnist-logreg", docs_url=None, redoc_url=None)
    page = (resources.files(__package__) / "page.html").read_text()

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "classes": checkpoint.classes}

    @app.post("/api/predict")
    async def predict(request: Request):
        try:
            body = await _read_body(request)
            data = await _image_bytes(request, body)
            digit = load_digit(data, "image")
        except _TooLarge:
            return JSONResponse({"error": f"request body over {MAX_BODY // (1024 * 1024)} MB"}, status_code=413)
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Exception as exc:  # a malformed multipart body, a decoder bug: still a 400, never a crash
            log.warning("bad request: %r", exc)
            return JSONResponse({"error": f"could not read the request ({type(exc).__name__})"}, status_code=400)
        pred = predict_digits(checkpoint, digit.unsqueeze(0), top_k=3)[0]
        return {"label": pred["label"], "probability": pred["probability"],
                "probabilities": pred["probabilities"], "classes": checkpoint.classes,
                "top": [{"label": c, "probability": p} for c, p in pred["top"]],
                "preprocessed": digit.tolist()}

    return app


def serve(checkpoint: Checkpoint, host: str = "127.0.0.1", port: int = 8000) -> None:
    import socket

    import uvicorn

    # uvicorn reports a busy port over several log lines and exits; check first, so the
    # user gets one line naming the problem.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(checkpoint), host=host, port=port, log_level="warning")
