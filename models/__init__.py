"""The model layer: data contract, sample data, training, evaluation and the registry.

Knows neither Slack nor Redis: it takes tables and files and returns dataclasses.
"""
