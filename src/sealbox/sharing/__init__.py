"""Sharing: download links, grants to accounts, upload-request links, and the one gate
through which every file byte leaves the server."""
