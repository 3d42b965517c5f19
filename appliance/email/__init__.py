"""Email: the `email.send` job on the email-sending queue, over SMTP."""
