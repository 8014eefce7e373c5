"""The one thing pyproject.toml cannot say without an "experimental" warning: the C kernel.

``optional=True``: without a C compiler the package installs anyway and trains with
PyTorch's own ops (see src/mnist_logreg/training/kernels.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mnist_logreg.training._kernels", ["src/mnist_logreg/training/_kernels.c"],
                             extra_compile_args=["-O3"], depends=["src/mnist_logreg/training/_kernel_body.h"],
                             optional=True)])
