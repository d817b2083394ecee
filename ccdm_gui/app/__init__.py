"""The window: the only layer that imports Qt (PySide6) and pyqtgraph."""
