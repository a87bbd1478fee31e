"""Consoles: the websocket gateway, the web console and the console clients."""
