"""ingestbox: the service process (server, queues, storage, webhooks, uploads, status page)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ingestbox")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
