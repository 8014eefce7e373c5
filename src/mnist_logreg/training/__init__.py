"""Training, with PyTorch: the one training loop (``train``), the gradient engines
(``gradients``: the fused C kernel of ``kernels``, or PyTorch's ops), the updates, the
PyTorch preprocessing and model. Used by ``train``, ``tune``, ``bench`` and ``export``."""
