"""Files: upload, list, download and delete, encrypted at rest."""
