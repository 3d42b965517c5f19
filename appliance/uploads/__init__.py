"""Uploads: streaming multipart, type sniffing, virus scanning."""
