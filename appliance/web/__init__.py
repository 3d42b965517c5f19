"""The status page: token login, session cookie, and the static page that reads the API."""
