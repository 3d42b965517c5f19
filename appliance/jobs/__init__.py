"""The job engine: durable records, Huey queues, retries, dead letters and live events."""
