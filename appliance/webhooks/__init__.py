"""Webhook ingestion: verify, store, answer, then process, forward, log and alert on the queue."""
