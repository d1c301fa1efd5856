"""secmine: a reproducible study of developer-reported security issues and solutions in AI projects.

Reproduces and extends "Securing the AI Supply Chain: What Can We Learn From Developer-Reported
Security Issues and Solutions of AI Projects?" (ICSE 2026, arXiv 2512.23385).
"""

__version__ = "0.1.0"
