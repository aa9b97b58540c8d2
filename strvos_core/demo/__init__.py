"""The README's main job: a synthetic RGB-D camera, prompts, and a report of what the node published."""
