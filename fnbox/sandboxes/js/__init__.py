"""JavaScript functions in V8 through mini-racer: one context per workspace version.

sandbox = compile_workspace([FunctionSource("hello", 'return "Hello " + name', ...)])
result = await sandbox.run("hello", {"name": "you"}, Limits(timeout=5, memory=64 << 20))
"""

from fnbox.sandboxes.js.context import prepare_blank
from fnbox.sandboxes.js.engine import stuck_isolates
from fnbox.sandboxes.js.names import RESERVED_NAMES
from fnbox.sandboxes.js.sandbox import JsSandbox, compile_workspace

__all__ = ["RESERVED_NAMES", "JsSandbox", "compile_workspace", "prepare_blank", "stuck_isolates"]
