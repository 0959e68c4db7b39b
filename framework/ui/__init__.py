"""``strato ui``: a local web app over the run store.

:mod:`strato.ui.data` turns the store into the JSON the pages read (no web framework needed);
:mod:`strato.ui.server` serves it with Starlette and uvicorn (the ``ui`` extra), imported only by
``strato ui`` so ``import strato`` stays light.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8642
