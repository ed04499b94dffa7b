"""The web interface: server-rendered pages and plain ES modules over the same services
as the API, with a strict Content-Security-Policy and no third-party code."""
