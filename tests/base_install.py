"""Run Python as on a base ``pip install mnist-logreg``: every optional package unimportable.

    python tests/base_install.py -m mnist_logreg train ...
    python tests/base_install.py -c "from mnist_logreg import LogisticRegression; ..."

The interpreter's finders are wrapped so that they do not find the extras' packages (nor
scikit-learn, which no base feature may need): ``import matplotlib`` raises
``ModuleNotFoundError`` exactly as it would where it is not installed. The rest of the
command line runs as ``python``'s.
"""

import importlib.abc
import os
import runpy
import sys

OPTIONAL = ("matplotlib", "optuna", "psycopg2", "sqlalchemy", "fastapi", "starlette", "uvicorn", "multipart",
            "python_multipart", "onnx", "onnxruntime", "onnxscript", "tensorboard", "torchvision", "sklearn",
            "scipy", "psutil", "httpx", "playwright", "pytest", "threadpoolctl")


# ``BASE_INSTALL_HIDE=a,b`` hides only those packages (one extra missing, the others present).
if os.environ.get("BASE_INSTALL_HIDE"):
    OPTIONAL = tuple(os.environ["BASE_INSTALL_HIDE"].split(","))


class _Hide(importlib.abc.MetaPathFinder):
    """Wraps one of the interpreter's finders: the optional packages are not found, the rest are.

    Not found, rather than refused: ``importlib.util.find_spec("onnx")`` returns None and
    ``import onnx`` raises ``ModuleNotFoundError``, as where it is not installed (torch
    probes optional packages with ``find_spec``).
    """

    def __init__(self, inner):
        self.inner = inner

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in OPTIONAL:
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, attr):  # invalidate_caches, find_distributions, ...
        return getattr(self.inner, attr)


def main() -> None:
    sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    elif len(sys.argv) >= 3 and sys.argv[1] == "-c":
        code = sys.argv[2]
        sys.argv = ["-c", *sys.argv[3:]]
        exec(compile(code, "<base-install>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit("usage: base_install.py -m MODULE ... | -c CODE ...")


if __name__ == "__main__":
    main()
