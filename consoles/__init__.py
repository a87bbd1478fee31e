"""Consoles: what people see and touch.

Public modules: ``protocol`` (core: the console messages and ordering rules),
``playback`` (core: a past period folded from events),
``gateway`` (shell: the websocket gateway), ``client`` (shell: a console client),
``static/`` (the web console, served by the gateway).
"""

__all__: list[str] = []
