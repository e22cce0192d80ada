"""The Python-backend models of the repository. They import triton_python_backend_utils, which exists only
inside Triton's Python-backend stub: import these modules there, never from the CLI or the tests."""
