"""The package's one native piece; everything else is in pyproject.toml.

`_handoff` (fnbox/sandboxes/js/_handoff.c) hands a JavaScript run's end from V8's thread to the
worker's event loop without taking the GIL. It is optional: without a C compiler the build goes
on, and the JavaScript sandbox takes its pure-Python path (see fnbox/sandboxes/js/handoff.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fnbox.sandboxes.js._handoff",
            ["fnbox/sandboxes/js/_handoff.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
