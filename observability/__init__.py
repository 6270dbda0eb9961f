"""Prometheus configuration and rules, the Grafana dashboard and its generator."""
