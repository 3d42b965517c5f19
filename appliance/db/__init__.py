"""The app database: every SQL statement of ingestbox lives in this package."""

from appliance.db.database import Database

__all__ = ["Database"]
