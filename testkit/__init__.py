"""Test and benchmark tooling shared by tests/ and benchmarks/, so that neither imports the
other: synthetic scenes with known truth, bad inputs, truth metrics, the bench pair cache, the
naive baseline and the bench table, real-server and batch drivers. Not shipped in the wheel;
the service never imports it."""
