"""A real-time perception pipeline free of any robot framework (pipeline.py: typed commands answered at once, the
target registry, the model session, tracking states, depth and poses) and its building blocks: raw image
buffers, stamp matching, a keep-newest frame slot, depth matching, prompt checks, overlays and rate/latency
statistics. strvos_ros converts messages and calls them; they are tested without ROS."""
