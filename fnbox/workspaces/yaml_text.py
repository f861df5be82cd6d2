"""The YAML text of workspace documents: one writer for the store and for exported archives.

PyYAML's safe_dump with allow_unicode writes the line breaks U+0085, U+2028 and U+2029 raw
inside single quotes, where a reader folds them into spaces or newlines: a saved function's
code would come back changed. Strings holding one are written in double quotes, which
escape them; other multi-line strings (code) in `|` blocks, which stay readable. Anchors
and aliases are never written, so a document reads back with no shared parts.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["Loader", "dump"]

#: libyaml's safe loader where PyYAML was built with it: several times faster than the pure one.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump(document: Any) -> str:
    """YAML text that loads back to `document`, keys in their given order."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML itself falls back to a quoted scalar where a `|` block would not give back the same string.
    style = '"' if any(c in text for c in "\x85\u2028\u2029") else "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)
