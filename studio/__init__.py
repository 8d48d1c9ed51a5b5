"""Seed Studio's Qt-free core: the project model, media pool, render, export, jobs and CLI."""

__version__ = "0.1.0"
