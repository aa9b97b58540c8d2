"""tools/soak.py's scenarios: how strvos_node holds up over time, under faults and hostile input, and how
`strvos eval` / `strvos train` survive SIGKILL. Each scenario returns its figures and the criteria it failed
(an empty list: it held); tools/soak.py writes them to benchmarks/reliability.md, test/reliability runs short
versions. Import `rosenv` before anything that imports rclpy."""
