"""Asterisk configuration templates, the installer and process control."""
