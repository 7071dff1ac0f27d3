"""Latency: measurement on a local device, lookup-table profiles, and the built-in `v100` profile."""
