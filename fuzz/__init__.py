"""Coverage-guided fuzz targets (atheris) for every parser of exi15118; see fuzz/README.md."""
