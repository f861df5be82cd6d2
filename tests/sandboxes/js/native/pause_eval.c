/* A test shim (LD_PRELOAD) that pauses V8's thread as each eval begins, before the eval reads
 * its context: it makes the window between a task starting and mini-racer freeing the context
 * last PAUSE_EVAL_US microseconds instead of a few instructions (see test_engine.py).
 *
 * mini-racer calls CodeEvaluator::Eval through its PLT, so this definition takes its place; the
 * original is found in MR_LIBRARY. Chromium's libc++ gives shared_ptr the trivial ABI: the
 * result comes back in two registers. Built for mini-racer 0.14 (as engine.py is).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define EVAL "_ZN9MiniRacer13CodeEvaluator4EvalEPN2v87IsolateEPNS_5ValueE"

struct shared {
    void *pointer, *control;
};
typedef struct shared (*eval_fn)(void *, void *, void *);

struct shared _ZN9MiniRacer13CodeEvaluator4EvalEPN2v87IsolateEPNS_5ValueE(void *self, void *isolate, void *code) {
    static eval_fn original = NULL;
    if (original == NULL) {
        void *library = dlopen(getenv("MR_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
        original = library == NULL ? NULL : (eval_fn)dlsym(library, EVAL);
        if (original == NULL) {
            fprintf(stderr, "pause_eval: no %s in MR_LIBRARY\n", EVAL);
            abort();
        }
    }
    static int told = 0;
    const char *pause = getenv("PAUSE_EVAL_US");
    if (pause != NULL) {
        if (!told) fprintf(stderr, "pause_eval: pausing each eval %s us\n", pause);
        told = 1;
        usleep((useconds_t)atoi(pause));
    }
    return original(self, isolate, code);
}
