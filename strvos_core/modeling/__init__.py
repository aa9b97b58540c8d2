"""The StreamingRVOS model: vision (InternViT + projector), language (Qwen2), grounding (SAM 2)."""
