"""The queue tasks: thin calls from jobs into transcode/ and friends."""
