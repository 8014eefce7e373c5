"""Reading digits, with NumPy alone: a person's image to MNIST's 28x28 (``images``), the
model file (``modelfile``), the NumPy engine that runs it (``lite``), ``predict``.

``predict``, ``serve`` and ``evaluate`` rest on this package and never import PyTorch or
``training`` (``tests/test_layout.py`` holds them to it)."""
