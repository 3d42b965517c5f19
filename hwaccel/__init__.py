"""Hardware video encoders: which exist, which work (proved by a test encode), and which to use."""
