"""The Python sandbox: RestrictedPython with fnbox's policy, vetted module proxies and deadlines.

policy.py     compile time: RestrictedPython's transformer plus deadline checks and size guards
guards.py     run time: attribute access, writes, iteration, the Deadline stop
sizes.py      run time: size checks on operators and builtins that allocate by an argument
modules.py    the import allow-list, as proxies of vetted members
library_data.py  vetted members of csv, io, dataclasses, typing, enum, functools, copy, zoneinfo...
library_text.py  vetted members of string, textwrap, html, difflib, pprint, unicodedata
formatting.py str.format/format_map reading positions and keys only
reference.py  the README's Python section, drawn from the policy
names.py      the builtins offered and refused, the names a function may not take (no engine)
namespace.py  the shared module namespace and its builtins
source.py     one function body -> a compiled `def`, errors on the user's lines
output.py     print() and log.* into the run's logs
results.py    the result as plain JSON data; errors as user-code tracebacks
executor.py   daemon worker threads
memory.py     the C allocator of a worker under RLIMIT_AS
sandbox.py    PythonSandbox and compile_workspace

Nothing is imported here, so that `names` can be read without loading RestrictedPython.
"""
