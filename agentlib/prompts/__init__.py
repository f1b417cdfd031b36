"""Prompt templates, loaded as package data by `agentlib._prompts`."""
