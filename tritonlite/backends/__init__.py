"""Backends: the built-in ones (python, onnxruntime, pytorch, openvino, fil, tensorrt, ensemble) and the API a
third-party backend implements (:mod:`tritonlite.backends.base`). Importing this package imports no framework."""
