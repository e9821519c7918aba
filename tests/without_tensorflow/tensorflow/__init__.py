"""Stands in for TensorFlow in commands that must answer before loading it (conftest's
`without_tensorflow`): importing it ends the command with this message instead of its answer."""
raise ImportError("tensorflow imported before the command answered")
