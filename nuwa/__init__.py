"""NUWA-Infinity: autoregressive over autoregressive generation for infinite visual synthesis."""

__version__ = "0.1.0"
