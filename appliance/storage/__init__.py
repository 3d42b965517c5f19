"""Object storage: one interface, backends local (default), s3 (boto3) and minio (minio client)."""

from appliance.storage.base import ObjectStore, ObjectWriter
from appliance.storage.factory import open_store

__all__ = ["ObjectStore", "ObjectWriter", "open_store"]
