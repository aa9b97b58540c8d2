"""Building blocks of a real-time perception node, free of any robot framework: raw image buffers, stamp
matching, a keep-newest frame slot, tracking states, prompt checks, masks/overlays and rate/latency statistics.
strvos_ros uses them; they are tested without ROS."""
