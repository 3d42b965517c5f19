"""Media work that knows nothing of HTTP: probing, the transcode ladder, images, PDF pages."""
