"""The params presets (YAML), loaded through importlib.resources by rome.config; tracked by DVC as params files."""
