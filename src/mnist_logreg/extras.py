"""Optional extras: which feature needs which package, said in one line when one is missing.

A base ``pip install mnist-logreg`` trains, evaluates (metrics table and JSON), predicts,
exports TorchScript and compares runs. Everything else lives in an extra and is imported
where it is used; ``require`` is called before any work starts, so a missing package costs
the user nothing but the line that names what to install.
"""

from __future__ import annotations

import importlib

from .errors import UserError


def available(module: str) -> bool:
    """Whether ``module`` imports (a broken or blocked install counts as missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def install_hint(extra: str) -> str:
    return f"pip install 'mnist-logreg[{extra}]'"


def require(feature: str, extra: str, *modules: str) -> None:
    """Raise a one-line ``UserError`` naming ``extra`` unless every module imports."""
    missing = [m for m in modules if not available(m)]
    if missing:
        raise UserError(f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        f"not installed: {install_hint(extra)}")
