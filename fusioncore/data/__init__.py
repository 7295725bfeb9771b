"""Data layer: frames, formats, catalog, synthetic vehicles, graphs."""
