"""JavaScript functions in V8 through mini-racer: one context per workspace version.

    from fnbox.sandboxes.js.sandbox import compile_workspace

    sandbox = compile_workspace([FunctionSource("hello", 'return "Hello " + name', ...)])
    result = await sandbox.run("hello", {"name": "you"}, Limits(timeout=5, memory=64 << 20))

engine.py   one V8 isolate, driven through mini-racer's C interface
context.py  a fresh isolate set up for one workspace version
codegen.py  the JS text evaluated, and V8's lines mapped back to the user's
runtime.js  what every isolate gets before the functions: console, cache, timers
mailbox.py  a SharedArrayBuffer shared in place with the isolate
outcome.py  the JSON a run hands over, to a result or an error
sandbox.py  JsSandbox and compile_workspace: a run at a time, and the isolate's life cycle
batch.py    runs queued for a busy isolate, posted together in one eval
inflight.py a run in flight: where its outcome goes, and why it stopped waiting
names.py    the names a function or parameter may not take, and the Node modules (no engine)
host.py     synchronous calls from a run into Python, over a region of the mailbox
hostops.py, hostcrypto.py, hosturl.py   what those calls do: hashes, zlib, keys, URLs...
lib/*.js    the JavaScript library: Node's modules and the web's globals, loaded on first use
slot.py     a lock for runs coming from different event loops

Nothing is imported here, so that `names` can be read without loading V8.
"""
